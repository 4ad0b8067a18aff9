//! Webhooks in, durable events out.

use crate::support::daemon::{Daemon, Home, client, get_json, send_github, status_and_json};
use crate::support::fixtures;

#[tokio::test]
async fn signed_delivery_is_stored_and_acknowledged_with_the_event() {
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&daemon, "pull_request", "delivery-1", &body).await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(event["source"], "github");
    assert_eq!(event["type"], "pull_request.opened");
    assert_eq!(event["state"], "received");
    assert_eq!(event["delivery_id"], "delivery-1");
    assert_eq!(event["attrs"]["number"], 2);
    // The body is not sent back: the sender has it, and the event shows it.
    assert!(event.get("raw").is_none(), "{event}");
    assert_eq!(event["raw_bytes"], body.len());

    let id = event["id"].as_str().expect("id");
    let (status, stored) = get_json(&daemon, &format!("/event/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(stored["type"], "pull_request.opened");
    assert_eq!(
        stored["raw"].as_str().map(str::len),
        Some(body.len()),
        "raw body kept"
    );

    // No worker wants it, so processing skips it right after the acknowledgement.
    let mut listed = serde_json::Value::Null;
    for _ in 0..250 {
        listed = get_json(&daemon, "/events?source=github&state=skipped&limit=10")
            .await
            .1;
        if listed.as_array().map(Vec::len) == Some(1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let (status, none) = get_json(&daemon, "/events?source=generic").await;
    assert_eq!(status, 200);
    assert_eq!(none, serde_json::json!([]));
    let (status, missing) = get_json(&daemon, "/event/00000000000000000000000000000000").await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (404, Some("event not found"))
    );
    let (status, bad_state) = get_json(&daemon, "/events?state=bogus").await;
    assert_eq!(status, 400, "{bad_state}");
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_and_stored_once() {
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "push__payload.json");
    let (first, event) = send_github(&daemon, "push", "same-delivery", &body).await;
    assert_eq!(first, 202);
    let (second, reply) = send_github(&daemon, "push", "same-delivery", &body).await;
    assert_eq!(second, 200);
    assert_eq!(reply["status"], "duplicate");
    assert_eq!(reply["id"], event["id"]);
    let (_, listed) = get_json(&daemon, "/events").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn events_survive_a_restart_and_a_crash() {
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    // Each delivery its own body: the same signed body again would be answered as a replay.
    let body = |delivery: &str| {
        let mut json: serde_json::Value =
            serde_json::from_slice(&fixtures::read("github", "issues__opened.payload.json"))
                .expect("json");
        json["test_delivery"] = delivery.into();
        serde_json::to_vec(&json).expect("encoded")
    };
    for delivery in ["a", "b", "c"] {
        assert_eq!(
            send_github(&daemon, "issues", delivery, &body(delivery))
                .await
                .0,
            202
        );
    }
    let log = daemon.stop();
    assert!(log.contains("mecha stopped"), "clean shutdown:\n{log}");

    let daemon = Daemon::start(&home);
    let (_, listed) = get_json(&daemon, "/events").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    assert_eq!(send_github(&daemon, "issues", "d", &body("d")).await.0, 202);
    // Acknowledged means on disk: a SIGKILL right after the 202 loses nothing.
    daemon.kill();

    let daemon = Daemon::start(&home);
    let (_, listed) = get_json(&daemon, "/events").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(4), "{listed}");
    assert_eq!(
        send_github(&daemon, "issues", "a", &body("a")).await.1["status"],
        "duplicate"
    );
}

#[tokio::test]
async fn generic_source_types_events_by_header_and_needs_the_api_key() {
    let home = Home::new("api_key: test-api-key\n");
    let daemon = Daemon::start(&home);
    let body = br#"{"env":"prod","build":42,"ok":true,"nested":{"x":1}}"#.to_vec();
    let post = |key: Option<&'static str>| {
        let mut request = client()
            .post(daemon.url("/webhook/generic"))
            .header("X-Event-Type", "deploy.finished")
            .body(body.clone());
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        request.send()
    };
    let (status, error) = status_and_json(post(None).await.expect("sent")).await;
    assert_eq!(status, 401, "{error}");
    let (status, _) = status_and_json(post(Some("wrong")).await.expect("sent")).await;
    assert_eq!(status, 401);
    let (status, event) = status_and_json(post(Some("test-api-key")).await.expect("sent")).await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(event["type"], "deploy.finished");
    assert_eq!(
        event["attrs"],
        serde_json::json!({"env": "prod", "build": 42, "ok": true})
    );

    // The API needs the key too; GitHub webhooks verify themselves and do not.
    let response = client()
        .get(daemon.url("/events"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 401);
    let response = client()
        .get(daemon.url("/events"))
        .header("Authorization", "Bearer test-api-key")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let github = fixtures::read("github", "ping__payload.json");
    assert_eq!(send_github(&daemon, "ping", "p-1", &github).await.0, 202);
    assert_eq!(get_json(&daemon, "/health").await.0, 200);
}
