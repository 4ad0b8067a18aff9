//! Bad requests get their status code and a message that says what is wrong.

use crate::support::daemon::{Daemon, GITHUB_SECRET, Home, client, send_github, status_and_json};
use crate::support::fixtures;

async fn post_github(
    daemon: &Daemon,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut request = client()
        .post(daemon.url("/webhook/github"))
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    status_and_json(request.send().await.expect("sent")).await
}

#[tokio::test]
async fn bad_signatures_unknown_sources_malformed_and_oversized_bodies() {
    let home = Home::new("max_body_bytes: 65536\n");
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "pull_request__opened.payload.json");

    let signature = mecha::signature::github_signature(GITHUB_SECRET.as_bytes(), &body);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let (status, error) = post_github(
        &daemon,
        &[
            ("X-GitHub-Event", "pull_request"),
            ("X-Hub-Signature-256", &signature),
        ],
        &tampered,
    )
    .await;
    assert_eq!(status, 401, "{error}");
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("signature"),
        "{error}"
    );

    let (status, error) = post_github(&daemon, &[("X-GitHub-Event", "pull_request")], &body).await;
    assert_eq!(status, 401);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("X-Hub-Signature-256"),
        "{error}"
    );

    let (status, error) = send_github(&daemon, "push", "m-1", b"{not json").await;
    assert_eq!(status, 400);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("not a valid GitHub event"),
        "{error}"
    );

    let (status, error) = send_github(&daemon, "push", "m-2", b"[1,2,3]").await;
    assert_eq!(status, 400, "{error}");

    let signature = mecha::signature::github_signature(GITHUB_SECRET.as_bytes(), &body);
    let (status, error) = post_github(&daemon, &[("X-Hub-Signature-256", &signature)], &body).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("X-GitHub-Event"),
        "{error}"
    );

    let big = vec![b' '; 65537];
    let (status, error) = send_github(&daemon, "push", "big", &big).await;
    assert_eq!(status, 413);
    assert!(
        error["error"].as_str().expect("message").contains("65536"),
        "{error}"
    );

    let (status, error) = status_and_json(
        client()
            .post(daemon.url("/webhook/nosuch"))
            .body("{}")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error["error"], "unknown source: nosuch");

    // The daemon still serves after all of that.
    assert_eq!(
        send_github(
            &daemon,
            "push",
            "ok",
            &fixtures::read("github", "push__payload.json")
        )
        .await
        .0,
        202
    );
}

#[tokio::test]
async fn a_source_without_its_secret_is_disabled_until_sighup_brings_it() {
    let home = Home::empty();
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "push__payload.json");
    let (status, error) = send_github(&daemon, "push", "x", &body).await;
    assert_eq!(status, 503);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("github.webhook_secret"),
        "{error}"
    );

    home.write_secrets(&format!("github:\n  webhook_secret: {GITHUB_SECRET}\n"));
    daemon.hangup();
    let mut status = 0;
    for _ in 0..250 {
        status = send_github(&daemon, "push", "x", &body).await.0;
        if status != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        202,
        "the reloaded secret is used:\n{}",
        daemon.log()
    );
    // The reload logs once every part has switched, which may be just after the source has.
    let mut logged = false;
    for _ in 0..250 {
        logged = daemon.log().contains("reloaded secrets.yml");
        if logged {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(logged, "{}", daemon.log());
}

#[tokio::test]
async fn secrets_readable_by_others_stop_the_daemon_with_chmod_advice() {
    let home = Home::new("");
    let path = home.path().join("secrets.yml");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (ok, _, stderr) = home.mecha(&["serve", "--addr", "127.0.0.1:0"]);
    assert!(!ok);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(
        !stderr.contains(crate::support::daemon::GITHUB_SECRET),
        "{stderr}"
    );
}
