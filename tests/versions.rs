//! Installed plugins over time: consent to what a plugin asks for, upgrades that ask again when
//! they want more, rollbacks, changes a running daemon takes up without a restart (also under
//! steady webhook load), and installs killed at random points.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mecha::digest::sha256_hex;

use crate::support::daemon::{Daemon, Home, binary, get_json, running_sha256, send_github};
use crate::support::fixtures;
use crate::support::minisign::{Key, minisign_present};
use crate::support::plugins;
use crate::support::registry::{Registry, available, mecha};

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

/// A copy of versioned plugin `version` at `path`, as a build would leave it.
fn place(version: u8, path: &Path) -> String {
    std::fs::copy(plugins::versioned(version), path).expect("copied");
    sha256_hex(&std::fs::read(path).expect("read"))
}

#[test]
fn an_install_is_granted_only_with_consent() {
    let home = Home::empty();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("versioned.wasm");
    place(2, &file);

    // No terminal to ask on (standard input is not one) and no --yes: nothing is installed,
    // and the operator is shown what it asks for and how to grant it.
    let (ok, stdout, stderr) = home.mecha(&["plugin", "install", text(&file)]);
    assert!(!ok, "installed without consent");
    assert!(stdout.contains("https://api.upgrade.example"), "{stdout}");
    assert!(stderr.contains("nobody confirmed it"), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert!(
        !home.path().join("plugins/lock.json").exists(),
        "nothing was installed"
    );

    let (ok, stdout, stderr) = home.mecha(&["plugin", "install", "--yes", text(&file)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("installed versioned 0.2.0"), "{stdout}");
    let entry = home.installed("versioned").expect("listed");
    assert_eq!(
        entry["granted"]["hosts"],
        serde_json::json!(["https://api.upgrade.example"])
    );

    // What runs is what was granted: a lock whose grant was narrowed (as if the operator had
    // granted less) gives the plugin no origin, whatever it declares.
    let lock_path = home.path().join("plugins/lock.json");
    let lock = std::fs::read_to_string(&lock_path).expect("lock");
    let narrowed = lock.replace("\"https://api.upgrade.example\"", "");
    assert_ne!(lock, narrowed);
    std::fs::write(&lock_path, narrowed).expect("lock written");
    let entry = home.installed("versioned").expect("listed");
    assert_eq!(entry["hosts"], serde_json::json!([]), "{entry}");
}

/// Runs `mecha plugin install FILE` on a terminal (a pseudo-terminal made by util-linux's
/// `script`) and answers its question with `answer`; returns what the terminal showed.
fn install_on_a_terminal(home: &Home, file: &Path, answer: &str) -> (bool, String) {
    let command = format!(
        "'{}' plugin install '{}'",
        binary().display(),
        file.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("MECHA_HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script runs (util-linux)");
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin"),
        format!("{answer}\n").as_bytes(),
    )
    .expect("answered");
    let output = child.wait_with_output().expect("script ends");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_the_operator_is_asked() {
    let home = Home::empty();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("versioned.wasm");
    place(2, &file);
    let (ok, shown) = install_on_a_terminal(&home, &file, "n");
    assert!(!ok, "installed although the answer was no:\n{shown}");
    assert!(
        shown.contains("Install versioned and grant it the above? [y/N]"),
        "{shown}"
    );
    assert!(shown.contains("https://api.upgrade.example"), "{shown}");
    assert!(shown.contains("not confirmed"), "{shown}");
    assert!(home.installed("versioned").is_none());

    let (ok, shown) = install_on_a_terminal(&home, &file, "y");
    assert!(ok, "{shown}");
    assert!(shown.contains("installed versioned 0.2.0"), "{shown}");
    assert!(home.installed("versioned").is_some());
}

#[test]
fn upgrades_ask_again_for_more_and_rollback_restores_the_previous_digest() {
    let home = Home::empty();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("versioned.wasm");
    let first = place(1, &file);
    let (ok, _, stderr) = home.mecha(&["plugin", "install", "--yes", text(&file)]);
    assert!(ok, "{stderr}");

    // Nothing new at the source.
    let (ok, stdout, stderr) = home.mecha(&["plugin", "upgrade", "versioned"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("versioned is up to date"), "{stdout}");

    // The next build asks for an API origin the first was not granted: asked again, refused
    // without consent, and nothing changes.
    let second = place(2, &file);
    let (ok, stdout, stderr) = home.mecha(&["plugin", "upgrade", "versioned"]);
    assert!(!ok, "upgraded past its grant without consent");
    assert!(stdout.contains("asks for more than 0.1.0"), "{stdout}");
    assert!(stdout.contains("https://api.upgrade.example"), "{stdout}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(
        home.installed("versioned").expect("listed")["sha256"],
        first
    );

    let (ok, stdout, stderr) = home.mecha(&["plugin", "upgrade", "versioned", "--yes"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("upgraded versioned from 0.1.0"), "{stdout}");
    let entry = home.installed("versioned").expect("listed");
    assert_eq!(entry["sha256"], second);
    assert_eq!(entry["version"], "0.2.0");
    assert_eq!(entry["previous"][0]["sha256"], first);

    // An older build at the source is no upgrade.
    place(1, &file);
    let (ok, _, stderr) = home.mecha(&["plugin", "upgrade", "versioned", "--yes"]);
    assert!(!ok, "downgraded by upgrade");
    assert!(
        stderr.contains("older than the installed 0.2.0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mecha plugin rollback versioned"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = home.mecha(&["plugin", "rollback", "versioned"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("rolled versioned back from 0.2.0"),
        "{stdout}"
    );
    let entry = home.installed("versioned").expect("listed");
    assert_eq!(entry["sha256"], first, "the previous digest is back");
    assert_eq!(entry["granted"]["hosts"], serde_json::json!([]));
    assert!(entry.get("previous").is_none(), "{entry}");
    let (ok, _, stderr) = home.mecha(&["plugin", "rollback", "versioned"]);
    assert!(!ok);
    assert!(
        stderr.contains("no earlier version of versioned"),
        "{stderr}"
    );

    // Only the components the lock names are left.
    let (ok, _, stderr) = home.mecha(&["plugin", "rm", "versioned"]);
    assert!(ok, "{stderr}");
    let left: Vec<String> = std::fs::read_dir(home.path().join("plugins"))
        .expect("plugins dir")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".wasm"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Sends a webhook to the `versioned` source; its event type names the version that served it
/// (404 once it is removed).
async fn served_by(daemon: &Daemon) -> (u16, String) {
    let response = daemon
        .client()
        .post(daemon.url("/webhook/versioned"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    (status, body["type"].as_str().unwrap_or_default().to_owned())
}

/// Polls until the daemon serves `/webhook/versioned` as `expected` (status, event type).
async fn wait_served(daemon: &Daemon, expected: (u16, &str)) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (0, String::new());
    while Instant::now() < deadline {
        last = served_by(daemon).await;
        if (last.0, last.1.as_str()) == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the daemon never served {expected:?}; last {last:?}\n{}",
        daemon.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_takes_up_installs_upgrades_rollbacks_and_removals() {
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("versioned.wasm");
    let pid = daemon.pid();

    assert_eq!(served_by(&daemon).await.0, 404, "not installed yet");
    place(1, &file);
    let (ok, _, stderr) = home.mecha(&["plugin", "install", "--yes", text(&file)]);
    assert!(ok, "{stderr}");
    wait_served(&daemon, (202, "version-0.1.0")).await;

    let second = place(2, &file);
    let (ok, _, stderr) = home.mecha(&["plugin", "upgrade", "versioned", "--yes"]);
    assert!(ok, "{stderr}");
    wait_served(&daemon, (202, "version-0.2.0")).await;
    let (status, running) = get_json(&daemon, "/plugins").await;
    assert_eq!(status, 200);
    let versioned = running
        .as_array()
        .expect("array")
        .iter()
        .find(|plugin| plugin["name"] == "versioned")
        .expect("running")
        .clone();
    assert_eq!(versioned["sha256"], second);
    assert_eq!(
        versioned["hosts"],
        serde_json::json!(["https://api.upgrade.example"])
    );

    let (ok, _, stderr) = home.mecha(&["plugin", "rollback", "versioned"]);
    assert!(ok, "{stderr}");
    wait_served(&daemon, (202, "version-0.1.0")).await;

    let (ok, _, stderr) = home.mecha(&["plugin", "rm", "versioned"]);
    assert!(ok, "{stderr}");
    wait_served(&daemon, (404, "")).await;
    assert_eq!(daemon.pid(), pid, "no restart");
    let log = daemon.stop();
    assert!(log.contains("installed plugins changed"), "{log}");
}

/// `wasm` with a custom section appended: the same plugin, another digest, as a rebuild with
/// other build metadata gives.
fn rebuilt(wasm: &[u8], note: &str) -> Vec<u8> {
    fn leb128(mut value: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"mecha-test-build";
    let mut content = Vec::new();
    leb128(name.len(), &mut content);
    content.extend_from_slice(name);
    content.extend_from_slice(note.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0);
    leb128(content.len(), &mut out);
    out.extend_from_slice(&content);
    out
}

async fn wait_running_github(daemon: &Daemon, sha256: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while running_sha256(daemon, "github", "source").await.as_deref() != Some(sha256) {
        assert!(
            Instant::now() < deadline,
            "the daemon never ran {sha256}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_source_is_upgraded_and_rolled_back_under_load_without_a_failed_webhook() {
    let Some(registry) = Registry::start("github_source_upgraded_under_load", false) else {
        return;
    };
    let docker = tempfile::tempdir().expect("temp dir");
    let home = Home::new("");
    let dir = tempfile::tempdir().expect("temp dir");
    let bundled = std::fs::read(
        crate::support::daemon::target_dir()
            .join("wasm-plugins/wasm32-wasip2/plugin/mecha_plugin_github.wasm"),
    )
    .expect("the bundled github source is built");
    // Published as a publisher would: signed, so that an install by tag (and the upgrade to
    // the next tag) is pinned by a trusted key.
    if !available(
        "github_source_upgraded_under_load",
        "minisign",
        minisign_present(),
    ) {
        return;
    }
    let key = Key::generate(dir.path(), "publisher");
    let (ok, _, stderr) = home.mecha(&["plugin", "trust", "add", text(&key.public)]);
    assert!(ok, "{stderr}");
    let repository = registry.reference("mecha/github");
    let mut digests = Vec::new();
    for (tag, note) in [("1.0.0", "first"), ("1.1.0", "second")] {
        let file = dir.path().join(format!("github-{tag}.wasm"));
        let wasm = rebuilt(&bundled, note);
        digests.push(sha256_hex(&wasm));
        std::fs::write(&file, wasm).expect("written");
        key.sign(&file);
        let signature = format!("{}.minisig", file.display());
        let push = mecha(
            &home,
            docker.path(),
            &[
                "plugin",
                "push",
                text(&file),
                &format!("{repository}:{tag}"),
                "--signature",
                &signature,
            ],
            "",
        );
        assert!(push.ok, "{}\n{}", push.stderr, registry.log());
    }
    let install = mecha(
        &home,
        docker.path(),
        &[
            "plugin",
            "install",
            "--replace-bundled",
            "--yes",
            &format!("{repository}:1.0.0"),
        ],
        "",
    );
    assert!(install.ok, "{}", install.stderr);
    assert!(
        install.stdout.contains("replaces: the bundled github"),
        "{}",
        install.stdout
    );

    let daemon = Arc::new(Daemon::start(&home));
    wait_running_github(&daemon, &digests[0]).await;
    let body = Arc::new(fixtures::read(
        "github",
        "pull_request__opened.payload.json",
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for sender in 0..4 {
        let (daemon, body, stop, sent) = (daemon.clone(), body.clone(), stop.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let delivery = format!("load-{sender}-{n}");
                // Each a distinct delivery: GitHub signs each body, and the same signed body
                // again would be a replay.
                let unique = [
                    format!("{{\"mecha_test_delivery\":\"{delivery}\",").as_bytes(),
                    &body[1..],
                ]
                .concat();
                let (status, reply) =
                    send_github(&daemon, "pull_request", &delivery, &unique).await;
                if status != 202 || reply["type"] != "pull_request.opened" {
                    failures.push(format!("{delivery}: {status} {reply}"));
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }
    let cli = |args: Vec<&'static str>| {
        let home = home.path().to_owned();
        let docker = docker.path().to_owned();
        tokio::task::spawn_blocking(move || run_in(&home, &docker, &args))
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let upgrade = cli(vec!["plugin", "upgrade", "github"]).await.expect("ran");
    assert!(upgrade.0, "{}", upgrade.2);
    assert!(
        upgrade.1.contains(":1.1.0"),
        "the newer tag was found: {}",
        upgrade.1
    );
    wait_running_github(&daemon, &digests[1]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rollback = cli(vec!["plugin", "rollback", "github"])
        .await
        .expect("ran");
    assert!(rollback.0, "{}", rollback.2);
    wait_running_github(&daemon, &digests[0]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for sender in senders {
        failures.extend(sender.await.expect("sender"));
    }
    let sent = sent.load(Ordering::Relaxed);
    eprintln!("{sent} webhooks during the upgrade and the rollback");
    assert!(sent > 20, "only {sent} webhooks were sent");
    assert!(
        failures.is_empty(),
        "{} of {sent} failed, the first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let listed = home
        .installed("github")
        .expect("the installed github is listed");
    assert_eq!(
        listed["sha256"], digests[0],
        "rollback restored the first digest"
    );
}

/// Runs `mecha ARGS` with `home` and Docker's config in `docker`: (success, stdout, stderr).
fn run_in(home: &Path, docker: &Path, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(binary())
        .args(args)
        .env("MECHA_HOME", home)
        .env("DOCKER_CONFIG", docker)
        .env_remove("MECHA_API_KEY")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("mecha runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A small deterministic generator for the kill points; the seed is printed so a failure can be
/// run again with `MECHA_TEST_SEED`.
struct Points(u64);

impl Points {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[test]
fn installs_killed_at_random_points_leave_a_consistent_home() {
    let home = Home::empty();
    let dir = tempfile::tempdir().expect("temp dir");
    let files: Vec<PathBuf> = [1u8, 2]
        .iter()
        .map(|version| {
            let file = dir.path().join(format!("versioned-{version}.wasm"));
            place(*version, &file);
            file
        })
        .collect();
    // How long a whole install takes here, to spread the kills over it.
    let begun = Instant::now();
    let (ok, _, stderr) = home.mecha(&["plugin", "install", "--yes", text(&files[0])]);
    assert!(ok, "{stderr}");
    let full = u64::try_from(begun.elapsed().as_micros()).unwrap_or(u64::MAX);
    let seed = std::env::var("MECHA_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos() as u64 | 1)
                .unwrap_or(1)
        });
    eprintln!("kill points from MECHA_TEST_SEED={seed}");
    let mut points = Points(seed);
    let mut completed = 0;
    for round in 0..16 {
        let file = &files[round % 2];
        let mut child = std::process::Command::new(binary())
            .args(["plugin", "install", "--yes", text(file)])
            .env("MECHA_HOME", home.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mecha runs");
        // Anywhere from the start to a little past the end of a typical install.
        std::thread::sleep(Duration::from_micros(points.next_below(full + full / 4)));
        let _ = child.kill();
        let status = child.wait().expect("waited");
        if status.success() {
            completed += 1;
        }
        // Whatever the point, the lock names complete components: `plugin ls` reads each one
        // and checks its digest.
        let (ok, stdout, stderr) = home.mecha(&["plugin", "ls", "--json"]);
        assert!(ok, "after round {round} (seed {seed}): {stderr}");
        assert!(stdout.contains("\"versioned\""), "round {round}: {stdout}");
    }
    eprintln!("{completed} of 16 installs completed before their kill");
    let (ok, _, stderr) = home.mecha(&["plugin", "rollback", "versioned"]);
    assert!(
        ok || stderr.contains("no earlier version"),
        "rollback after the crashes: {stderr}"
    );
    // And the daemon starts on what is left.
    let daemon = Daemon::start(&home);
    drop(daemon);
}
