//! A plugin that loops, allocates without end or panics fails its own call with a message that
//! says which limit stopped it; the daemon keeps serving, and the next call gets a fresh
//! instance. A plugin that imports what its world does not offer is refused at install.

use crate::support::daemon::{Daemon, Home, client, send_github, status_and_json};
use crate::support::{fixtures, plugins};

async fn post(daemon: &Daemon, source: &str, body: &'static str) -> (u16, serde_json::Value) {
    let response = client()
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
            home.mecha(&["plugin", "install", path.to_str().expect("utf-8")]);
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
            let url = url.clone();
            tokio::spawn(async move { client().post(url).body("{}").send().await })
        })
        .collect();
    let (status, event) = send_github(&daemon, "push", "during-chaos", &push).await;
    assert_eq!(status, 202, "{event}");
    for spin in spins {
        let response = spin.await.expect("task").expect("sent");
        assert_eq!(response.status().as_u16(), 500);
    }
}

#[tokio::test]
async fn a_plugin_with_a_forbidden_import_is_refused_with_the_import_named() {
    let home = Home::new("");
    let path = plugins::path("sockets");
    let (ok, _, stderr) = home.mecha(&["plugin", "install", path.to_str().expect("utf-8")]);
    assert!(!ok, "installing a socket-using plugin must fail");
    assert!(stderr.contains("wasi:sockets/"), "{stderr}");
    assert!(stderr.contains("may not use"), "{stderr}");
    let (ok, stdout, _) = home.mecha(&["plugin", "ls"]);
    assert!(ok);
    assert!(
        !stdout.contains("sockets"),
        "nothing was installed:\n{stdout}"
    );
}

/// A source that declares secrets is exempt from the API key only for requests it verified:
/// one that skips the check gets its events refused, even with its secret configured.
#[tokio::test]
async fn a_source_that_skips_verification_cannot_store_events() {
    let home = Home::new("api_key: the-api-key\n");
    home.write_secrets("unverified:\n  token: some-token\n");
    let path = plugins::path("unverified");
    let (ok, _, stderr) = home.mecha(&["plugin", "install", path.to_str().expect("utf-8")]);
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
