//! The CLI as a user meets it: versions, help, plugins and events.

use crate::support::daemon::{Daemon, Home, send_github};
use crate::support::{fixtures, plugins};

#[test]
fn version_names_the_commit() {
    let (ok, stdout, _) = Home::empty().mecha(&["--version"]);
    assert!(ok);
    assert!(
        stdout.starts_with(&format!("mecha {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    assert!(stdout.contains("commit "), "{stdout}");
}

#[test]
fn every_command_explains_itself() {
    let home = Home::empty();
    for command in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["events", "ls", "--help"],
        vec!["events", "show", "--help"],
        vec!["plugin", "ls", "--help"],
        vec!["plugin", "install", "--help"],
        vec!["plugin", "upgrade", "--help"],
        vec!["plugin", "rollback", "--help"],
        vec!["plugin", "rm", "--help"],
        vec!["plugin", "inspect", "--help"],
        vec!["dev", "send", "--help"],
        vec!["events", "replay", "--help"],
        vec!["worker", "add", "--help"],
        vec!["worker", "update", "--help"],
        vec!["worker", "remove", "--help"],
        vec!["worker", "start", "--help"],
        vec!["worker", "stop", "--help"],
        vec!["worker", "ls", "--help"],
        vec!["config", "--help"],
        vec!["tasks", "ls", "--help"],
        vec!["tasks", "show", "--help"],
        vec!["tasks", "retry", "--help"],
        vec!["logs", "--help"],
        vec!["doctor", "--help"],
    ] {
        let (ok, stdout, stderr) = home.mecha(&command);
        assert!(ok, "{command:?}: {stderr}");
        assert!(stdout.contains("Usage:"), "{command:?}: {stdout}");
    }
}

#[test]
fn plugins_are_listed_installed_inspected_and_removed() {
    let home = Home::empty();
    let (ok, stdout, stderr) = home.mecha(&["plugin", "ls"]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("NAME"), "{stdout}");
    for name in ["github", "generic"] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(name))
            .expect("listed");
        assert!(
            line.contains("source") && line.contains("bundled") && line.contains("0.1.0"),
            "{line}"
        );
    }

    let (ok, stdout, _) = home.mecha(&["plugin", "inspect", "github"]);
    assert!(ok);
    assert!(stdout.contains("secrets:   webhook_secret"), "{stdout}");

    let panic = plugins::path("panic");
    let (ok, stdout, _) = home.mecha(&["plugin", "inspect", panic.to_str().expect("utf-8")]);
    assert!(ok);
    assert!(stdout.contains("name:      panic"), "{stdout}");

    let (ok, _, stderr) =
        home.mecha(&["plugin", "install", "--yes", panic.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = home.mecha(&["plugin", "ls", "--json"]);
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let panic_entry = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|plugin| plugin["name"] == "panic")
        .expect("installed plugin listed");
    assert_eq!(panic_entry["origin"]["kind"], "installed");
    assert_eq!(panic_entry["world"], "source");
    assert_eq!(panic_entry["sha256"].as_str().map(str::len), Some(64));

    let (ok, stdout, _) = home.mecha(&["plugin", "rm", "panic"]);
    assert!(ok);
    assert!(stdout.contains("removed panic"));
    let (ok, _, stderr) = home.mecha(&["plugin", "rm", "panic"]);
    assert!(!ok);
    assert!(
        stderr.contains("no installed plugin named panic"),
        "{stderr}"
    );

    let garbage = home.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not wasm").expect("written");
    let (ok, _, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        garbage.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("not a valid WebAssembly component"),
        "{stderr}"
    );
}

#[test]
fn a_tampered_installed_plugin_is_refused() {
    let home = Home::empty();
    let panic = plugins::path("panic");
    let (ok, _, stderr) =
        home.mecha(&["plugin", "install", "--yes", panic.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let installed = home.installed_component("panic");
    let mut bytes = std::fs::read(&installed).expect("installed");
    bytes.push(0);
    std::fs::write(&installed, bytes).expect("tampered");
    let (ok, _, stderr) = home.mecha(&["plugin", "ls"]);
    assert!(!ok);
    assert!(
        stderr.contains("was changed since it was installed"),
        "{stderr}"
    );
}

/// `mecha completions` writes a script each shell accepts, naming the commands; bash, which is
/// here, checks the syntax of its own.
#[test]
fn completion_scripts_name_the_commands_and_bash_accepts_its_own() {
    let home = Home::empty();
    for shell in ["bash", "zsh", "fish"] {
        let (ok, script, stderr) = home.mecha(&["completions", shell]);
        assert!(ok, "{shell}: {stderr}");
        for command in ["worker", "events", "plugin", "dev"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    let (_, script, _) = home.mecha(&["completions", "bash"]);
    let path = home.path().join("mecha.bash");
    std::fs::write(&path, &script).expect("script");
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let (ok, _, stderr) = home.mecha(&["completions", "tcsh"]);
    assert!(!ok);
    assert!(stderr.contains("possible values: bash"), "{stderr}");
}

#[tokio::test]
async fn dev_send_signs_like_github_and_events_ls_shows_the_result() {
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    let fixture = fixtures::dir("github").join("pull_request__opened.payload.json");
    let addr = daemon.base.trim_start_matches("http://").to_owned();
    let (ok, stdout, stderr) = home.mecha(&[
        "dev",
        "send",
        "github",
        fixture.to_str().expect("utf-8"),
        "--addr",
        &addr,
        "--delivery",
        "dev-1",
    ]);
    assert!(ok, "{stdout}{stderr}");
    // One line: status, id, type, actor, subject, state; not the stored event with its body.
    let line: Vec<&str> = stdout.trim_end().split(' ').collect();
    assert_eq!(line.len(), 6, "{stdout}");
    assert_eq!(
        (line[0], line[2], line[5]),
        ("202", "pull_request.opened", "received"),
        "{stdout}"
    );
    assert!(
        line[3].starts_with("actor=") && line[4].starts_with("subject="),
        "{stdout}"
    );

    let body = fixtures::read("github", "push__payload.json");
    assert_eq!(send_github(&daemon, "push", "p-1", &body).await.0, 202);

    let (ok, stdout, stderr) = home.mecha(&["events", "ls"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("ID"), "{stdout}");
    assert!(lines[1].contains("push"), "newest first: {stdout}");
    assert!(lines[2].contains("pull_request.opened"), "{stdout}");

    let id = lines[2].split_whitespace().next().expect("id");
    let (ok, stdout, _) = home.mecha(&["events", "show", id]);
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(shown["delivery_id"], "dev-1");
    assert!(shown.get("raw").is_none(), "raw only with --json");
    let (ok, _, stderr) = home.mecha(&["events", "show", "ffffffffffffffffffffffffffffffff"]);
    assert!(!ok);
    assert!(stderr.contains("no event with id"), "{stderr}");
    let (ok, _, stderr) = home.mecha(&["events", "show", "nope"]);
    assert!(!ok, "{stderr}");
}

#[test]
fn worker_add_reports_every_problem_with_file_line_and_column_and_adds_nothing() {
    let home = Home::empty();
    let dir = home.path().join("workers");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::write(
        dir.join("good.yaml"),
        "name: good\nendpoint: http://127.0.0.1:9\n",
    )
    .expect("file");
    std::fs::write(
        dir.join("bad.yaml"),
        "name: bad\nendpoint: http://127.0.0.1:9\nevents:\n  - source: github\n    on: [push]\n    prompt: hi\n    filtr: {}\n",
    )
    .expect("file");
    let (ok, _, stderr) = home.mecha(&["worker", "add", dir.to_str().expect("utf-8")]);
    assert!(!ok);
    assert!(stderr.contains("bad.yaml:7:5"), "{stderr}");
    assert!(stderr.contains("filtr"), "{stderr}");
    let (_, stdout, _) = home.mecha(&["worker", "ls"]);
    assert!(!stdout.contains("good"), "all or nothing: {stdout}");
}

/// `stop` and `ls` hand no secrets to any worker, so a `secrets.yml` that cannot be used (here
/// one others may read) does not stop them; `start`, which may, still refuses it.
#[test]
fn a_secrets_file_that_cannot_be_used_blocks_only_worker_start() {
    let home = Home::empty();
    let path = home.path().join("w.yaml");
    std::fs::write(&path, "name: w\nendpoint: http://127.0.0.1:9\n").expect("file");
    let (ok, _, stderr) = home.mecha(&["worker", "add", path.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let secrets = home.path().join("secrets.yml");
    std::fs::write(&secrets, "github:\n  webhook_secret: s3cret-canary\n").expect("secrets");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (ok, stdout, stderr) = home.mecha(&["worker", "start", "w"]);
    assert!(ok, "{stdout}{stderr}");
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let (ok, stdout, stderr) = home.mecha(&["worker", "ls"]);
    assert!(ok && stdout.contains('w'), "{stdout}{stderr}");
    let (ok, stdout, stderr) = home.mecha(&["worker", "stop", "w"]);
    assert!(ok, "{stdout}{stderr}");
    let (ok, _, stderr) = home.mecha(&["worker", "start", "w"]);
    assert!(!ok);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains("s3cret-canary"), "{stderr}");
}

#[test]
fn worker_definitions_interpolate_from_the_environment_but_are_stored_as_written() {
    let home = Home::empty();
    let path = home.path().join("env.yaml");
    std::fs::write(&path, "name: env\nendpoint: ${MECHA_TEST_ENDPOINT}\n").expect("file");
    let (ok, _, stderr) = home.mecha(&["worker", "add", path.to_str().expect("utf-8")]);
    assert!(!ok, "an unset variable is an error");
    assert!(stderr.contains("MECHA_TEST_ENDPOINT"), "{stderr}");

    let output = std::process::Command::new(crate::support::daemon::binary())
        .args(["worker", "add", path.to_str().expect("utf-8")])
        .env("MECHA_HOME", home.path())
        .env("MECHA_TEST_ENDPOINT", "http://127.0.0.1:4321")
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (ok, stdout, _) = home.mecha(&["config", "env"]);
    assert!(ok);
    assert!(
        stdout.contains("endpoint: ${MECHA_TEST_ENDPOINT}"),
        "{stdout}"
    );
    let (ok, _, stderr) = home.mecha(&["config", "nobody"]);
    assert!(!ok);
    assert!(stderr.contains("no worker named nobody"), "{stderr}");

    let (ok, _, stderr) = home.mecha(&["worker", "remove", "env"]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = home.mecha(&["worker", "remove", "env"]);
    assert!(!ok);
    assert!(stderr.contains("env"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let worker = crate::support::worker::TestWorker::start("ok").await;
    let home = Home::new("");
    let path = home.path().join("w.yaml");
    std::fs::write(
        &path,
        format!("name: w\nendpoint: {}\nevents:\n  - source: github\n    on: [push]\n    prompt: push\n", worker.endpoint),
    )
    .expect("file");
    assert!(
        home.mecha(&["worker", "add", path.to_str().expect("utf-8")])
            .0
    );
    assert!(home.mecha(&["worker", "start", "w"]).0);
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "push__payload.json");
    assert_eq!(send_github(&daemon, "push", "m-1", &body).await.0, 202);
    assert_eq!(send_github(&daemon, "push", "m-1", &body).await.0, 200);
    worker.wait_for(1).await;
    let mut text = String::new();
    for _ in 0..250 {
        text = crate::support::daemon::client()
            .get(daemon.url("/metrics"))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("body");
        if text.contains("mecha_tasks_completed 1\n") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for line in [
        "mecha_webhooks_received 2\n",
        "mecha_events_dedup_skipped 1\n",
        "mecha_tasks_created 1\n",
        "mecha_tasks_completed 1\n",
        "mecha_dispatch_duration_seconds_count 1\n",
        "# TYPE mecha_ingest_duration_seconds histogram\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let (ok, stdout, _) = home.mecha(&["logs", "--action", "task."]);
    assert!(ok);
    assert!(
        stdout.contains("task.completed") && stdout.contains("task.sent"),
        "{stdout}"
    );
    let (ok, stdout, _) = home.mecha(&["tasks", "ls"]);
    assert!(ok);
    assert!(
        stdout
            .lines()
            .nth(1)
            .is_some_and(|line| line.contains("completed")),
        "{stdout}"
    );
}
