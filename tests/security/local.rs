//! See `mod.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use crate::support::daemon::{
    self, Daemon, GITHUB_SECRET, Home, client, get_json, send_github, status_and_json, wait_tasks,
};
use crate::support::fixtures;
use crate::support::worker::TestWorker;

/// How long a `mecha` command may take before the test calls it hung: long enough for a cold
/// start on a loaded machine, so only a command that never ends trips it.
const HANG: Duration = Duration::from_secs(120);

/// Runs `mecha ARGS` on `home` and returns (success, stderr); kills it and fails the test if it
/// has not finished after [`HANG`].
fn mecha_or_hang(home: &Home, args: &[&str]) -> (bool, String) {
    let mut child = Command::new(daemon::binary())
        .args(args)
        .env("MECHA_HOME", home.path())
        .env_remove("MECHA_DB_PATH")
        .env_remove("MECHA_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mecha runs");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`mecha {}` hung", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Posts a GitHub `push` signed with [`GITHUB_SECRET`] and no delivery id.
async fn send_github_without_delivery(daemon: &Daemon, body: &[u8]) -> (u16, serde_json::Value) {
    let response = client()
        .post(daemon.url("/webhook/github"))
        .header("X-GitHub-Event", "push")
        .header(
            "X-Hub-Signature-256",
            mecha::signature::github_signature(GITHUB_SECRET.as_bytes(), body),
        )
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("request sent");
    status_and_json(response).await
}

async fn event_count(daemon: &Daemon) -> usize {
    let (status, listed) = get_json(daemon, "/events").await;
    assert_eq!(status, 200, "{listed}");
    listed.as_array().map_or(0, Vec::len)
}

/// A captured signed body sent again under other delivery ids, or none, runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_body_sent_again_is_a_replay_whatever_its_delivery_id() {
    let worker = TestWorker::start("done").await;
    let home = Home::new("");
    home.add_worker(&format!(
        "name: pusher\nendpoint: {}\nevents:\n  - source: github\n    on: [push]\n    prompt: \"push\"\n",
        worker.endpoint
    ));
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "push__payload.json");
    let (status, first) = send_github(&daemon, "push", "replay-1", &body).await;
    assert_eq!(status, 202, "{first}");
    for delivery in ["replay-2", "replay-3"] {
        let (status, reply) = send_github(&daemon, "push", delivery, &body).await;
        assert_eq!(status, 200, "{delivery}: {reply}");
        assert_eq!(reply["status"], "duplicate", "{reply}");
        assert_eq!(reply["id"], first["id"], "{reply}");
    }
    let (status, reply) = send_github_without_delivery(&daemon, &body).await;
    assert_eq!(
        (status, &reply["status"]),
        (200, &"duplicate".into()),
        "{reply}"
    );
    // One event, hence one task: a replay stores nothing that could become another.
    let id = first["id"].as_str().expect("id");
    wait_tasks(&daemon, &format!("event={id}&state=completed"), 1).await;
    assert_eq!(event_count(&daemon).await, 1);
    let (_, tasks) = get_json(&daemon, "/tasks").await;
    assert_eq!(tasks["tasks"].as_array().map(Vec::len), Some(1), "{tasks}");
    assert_eq!(worker.received().len(), 1);

    // A signed body that never had a delivery id is stored once too.
    let issue = fixtures::read("github", "issues__opened.payload.json");
    let signed = mecha::signature::github_signature(GITHUB_SECRET.as_bytes(), &issue);
    let post = || {
        client()
            .post(daemon.url("/webhook/github"))
            .header("X-GitHub-Event", "issues")
            .header("X-Hub-Signature-256", &signed)
            .body(issue.clone())
            .send()
    };
    let (status, stored) = status_and_json(post().await.expect("sent")).await;
    assert_eq!(status, 202, "{stored}");
    let (status, reply) = status_and_json(post().await.expect("sent")).await;
    assert_eq!(
        (status, &reply["status"]),
        (200, &"duplicate".into()),
        "{reply}"
    );
    assert_eq!(reply["id"], stored["id"]);
    assert_eq!(event_count(&daemon).await, 2);

    // The replay survives a restart: the digests are on disk.
    drop(daemon);
    let daemon = Daemon::start(&home);
    let (status, reply) = send_github(&daemon, "push", "replay-4", &body).await;
    assert_eq!(
        (status, &reply["status"]),
        (200, &"duplicate".into()),
        "{reply}"
    );
    assert_eq!(event_count(&daemon).await, 2);
}

/// What a server saw: the credential headers of each request it received.
type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// Headers that carry what `mecha dev send` authenticates with.
const CREDENTIAL_HEADERS: [&str; 5] = [
    "x-api-key",
    "authorization",
    "x-gitlab-token",
    "x-hub-signature-256",
    "x-telegram-bot-api-secret-token",
];

/// A loopback server that records the credential headers of every request and answers 202.
async fn recording_server() -> (String, Seen) {
    async fn record(State(seen): State<Seen>, headers: HeaderMap) -> impl IntoResponse {
        let credentials = CREDENTIAL_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect();
        seen.lock().expect("lock").push(credentials);
        StatusCode::ACCEPTED
    }
    let seen = Seen::default();
    let router = Router::new().fallback(record).with_state(seen.clone());
    (serve(router).await, seen)
}

/// A loopback server that redirects every request to the same path at `target`.
async fn redirecting_server(target: String) -> String {
    let router = Router::new().fallback(move |uri: axum::http::Uri| async move {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("{target}{}", uri.path()))],
        )
    });
    serve(router).await
}

/// Serves `router` on a free loopback port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// `mecha dev send` posts to the address it is given; a redirect to another origin (here
/// another loopback port) is refused, so the credentials never reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_requests_do_not_follow_redirects_to_another_origin() {
    let (elsewhere, seen) = recording_server().await;
    let redirector = redirecting_server(elsewhere).await;
    let addr = redirector.trim_start_matches("http://").to_owned();
    let home = Home::new("api_key: test-api-key\n");
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\ngitlab:\n  webhook_secret: gitlab-token\n"
    ));
    let gitlab = fixtures::dir("gitlab").join("merge_request.json");
    let generic = fixtures::dir("github").join("push__payload.json");
    let sends = [
        vec!["dev", "send", "gitlab", gitlab.to_str().expect("utf-8")],
        vec![
            "dev",
            "send",
            "generic",
            generic.to_str().expect("utf-8"),
            "--event",
            "push",
        ],
    ];
    for mut args in sends {
        args.extend(["--addr", &addr]);
        let (ok, stderr) = tokio::task::spawn_blocking({
            let home_path = home.path().to_owned();
            let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
            move || run_in(&home_path, &args)
        })
        .await
        .expect("ran");
        assert!(!ok, "the redirect was followed: {stderr}");
        assert!(stderr.contains("another origin"), "{stderr}");
        assert!(!stderr.contains("gitlab-token"), "{stderr}");
        assert!(!stderr.contains("test-api-key"), "{stderr}");
    }
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter().all(Vec::is_empty),
        "credentials reached the other origin: {seen:?}"
    );
}

/// Runs `mecha ARGS` with `home` as its home; returns (success, stderr).
fn run_in(home: &Path, args: &[String]) -> (bool, String) {
    let output = Command::new(daemon::binary())
        .args(args)
        .env("MECHA_HOME", home)
        .env_remove("MECHA_DB_PATH")
        .env_remove("MECHA_API_KEY")
        .output()
        .expect("mecha runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `mecha plugin install` reads regular files only, within a size cap, and ends quickly with an
/// error that names the problem; a FIFO with no writer, and `/dev/zero`, would otherwise hang it.
#[test]
fn plugin_install_takes_regular_files_of_bounded_size_only() {
    let home = Home::new("");
    let fifo = home.path().join("plugin.wasm");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let big = home.path().join("big.wasm");
    std::fs::File::create(&big)
        .expect("created")
        .set_len(64 * 1024 * 1024 + 1)
        .expect("sparse file");
    let zero_link = home.path().join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &zero_link).expect("link");
    let cases = [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a device"),
        (zero_link.as_path(), "a device"),
        (home.path(), "a directory"),
        (big.as_path(), "larger than 64 MiB"),
    ];
    for (path, expected) in cases {
        let (ok, stderr) = mecha_or_hang(
            &home,
            &["plugin", "install", "--yes", path.to_str().expect("utf-8")],
        );
        assert!(!ok, "{} was installed", path.display());
        assert!(stderr.contains(expected), "{}: {stderr}", path.display());
    }
    let (ok, stdout, stderr) = home.mecha(&["plugin", "ls"]);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("installed"), "{stdout}");
}

/// An installed plugin may not take a bundled plugin's name, so it never receives what the
/// operator configured for the bundled one (the `github` section's token and API origin).
#[test]
fn a_plugin_named_like_a_bundled_one_is_refused() {
    let home = Home::new("");
    // The bundled github source itself, as a file: it calls itself `github`.
    let github =
        daemon::target_dir().join("wasm-plugins/wasm32-wasip2/plugin/mecha_plugin_github.wasm");
    assert!(github.is_file(), "{} is built", github.display());
    let (ok, stderr) = mecha_or_hang(
        &home,
        &[
            "plugin",
            "install",
            "--yes",
            github.to_str().expect("utf-8"),
        ],
    );
    assert!(!ok, "a second github was installed");
    assert!(stderr.contains("the name of a bundled plugin"), "{stderr}");
    assert!(stderr.contains("another name"), "{stderr}");
    assert!(
        !home.path().join("plugins/lock.json").exists(),
        "nothing was installed"
    );
}

/// `config.yml` may hold the API key: a copy others can read is refused by the daemon and by
/// CLI commands, with the chmod that fixes it.
#[test]
fn a_config_file_others_can_read_is_refused() {
    let home = Home::new("api_key: test-api-key\n");
    let config = home.path().join("config.yml");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let chmod = format!("chmod 600 {}", config.display());
    let stderr = home.serve_refused();
    assert!(stderr.contains(&chmod), "{stderr}");
    assert!(!stderr.contains("test-api-key"), "{stderr}");
    let (ok, _, stderr) = home.mecha(&["plugin", "ls"]);
    assert!(!ok);
    assert!(stderr.contains(&chmod), "{stderr}");
}

/// A mecha home that others may enter is made private at start, and the log says so.
#[test]
fn an_open_home_directory_is_made_private_at_start() {
    let home = Home::new("");
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let daemon = Daemon::start(&home);
    let mode = std::fs::metadata(home.path())
        .expect("home")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let log = daemon.stop();
    assert!(log.contains("its mode is now 700"), "{log}");
}
