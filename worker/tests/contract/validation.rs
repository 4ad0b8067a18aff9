use serde_json::{Value, json};

use crate::worker::{command, echo, send};

#[tokio::test]
async fn a_body_without_content_length_gets_411() {
    let worker = echo().start().await;
    let (status, body) = worker
        .raw("POST /task HTTP/1.1\r\nHost: worker\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status, 411);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        json!({"error": "Content-Length required"})
    );

    let chunked = "POST /task HTTP/1.1\r\nHost: worker\r\nConnection: close\r\n\
                   Transfer-Encoding: chunked\r\n\r\n10\r\n{\"prompt\":\"hi\"}\r\n0\r\n\r\n";
    let (status, _) = worker.raw(chunked).await;
    assert_eq!(status, 411);
}

#[tokio::test]
async fn a_body_over_the_cap_gets_413() {
    let worker = echo().max_body_bytes(64).start().await;
    // Exactly at the cap is accepted.
    let prefix = r#"{"prompt":""#;
    let suffix = r#""}"#;
    let fits = format!(
        "{prefix}{}{suffix}",
        "a".repeat(64 - prefix.len() - suffix.len())
    );
    assert_eq!(fits.len(), 64);
    let reply = send(worker.post("/task").body(fits)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let over = json!({"prompt": "a".repeat(100)}).to_string();
    let reply = send(worker.post("/task").body(over)).await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.json,
        json!({"error": "request body is larger than the 64-byte limit"})
    );
}

#[tokio::test]
async fn bad_json_gets_400() {
    let worker = echo().start().await;
    for body in [
        "{\"prompt\": ",
        "not json",
        "[\"prompt\"]",
        r#"{"prompt": 7}"#,
    ] {
        let reply = send(worker.post("/task").body(body)).await;
        assert_eq!(reply.status, 400, "{body}");
        let error = reply.json["error"].as_str().expect("an error");
        assert!(error.starts_with("invalid JSON: "), "{error}");
    }
}

#[tokio::test]
async fn a_missing_or_empty_prompt_gets_400() {
    let worker = command("touch ran").start().await;
    for body in [
        json!({"id": "t"}),
        json!({"prompt": ""}),
        json!({"prompt": null}),
    ] {
        let reply = worker.task(&body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json, json!({"error": "missing prompt"}));
    }
    assert!(!worker.dir().join("ran").exists(), "nothing ran");
}

#[tokio::test]
async fn unknown_routes_get_404_and_wrong_methods_405() {
    let worker = echo().start().await;
    let reply = send(worker.get("/nowhere")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json, json!({"error": "not found"}));
    let reply = send(worker.get("/task")).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json, json!({"error": "method not allowed"}));
}
