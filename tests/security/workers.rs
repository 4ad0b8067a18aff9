//! See `mod.rs`. Three findings, each attacked through the real binary:
//!
//! - a managed worker's `cwd` that would mount the host (`/run` and its Docker socket, homes,
//!   the mecha home), and containers that ran as root because mecha did;
//! - adapter ports that anyone on the machine could post tasks to, spending the operator's key;
//! - outgoing HTTP to metadata services in the spellings the old checks missed. How a name
//!   that answers differently from one lookup to the next (DNS rebinding) is handled is shown
//!   by unit tests with a scripted resolver (`net::resolve`, `plugin::host::http`), since no
//!   test can change what the machine's DNS answers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::daemon::{Daemon, GITHUB_SECRET, Home, binary, client, send_github};
use crate::support::docker::{self, IMAGE, inspect};
use crate::support::fixtures;
use crate::support::llm::LlmServer;
use crate::support::worker::{Answer, TestWorker};

/// Retries and probes in milliseconds, so the tests do not wait for production delays.
const FAST: &str =
    "dispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n";

/// The daemon API's key in the tests that call the API.
const API_KEY: &str = "security-workers-api-key-3c9e";

/// Runs `mecha ARGS` with `MECHA_HOME` at `mecha_home` and `env` added; returns (success,
/// stdout, stderr).
fn mecha(mecha_home: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .args(args)
        .env("MECHA_HOME", mecha_home)
        .env_remove("MECHA_DB_PATH")
        .env_remove("MECHA_API_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("mecha runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Writes `yaml` as `<dir>/<name>.yaml` and returns its path.
fn worker_file(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("worker file");
    path
}

fn managed(name: &str, cwd: &Path, extra: &str) -> String {
    format!(
        "name: {name}\ndocker:\n  image: {IMAGE}\n  cwd: {}\n{extra}",
        cwd.display()
    )
}

#[test]
fn a_cwd_that_is_inside_or_above_a_sensitive_directory_is_refused_by_worker_add() {
    let temp = tempfile::tempdir().expect("temp");
    let root = temp.path().canonicalize().expect("resolves");
    // The operator's home, a non-default mecha home holding secrets.yml inside a project, and
    // a Docker socket of the operator's choosing.
    let user_home = root.join("users/alice");
    let project = root.join("project");
    let mecha_home = project.join(".mecha");
    let sockets = root.join("sockets");
    for dir in [
        user_home.join(".ssh"),
        user_home.join("code/widgets"),
        mecha_home.clone(),
        sockets.clone(),
    ] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(mecha_home.join("secrets.yml"), "tokens: {}\n").expect("secrets");
    let socket = sockets.join("docker.sock");
    let _listening = std::os::unix::net::UnixListener::bind(&socket).expect("socket");
    std::os::unix::fs::symlink("/run", root.join("innocent")).expect("link");
    let docker_host = format!("unix://{}", socket.display());
    let env = [
        ("HOME", user_home.to_str().expect("utf-8")),
        ("DOCKER_HOST", docker_host.as_str()),
    ];
    let files = tempfile::tempdir().expect("worker files");

    let mut cases: Vec<(PathBuf, String)> = [
        "/etc", "/proc", "/sys", "/dev", "/boot", "/usr", "/var/lib", "/root", "/run",
    ]
    .iter()
    .map(|dir| (PathBuf::from(dir), format!("{dir} or below it")))
    .collect();
    cases.extend([
        (PathBuf::from("/"), "the root directory".to_owned()),
        (PathBuf::from("/usr/local"), "/usr or below it".to_owned()),
        (PathBuf::from("/var/run"), "/run or below it".to_owned()),
        (PathBuf::from("/var"), "is a parent of /var/run".to_owned()),
        (PathBuf::from("/home"), "/home, which every user".to_owned()),
        (PathBuf::from("/tmp"), "/tmp, which every user".to_owned()),
        (
            user_home.clone(),
            format!("is the home directory {}", user_home.display()),
        ),
        (
            root.join("users"),
            format!("is a parent of the home directory {}", user_home.display()),
        ),
        (
            user_home.join(".ssh"),
            ".ssh or below it, which holds keys or logins".to_owned(),
        ),
        (
            mecha_home.clone(),
            format!("the mecha home {}", mecha_home.display()),
        ),
        (
            project.clone(),
            format!("is a parent of the mecha home {}", mecha_home.display()),
        ),
        (sockets.clone(), "the Docker socket's directory".to_owned()),
        (root.join("innocent"), "(resolved to /run)".to_owned()),
        (root.join("../../run"), "(resolved to /run)".to_owned()),
    ]);
    for (index, (cwd, expected)) in cases.iter().enumerate() {
        if !cwd.exists() {
            // A system directory this machine does not have (/boot in some containers).
            continue;
        }
        let name = format!("exposed-{index}");
        let file = worker_file(files.path(), &name, &managed(&name, cwd, ""));
        let (ok, stdout, stderr) = mecha(
            &mecha_home,
            &env,
            &["worker", "add", file.to_str().expect("utf-8")],
        );
        assert!(!ok, "{} was accepted: {stdout}", cwd.display());
        for part in [
            "docker.cwd",
            &cwd.display().to_string(),
            expected,
            "mount a project directory instead",
        ] {
            assert!(
                stderr.contains(part),
                "{}: {part} not in {stderr}",
                cwd.display()
            );
        }
    }

    // A project directory is fine.
    let project_dir = user_home.join("code/widgets");
    let file = worker_file(
        files.path(),
        "widgets",
        &managed("widgets", &project_dir, ""),
    );
    let (ok, stdout, stderr) = mecha(
        &mecha_home,
        &env,
        &["worker", "add", file.to_str().expect("utf-8")],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("added widgets (managed)"), "{stdout}");
}

/// The `uid:gid` a container runs as when its worker names no user: the user running mecha,
/// unless that is root.
fn unnamed_user(owner: &str) -> String {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        owner.to_owned()
    } else {
        format!("{uid}:{gid}")
    }
}

#[test]
fn a_root_daemons_containers_run_as_a_user_other_than_root_unless_the_worker_says_so() {
    let test = "a_root_daemons_containers_run_as_a_user_other_than_root_unless_the_worker_says_so";
    if !docker::ready(test) {
        return;
    }
    let names = ["unnamed-root-cwd", "unnamed-owned-cwd", "named-root"];
    for name in names {
        docker::clean(name);
    }
    let home = Home::new(FAST);
    // One workspace owned by whoever runs the tests (root in CI's container), one by another
    // user, as a project checked out by a colleague would be.
    let root_owned = tempfile::tempdir().expect("workspace");
    let colleague = tempfile::tempdir().expect("workspace");
    // SAFETY: getuid cannot fail and touches no memory.
    let as_root = unsafe { libc::getuid() } == 0;
    if as_root {
        std::os::unix::fs::chown(colleague.path(), Some(4321), Some(4321)).expect("chown");
    }
    for (name, cwd, extra, expected) in [
        (names[0], root_owned.path(), "", unnamed_user("65534:65534")),
        (names[1], colleague.path(), "", unnamed_user("4321:4321")),
        (
            names[2],
            root_owned.path(),
            "  user: '0:0'\n",
            "0:0".to_owned(),
        ),
    ] {
        let file = worker_file(home.path(), name, &managed(name, cwd, extra));
        let (ok, _, stderr) = home.mecha(&["worker", "add", file.to_str().expect("utf-8")]);
        assert!(ok, "worker add {name}: {stderr}");
        let (ok, stdout, stderr) = home.mecha(&["worker", "start", name]);
        assert!(ok, "worker start {name}: {stderr}");
        assert!(stdout.starts_with(&format!("started {name}")), "{stdout}");
        let container = inspect(&format!("mecha-worker-{name}")).expect("the container exists");
        assert_eq!(container["Config"]["User"], expected.as_str(), "{name}");
        assert_eq!(
            container["State"]["Running"], true,
            "{name} serves as that user"
        );
        let (ok, _, stderr) = home.mecha(&["worker", "remove", name]);
        assert!(ok, "worker remove {name}: {stderr}");
    }
}

async fn api_get(daemon: &Daemon, path: &str) -> (u16, String) {
    let response = client()
        .get(daemon.url(path))
        .header("Authorization", format!("Bearer {API_KEY}"))
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Whether `text` holds 64 hex digits in a row: the shape of an adapter's key.
fn has_key_shape(text: &str) -> bool {
    text.as_bytes()
        .split(|byte| !byte.is_ascii_hexdigit())
        .any(|run| run.len() >= 64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_port_answers_its_daemon_only() {
    let ollama = LlmServer::ollama("hello from llama").await;
    let home = Home::new(&format!("api_key: {API_KEY}\n{FAST}"));
    let file = worker_file(
        home.path(),
        "llama",
        &format!(
            "name: llama\nadapter:\n  type: ollama\n  upstream: {}\n  model: llama3\n",
            ollama.url
        ),
    );
    let (ok, _, stderr) = home.mecha(&["worker", "add", file.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let daemon = Daemon::start(&home);

    // The port is listed, as it always was.
    let (status, listed) = api_get(&daemon, "/workers").await;
    assert_eq!(status, 200, "{listed}");
    let workers: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let llama = &workers[0];
    assert_eq!(llama["state"], "online", "{listed}\n{}", daemon.log());
    let endpoint = llama["endpoint"].as_str().expect("endpoint").to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    // Any local process, or a page in a browser, posting to it is turned away.
    for authorization in [
        None,
        Some("Bearer "),
        Some(&format!("Bearer {API_KEY}")[..]),
    ] {
        for (method, path) in [("POST", "/task"), ("GET", "/health")] {
            let mut request = client()
                .request(method.parse().expect("method"), format!("{endpoint}{path}"))
                .header("Content-Type", "application/json")
                .body(r#"{"id":"x","prompt":"spend the operator's key","context":{}}"#);
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            let response = request.send().await.expect("sent");
            assert_eq!(
                response.status().as_u16(),
                401,
                "{method} {path} with {authorization:?}"
            );
        }
    }
    assert!(ollama.requests().is_empty(), "nothing reached the model");

    // The daemon itself still dispatches to it.
    let response = client()
        .post(daemon.url("/task"))
        .header("Authorization", format!("Bearer {API_KEY}"))
        .header("Content-Type", "application/json")
        .body(r#"{"prompt":"say hi","worker":"llama"}"#)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(status, 202, "{text}");
    let task: serde_json::Value = serde_json::from_str(&text).expect("json");
    let id = task["id"].as_str().expect("id");
    let mut done = serde_json::Value::Null;
    for _ in 0..500 {
        let (_, text) = api_get(&daemon, &format!("/task/{id}")).await;
        done = serde_json::from_str(&text).unwrap_or_default();
        if done["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(done["state"], "completed", "{done}\n{}", daemon.log());
    assert_eq!(done["result"]["output"], "hello from llama");
    assert_eq!(ollama.requests().len(), 1);

    // The key is shown nowhere.
    let (_, listed) = api_get(&daemon, "/workers").await;
    let (ok, cli_listed, _) = home.mecha(&["worker", "ls", "--json"]);
    assert!(ok);
    for text in [&listed, &cli_listed] {
        assert!(
            !has_key_shape(text),
            "something key-shaped is shown: {text}"
        );
    }
}

#[test]
fn endpoints_and_upstreams_at_metadata_addresses_are_refused_by_worker_add() {
    let home = Home::new(FAST);
    for (index, (url, shown)) in [
        ("http://169.254.169.254/latest", "169.254.169.254"),
        ("http://2852039166", "169.254.169.254"),
        ("http://169.254.170.2", "169.254.170.2"),
        ("http://100.100.100.200", "100.100.100.200"),
        ("http://192.0.0.192", "192.0.0.192"),
        ("http://[fd00:ec2::254]", "fd00:ec2::254"),
        ("http://[::ffff:169.254.169.254]", "::ffff:169.254.169.254"),
        ("http://[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe"),
        ("http://[fe80::1]:8080", "fe80::1"),
    ]
    .into_iter()
    .enumerate()
    {
        for (kind, field, yaml) in [
            ("live", "endpoint", format!("endpoint: {url}\n")),
            (
                "adapter",
                "adapter.upstream",
                format!("adapter:\n  type: openai\n  upstream: {url}\n  model: m\n"),
            ),
        ] {
            let name = format!("{kind}-{index}");
            let file = worker_file(home.path(), &name, &format!("name: {name}\n{yaml}"));
            let (ok, _, stderr) = home.mecha(&["worker", "add", file.to_str().expect("utf-8")]);
            assert!(!ok, "{kind} at {url} was accepted");
            assert!(
                stderr.contains(&format!("{field}: points at {shown}, ")),
                "{url}: {stderr}"
            );
            assert!(stderr.contains("which mecha never connects to"), "{stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_granted_a_metadata_address_is_refused_by_the_gate() {
    // The operator granted the responder a metadata address, with private networks allowed:
    // the gate refuses it all the same, before any connection.
    let home = Home::new(&format!(
        "{FAST}responders:\n  github:\n    api_url: http://169.254.170.2\n    allow_private_network: true\n"
    ));
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\n  token: ghp_gateCanary0123456789abcdefABCDEF01\n"
    ));
    let worker = TestWorker::scripted(
        Vec::new(),
        Answer::Ok(serde_json::json!({ "comment": { "body": "hello" } }).to_string()),
    )
    .await;
    home.add_worker(&format!(
        "name: commenter\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: review\n",
        worker.endpoint
    ));
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&daemon, "pull_request", "gate-1", &body).await;
    assert_eq!(status, 202, "{event}");
    let refusal = "refused a request to a metadata or link-local address";
    let mut log = String::new();
    for _ in 0..500 {
        log = daemon.log();
        if log.contains(refusal) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let line = log
        .lines()
        .find(|line| line.contains(refusal))
        .unwrap_or_else(|| panic!("the gate never refused:\n{log}"));
    assert!(line.contains("169.254.170.2"), "{line}");
    assert!(line.contains("github"), "names the plugin: {line}");
}
