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
        vec!["plugin", "rm", "--help"],
        vec!["plugin", "inspect", "--help"],
        vec!["dev", "send", "--help"],
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

    let (ok, _, stderr) = home.mecha(&["plugin", "install", panic.to_str().expect("utf-8")]);
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
    let (ok, _, stderr) = home.mecha(&["plugin", "install", garbage.to_str().expect("utf-8")]);
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
    let (ok, _, stderr) = home.mecha(&["plugin", "install", panic.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let installed = home.path().join("plugins").join("panic.wasm");
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
    assert!(stdout.starts_with("202"), "{stdout}");

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
