use serde_json::json;

use crate::worker::{Worker, echo, send};

const KEY: &str = "k3y-for-tests";

async fn keyed() -> Worker {
    echo().var("WORKER_API_KEY", KEY).start().await
}

fn body() -> String {
    json!({"id": "t-1", "prompt": "hello"}).to_string()
}

#[tokio::test]
async fn a_task_without_the_key_is_refused() {
    let worker = keyed().await;
    let reply = send(worker.post("/task").body(body())).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json, json!({"error": "unauthorized"}));
}

#[tokio::test]
async fn a_wrong_key_is_refused_in_either_header() {
    let worker = keyed().await;
    for (header, value) in [
        ("authorization", "Bearer wrong"),
        ("authorization", &format!("Bearer {KEY}x")),
        ("authorization", KEY),
        ("x-api-key", "wrong"),
    ] {
        let reply = send(worker.post("/task").header(header, value).body(body())).await;
        assert_eq!(reply.status, 401, "{header}: {value}");
        assert_eq!(reply.json, json!({"error": "unauthorized"}));
    }
}

#[tokio::test]
async fn the_key_is_accepted_as_a_bearer_token() {
    let worker = keyed().await;
    let request = worker
        .post("/task")
        .header("authorization", format!("Bearer {KEY}"))
        .body(body());
    let reply = send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["output"], "hello");
}

#[tokio::test]
async fn the_key_is_accepted_as_x_api_key() {
    let worker = keyed().await;
    let reply = send(worker.post("/task").header("x-api-key", KEY).body(body())).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["output"], "hello");
}

#[tokio::test]
async fn health_needs_no_key() {
    let worker = keyed().await;
    assert_eq!(worker.health().await, (200, "ok".to_owned()));
}

#[tokio::test]
async fn unknown_paths_need_the_key_too() {
    let worker = keyed().await;
    assert_eq!(send(worker.get("/status")).await.status, 401);
    let reply = send(worker.get("/status").header("x-api-key", KEY)).await;
    assert_eq!(reply.status, 404);
}
