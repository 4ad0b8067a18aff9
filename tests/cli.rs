//! The CLI as a user meets it: versions, help, plugins and events.

use crate::support::daemon::{Daemon, Home, send_github};
use crate::support::{fixtures, minisign, plugins};

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

/// Every command but `serve` and `completions` offers `--json` and says what it prints.
#[test]
fn every_command_that_has_an_outcome_takes_json() {
    let home = Home::empty();
    for command in [
        vec!["events", "ls"],
        vec!["events", "show"],
        vec!["events", "replay"],
        vec!["plugin", "ls"],
        vec!["plugin", "install"],
        vec!["plugin", "upgrade"],
        vec!["plugin", "rollback"],
        vec!["plugin", "rm"],
        vec!["plugin", "share"],
        vec!["plugin", "inspect"],
        vec!["plugin", "new"],
        vec!["plugin", "test"],
        vec!["plugin", "push"],
        vec!["plugin", "trust", "add"],
        vec!["plugin", "trust", "ls"],
        vec!["plugin", "trust", "rm"],
        vec!["worker", "add"],
        vec!["worker", "update"],
        vec!["worker", "remove"],
        vec!["worker", "start"],
        vec!["worker", "stop"],
        vec!["worker", "ls"],
        vec!["config"],
        vec!["tasks", "ls"],
        vec!["tasks", "show"],
        vec!["tasks", "retry"],
        vec!["logs"],
        vec!["doctor"],
        vec!["dashboard"],
        vec!["dev", "send"],
    ] {
        let args = [command.as_slice(), &["--help"]].concat();
        let (ok, stdout, stderr) = home.mecha(&args);
        assert!(ok, "{command:?}: {stderr}");
        assert!(stdout.contains("--json"), "{command:?}: {stdout}");
    }
}

/// The stdout of a `--json` run, which must have succeeded, as JSON.
fn json_of(home: &Home, args: &[&str]) -> serde_json::Value {
    let (ok, stdout, stderr) = home.mecha(args);
    assert!(ok, "{args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{args:?}: {err}:\n{stdout}"))
}

/// Install, upgrade, rollback and rm print the versions they changed, as the lock file records
/// them; what the plugin asks for goes to stderr, and consent is still needed.
#[test]
fn plugin_changes_print_the_versions_as_json() {
    let home = Home::empty();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("versioned.wasm");
    let file_text = file.to_str().expect("utf-8");
    std::fs::copy(plugins::versioned(1), &file).expect("version 1 placed");

    let (ok, stdout, stderr) = home.mecha(&["plugin", "install", "--json", file_text]);
    assert!(!ok, "installed without consent");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("--yes"), "{stderr}");

    let (ok, stdout, stderr) = home.mecha(&["plugin", "install", "--json", "--yes", file_text]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("name:      versioned"),
        "shown on stderr: {stderr}"
    );
    let installed: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(installed["name"], "versioned");
    assert_eq!(installed["current"]["version"], "0.1.0");
    assert_eq!(installed["current"]["world"], "source");
    assert_eq!(installed["current"]["source"], file_text);
    let first = installed["current"]["sha256"].clone();
    assert_eq!(first.as_str().map(str::len), Some(64), "{installed}");
    assert!(installed.get("replaced").is_none(), "{installed}");

    let same = json_of(&home, &["plugin", "upgrade", "versioned", "--json"]);
    assert_eq!(same["current"]["sha256"], first, "up to date: {same}");
    assert!(same.get("replaced").is_none(), "{same}");

    std::fs::copy(plugins::versioned(2), &file).expect("version 2 placed");
    let upgraded = json_of(
        &home,
        &["plugin", "upgrade", "versioned", "--json", "--yes"],
    );
    assert_eq!(upgraded["current"]["version"], "0.2.0");
    assert_eq!(
        upgraded["current"]["granted"]["hosts"],
        serde_json::json!(["https://api.upgrade.example"]),
        "{upgraded}"
    );
    assert_eq!(upgraded["replaced"]["sha256"], first);

    let rolled = json_of(&home, &["plugin", "rollback", "versioned", "--json"]);
    assert_eq!(rolled["current"]["sha256"], first);
    assert_eq!(rolled["replaced"]["version"], "0.2.0");

    let removed = json_of(&home, &["plugin", "rm", "versioned", "--json"]);
    assert_eq!(removed["name"], "versioned");
    assert_eq!(removed["replaced"]["sha256"], first);
    assert!(removed.get("current").is_none(), "{removed}");

    let (ok, stdout, stderr) = home.mecha(&["plugin", "share", "versioned", "--json"]);
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("database_url"), "{stderr}");

    // Installed here but not shared (the database is unreachable): the JSON still says what
    // was installed, without `shared`, and the command fails saying so.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    home.write_config(&format!(
        "database_url: postgres://mecha@127.0.0.1:{closed}/mecha\n"
    ));
    let (ok, stdout, stderr) = home.mecha(&["plugin", "install", "--json", "--yes", file_text]);
    assert!(!ok, "sharing failed: {stdout}");
    assert!(stderr.contains("not shared"), "{stderr}");
    let unshared: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(unshared["name"], "versioned", "{unshared}");
    assert!(unshared["current"]["sha256"].is_string(), "{unshared}");
    assert!(unshared.get("shared").is_none(), "{unshared}");
    home.write_config("");

    let project = dir.path().join("project");
    let project_text = project.to_str().expect("utf-8");
    let created = json_of(
        &home,
        &[
            "plugin",
            "new",
            "hello",
            "--world",
            "policy",
            "--dir",
            project_text,
            "--json",
        ],
    );
    assert_eq!(created["name"], "hello");
    assert_eq!(created["world"], "policy");
    assert_eq!(created["lang"], "rust");
    assert_eq!(created["path"], project_text);
    assert!(created["files"].as_u64().is_some_and(|files| files > 3));
    assert!(project.join("README.md").is_file());
}

/// `push` prints the reference, digest and signature tag it published; `trust` the keys.
#[test]
fn plugin_push_and_trust_print_json() {
    let test = "plugin_push_and_trust_print_json";
    if !crate::support::registry::available(test, "minisign", minisign::minisign_present()) {
        return;
    }
    let Some(registry) = crate::support::registry::Registry::start(test, false) else {
        return;
    };
    let home = Home::empty();
    let keys = tempfile::tempdir().expect("temp dir");
    let key = minisign::Key::generate(keys.path(), "publisher");
    let trusted = json_of(
        &home,
        &[
            "plugin",
            "trust",
            "add",
            key.public.to_str().expect("utf-8"),
            "--json",
        ],
    );
    assert_eq!(trusted["id"], key.id.as_str());
    let listed = json_of(&home, &["plugin", "trust", "ls", "--json"]);
    assert_eq!(listed[0]["id"], key.id.as_str(), "{listed}");

    let file = keys.path().join("panic.wasm");
    std::fs::copy(plugins::path("panic"), &file).expect("copied");
    key.sign(&file);
    let signature = keys.path().join("panic.wasm.minisig");
    let tagged = format!("{}:v1", registry.reference("plugins/panic"));
    let docker = tempfile::tempdir().expect("temp dir");
    let push = crate::support::registry::mecha(
        &home,
        docker.path(),
        &[
            "plugin",
            "push",
            file.to_str().expect("utf-8"),
            &tagged,
            "--signature",
            signature.to_str().expect("utf-8"),
            "--json",
        ],
        "",
    );
    assert!(push.ok, "{}", push.stderr);
    let pushed: serde_json::Value = serde_json::from_str(&push.stdout).expect("one JSON document");
    assert_eq!(pushed["name"], "panic");
    assert_eq!(pushed["reference"], tagged.as_str());
    let digest = pushed["digest"].as_str().expect("digest");
    assert!(digest.starts_with("sha256:"), "{pushed}");
    assert_eq!(
        pushed["pinned"],
        format!("{}@{digest}", registry.reference("plugins/panic"))
    );
    assert_eq!(
        pushed["signature"],
        format!("{}.minisig", digest.replace(':', "-"))
    );

    let untrusted = json_of(&home, &["plugin", "trust", "rm", &key.id, "--json"]);
    assert_eq!(untrusted["id"], key.id.as_str());
    assert_eq!(
        json_of(&home, &["plugin", "trust", "ls", "--json"]),
        serde_json::json!([])
    );
}

/// Worker commands print the worker they changed, `config --json` the definitions as the YAML
/// shows them, and `doctor --json` its checks with its exit code; no secret in any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_config_and_doctor_print_json_without_secrets() {
    const CANARY_SECRET: &str = "canary-secret-5e2b8d1f";
    const CANARY_ENV: &str = "canary-env-value-0c4a";
    const CANARY_KEY: &str = "canary-worker-key-77e1";
    let worker = crate::support::worker::TestWorker::start("ok").await;
    let home = Home::empty();
    home.write_secrets(&format!("github:\n  webhook_secret: {CANARY_SECRET}\n"));
    let boxed = home.path().join("box.yaml");
    std::fs::write(
        &boxed,
        format!(
            "name: box\ndocker:\n  image: mecha/worker:test\n  env: {{SECRET_THING: {CANARY_ENV}}}\n  \
             api_key: {CANARY_KEY}\nevents:\n  - source: github\n    on: [push]\n    prompt: \
             'pushed, {CANARY_SECRET}'\n"
        ),
    )
    .expect("worker file");
    let live = home.path().join("w.yaml");
    std::fs::write(&live, format!("name: w\nendpoint: {}\n", worker.endpoint)).expect("file");
    let mut printed = Vec::new();
    let mut run = |args: &[&str]| {
        let value = json_of(&home, args);
        printed.push((args.join(" "), value.to_string()));
        value
    };

    let added = run(&["worker", "add", boxed.to_str().expect("utf-8"), "--json"]);
    assert_eq!(added[0]["action"], "added");
    assert_eq!(added[0]["name"], "box");
    assert_eq!(added[0]["kind"], "managed");
    assert_eq!(added[0]["state"], "offline");
    run(&["worker", "add", live.to_str().expect("utf-8"), "--json"]);
    let updated = run(&["worker", "update", live.to_str().expect("utf-8"), "--json"]);
    assert_eq!(updated[0]["action"], "updated");
    let started = run(&["worker", "start", "w", "--json"]);
    assert_eq!(started["name"], "w");
    assert_eq!(started["state"], "online", "{started}");
    assert_eq!(started["message"], "started w");
    let stopped = run(&["worker", "stop", "w", "--json"]);
    assert_eq!(stopped["state"], "offline", "{stopped}");

    let one = run(&["config", "box", "--json"]);
    assert_eq!(one["docker"]["env"]["SECRET_THING"], "[REDACTED]");
    assert_eq!(one["docker"]["api_key"], "");
    let (ok, yaml, stderr) = home.mecha(&["config", "box"]);
    assert!(ok, "{stderr}");
    let from_yaml: serde_json::Value = serde_yaml::from_str(&yaml).expect("YAML");
    assert_eq!(one, from_yaml, "hidden as in the YAML");
    let all = run(&["config", "--json"]);
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");

    let (ok, stdout, stderr) = home.mecha(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(
        report["failed"], !ok,
        "the exit code is unchanged: {stderr}"
    );
    let checks = report["checks"].as_array().expect("checks");
    for check in checks {
        assert!(
            ["ok", "warn", "fail"].contains(&check["status"].as_str().unwrap_or_default()),
            "{check}"
        );
    }
    let named = |name: &str| checks.iter().find(|check| check["name"] == name).cloned();
    assert_eq!(named("database").expect("database checked")["status"], "ok");
    assert!(named("worker box").is_some(), "{report}");
    printed.push(("doctor --json".to_owned(), stdout));

    let removed = json_of(&home, &["worker", "remove", "w", "--json"]);
    assert_eq!(removed["action"], "removed");
    assert_eq!(removed["name"], "w");
    let (_, stdout, _) = home.mecha(&["worker", "ls", "--json"]);
    assert!(!stdout.contains("\"w\""), "removed: {stdout}");

    for (command, text) in &printed {
        for canary in [CANARY_SECRET, CANARY_ENV, CANARY_KEY] {
            assert!(
                !text.contains(canary),
                "mecha {command} leaks {canary}:\n{text}"
            );
        }
    }
}

/// `events replay --json` prints the new event and the original's id; `tasks show --json` and
/// `tasks retry --json` the task, as it is and as it was requeued.
#[tokio::test]
async fn events_replay_and_tasks_show_and_retry_print_json() {
    let home = Home::new("");
    let definition = home.path().join("w.yaml");
    std::fs::write(
        &definition,
        "name: w\nendpoint: http://127.0.0.1:9\nevents:\n  - source: github\n    on: [push]\n    \
         prompt: push\n",
    )
    .expect("worker file");
    let (ok, _, stderr) = home.mecha(&["worker", "add", definition.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "push__payload.json");
    let (status, event) = send_github(&daemon, "push", "replay-1", &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id").to_owned();
    // The worker was never started, so its task fails at once.
    let failed = crate::support::daemon::wait_tasks(&daemon, "state=failed", 1).await;
    let task_id = failed[0]["id"].as_str().expect("task id").to_owned();

    let addr = daemon.base.trim_start_matches("http://").to_owned();
    let replayed = json_of(
        &home,
        &["events", "replay", &event_id, "--addr", &addr, "--json"],
    );
    assert_eq!(replayed["replay_of"], event_id.as_str());
    assert_eq!(replayed["event"]["type"], "push");
    assert!(replayed["event"]["state"].is_string(), "{replayed}");
    let new_id = replayed["event"]["id"].as_str().expect("new id");
    assert_eq!(new_id.len(), 32);
    assert_ne!(new_id, event_id);
    // Stopped so that no daemon sends the retried task while it is looked at.
    daemon.stop();

    let shown = json_of(&home, &["tasks", "show", &task_id, "--json"]);
    assert_eq!(shown["id"], task_id.as_str());
    assert_eq!(shown["worker_name"], "w");
    assert_eq!(shown["state"], "failed");
    assert!(
        shown["error"]
            .as_str()
            .is_some_and(|error| error.contains("offline")),
        "{shown}"
    );
    let retried = json_of(&home, &["tasks", "retry", &task_id, "--json"]);
    assert_eq!(retried["id"], task_id.as_str());
    assert_eq!(retried["state"], "pending");
    let (ok, stdout, stderr) = home.mecha(&["tasks", "retry", &task_id, "--json"]);
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("pending"), "{stderr}");
}
