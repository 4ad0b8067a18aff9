//! A plugin that loops, allocates without end or panics fails its own call with a message that
//! says which limit stopped it; the daemon keeps serving, and the next call gets a fresh
//! instance. A plugin gets none of what WASI offers unless it was granted; one that imports
//! what the host cannot link is refused at install.

use crate::support::daemon::{Daemon, Home, client, send_github, status_and_json};
use crate::support::{fixtures, plugins};

async fn post(daemon: &Daemon, source: &str, body: &'static str) -> (u16, serde_json::Value) {
    let response = daemon
        .client()
        .post(daemon.url(&format!("/webhook/{source}")))
        .body(body)
        .send()
        .await
        .expect("sent");
    status_and_json(response).await
}

#[tokio::test]
async fn misbehaving_plugins_fail_their_own_call_only() {
    let home = Home::new("plugins:\n  spin:\n    timeout_ms: 300\n  bomb:\n    memory_mib: 16\n");
    for name in ["spin", "bomb", "panic"] {
        let path = plugins::path(name);
        let (ok, stdout, stderr) =
            home.mecha(&["plugin", "install", "--yes", path.to_str().expect("utf-8")]);
        assert!(ok, "install {name}: {stderr}");
        assert!(stdout.contains(&format!("installed {name}")), "{stdout}");
    }
    let daemon = Daemon::start(&home);
    let push = fixtures::read("github", "push__payload.json");

    let (status, error) = post(&daemon, "spin", "{}").await;
    assert_eq!(status, 500);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("300 ms deadline"),
        "{error}"
    );

    let (status, error) = post(&daemon, "bomb", "{}").await;
    assert_eq!(status, 500);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("16 MiB of memory"),
        "{error}"
    );

    let (status, error) = post(&daemon, "panic", "boom").await;
    assert_eq!(status, 500);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("panics on purpose"),
        "{error}"
    );

    // Fresh instances: the same plugins answer the next call, and the others never noticed.
    let (status, event) = post(&daemon, "panic", "ok").await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(
        send_github(&daemon, "push", "after-chaos", &push).await.0,
        202
    );

    // Several runaway calls at once (more than this machine has cores) do not starve a
    // well-behaved one: runaway plugins yield at every epoch tick.
    let url = daemon.url("/webhook/spin");
    let spins: Vec<_> = (0..4)
        .map(|_| {
            let (url, client) = (url.clone(), daemon.client());
            tokio::spawn(async move { client.post(url).body("{}").send().await })
        })
        .collect();
    // Another body: the same signed body again would be answered as a replay.
    let issue = fixtures::read("github", "issues__opened.payload.json");
    let (status, event) = send_github(&daemon, "issues", "during-chaos", &issue).await;
    assert_eq!(status, 202, "{event}");
    for spin in spins {
        let response = spin.await.expect("task").expect("sent");
        assert_eq!(response.status().as_u16(), 500);
    }
}

/// All of WASI 0.2 is linked, with nothing granted: a plugin that reaches for a socket, a file
/// or the environment loads, and every attempt fails. What it prints reaches the daemon's log.
#[tokio::test]
async fn a_plugin_gets_no_socket_file_or_environment() {
    let home = Home::new("");
    let path = plugins::path("sandbox");
    let (ok, _, stderr) =
        home.mecha(&["plugin", "install", "--yes", path.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("address").port();
    let daemon = Daemon::start_with_env(&home, &[("MECHA_SANDBOX_CANARY", "visible")]);
    let body = format!("{{\"port\": {port}}}");
    let response = daemon
        .client()
        .post(daemon.url("/webhook/sandbox"))
        .body(body)
        .send()
        .await
        .expect("sent");
    let (status, event) = status_and_json(response).await;
    assert_eq!(status, 202, "{event}");
    let attrs = &event["attrs"];
    for attempt in ["socket", "file", "listing"] {
        let outcome = attrs[attempt].as_str().expect("text attr");
        assert!(outcome.starts_with("denied: "), "{attempt}: {outcome}");
    }
    assert_eq!(attrs["env"], 0, "{attrs}");
    assert_eq!(attrs["args"], 0, "{attrs}");
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(
        listener.accept().is_err(),
        "nothing connected to the listener"
    );
    let log = daemon.log();
    assert!(log.contains("sandbox stdout line"), "{log}");
    assert!(log.contains("sandbox stderr line"), "{log}");
}

/// Imports outside WASI 0.2 and `mecha:plugin` are refused at install, all of them named.
#[tokio::test]
async fn imports_the_host_cannot_link_are_all_named() {
    let home = Home::new("");
    let wasm = std::fs::read(plugins::path("sandbox")).expect("built");
    // Same-length renames keep the component valid while moving two packages out of WASI.
    let renamed = replace_all(
        &replace_all(&wasm, b"wasi:sockets/", b"evil:sockets/"),
        b"wasi:filesystem/",
        b"acme:filesystem/",
    );
    let path = home.path().join("renamed.wasm");
    std::fs::write(&path, renamed).expect("written");
    let (ok, _, stderr) =
        home.mecha(&["plugin", "install", "--yes", path.to_str().expect("utf-8")]);
    assert!(!ok, "installing a plugin with unknown imports must fail");
    assert!(stderr.contains("evil:sockets/"), "{stderr}");
    assert!(stderr.contains("acme:filesystem/"), "{stderr}");
    assert!(stderr.contains("cannot have"), "{stderr}");
    let (ok, stdout, _) = home.mecha(&["plugin", "ls"]);
    assert!(ok);
    assert!(
        !stdout.contains("sandbox"),
        "nothing was installed:\n{stdout}"
    );
}

/// A plugin built for any `mecha:plugin@0.1.x` loads and runs; one built for another line is
/// refused with both versions named.
#[tokio::test]
async fn plugins_of_the_same_contract_line_load_and_others_are_refused() {
    let home = Home::new("");
    let wasm = std::fs::read(plugins::path("sandbox")).expect("built");
    let with_version = |version: &[u8]| {
        let path = home
            .path()
            .join(format!("sandbox-{}.wasm", String::from_utf8_lossy(version)));
        std::fs::write(&path, replace_all(&wasm, b"@0.1.0", version)).expect("written");
        path
    };
    for refused in [b"@0.2.0", b"@1.1.0"] {
        let path = with_version(refused);
        let (ok, _, stderr) =
            home.mecha(&["plugin", "install", "--yes", path.to_str().expect("utf-8")]);
        assert!(!ok, "a plugin for another contract line must be refused");
        let needed = String::from_utf8_lossy(&refused[1..]).into_owned();
        assert!(
            stderr.contains(&format!("needs mecha:plugin@{needed}")),
            "{stderr}"
        );
        assert!(stderr.contains("offers mecha:plugin@0.1.0"), "{stderr}");
    }
    let newer_patch = with_version(b"@0.1.9");
    let (ok, stdout, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        newer_patch.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("mecha:plugin@0.1.9"), "{stdout}");
    let daemon = Daemon::start(&home);
    let (status, event) = post(&daemon, "sandbox", "{}").await;
    assert_eq!(status, 202, "{event}");
}

/// A host limit that stops a call is named, with the setting that raises it.
#[tokio::test]
async fn a_call_stopped_by_a_host_limit_names_the_setting() {
    let home = Home::new("plugins:\n  sandbox:\n    instances: 1\n");
    let path = plugins::path("sandbox");
    let (ok, _, stderr) =
        home.mecha(&["plugin", "install", "--yes", path.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let daemon = Daemon::start(&home);
    let (status, error) = post(&daemon, "sandbox", "{}").await;
    assert_eq!(status, 500, "{error}");
    let message = error["error"].as_str().expect("message");
    assert!(
        message.contains("more than 1 core wasm instances"),
        "{message}"
    );
    assert!(
        message.contains("plugins.sandbox.instances raises it"),
        "{message}"
    );
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut at = 0;
    while let Some(found) = out[at..]
        .windows(from.len())
        .position(|window| window == from)
    {
        out[at + found..at + found + to.len()].copy_from_slice(to);
        at += found + to.len();
    }
    out
}

/// A source that declares secrets is exempt from the API key only for requests it verified:
/// one that skips the check gets its events refused, even with its secret configured.
#[tokio::test]
async fn a_source_that_skips_verification_cannot_store_events() {
    let home = Home::new("api_key: the-api-key\n");
    home.write_secrets("unverified:\n  token: some-token\n");
    let path = plugins::path("unverified");
    let (ok, _, stderr) =
        home.mecha(&["plugin", "install", "--yes", path.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let daemon = Daemon::start(&home);
    let (status, error) = post(&daemon, "unverified", "{}").await;
    assert_eq!(status, 500, "{error}");
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("without verifying it"),
        "{error}"
    );
    let response = client()
        .get(daemon.url("/events"))
        .header("X-API-Key", "the-api-key")
        .send()
        .await
        .expect("sent");
    let (_, events) = status_and_json(response).await;
    assert_eq!(events, serde_json::json!([]), "nothing was stored");
}
