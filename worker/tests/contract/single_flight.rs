use serde_json::json;

use crate::worker::{command, echo};

#[tokio::test]
async fn a_second_task_while_one_runs_gets_429() {
    let worker = std::sync::Arc::new(command("sleep 2; echo done").start().await);
    assert_eq!(worker.health().await, (200, "ok".to_owned()));
    let first = tokio::spawn({
        let worker = worker.clone();
        async move { worker.prompt("first").await }
    });
    worker.wait_until_busy().await;

    let second = worker.prompt("second").await;
    assert_eq!(second.status, 429);
    assert_eq!(second.json, json!({"error": "worker busy"}));
    assert_eq!(
        second
            .headers
            .get("retry-after")
            .and_then(|value| value.to_str().ok()),
        Some("5")
    );
    // A malformed request is still told what is wrong.
    assert_eq!(worker.task(&json!({"id": "t"})).await.status, 400);

    let first = first.await.expect("the first task");
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["output"], "done");
    assert_eq!(worker.health().await, (200, "ok".to_owned()));
    assert_eq!(worker.prompt("third").await.status, 200);
}

#[tokio::test]
async fn an_echo_delay_holds_the_worker_busy() {
    let worker = std::sync::Arc::new(echo().start().await);
    let held = tokio::spawn({
        let worker = worker.clone();
        async move {
            worker
                .task(&json!({"prompt": "held", "context": {"echo_delay_ms": 1500}}))
                .await
        }
    });
    worker.wait_until_busy().await;
    assert_eq!(worker.prompt("other").await.status, 429);
    let held = held.await.expect("the held task");
    assert_eq!(held.json["output"], "held");
    assert_eq!(worker.health().await, (200, "ok".to_owned()));
}
