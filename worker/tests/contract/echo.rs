use serde_json::json;

use crate::worker::echo;

#[tokio::test]
async fn echo_answers_with_the_prompt() {
    let worker = echo().start().await;
    let reply = worker.prompt("ping from a smoke test").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["output"], "ping from a smoke test");
    let metadata = &reply.json["metadata"];
    assert_eq!(metadata["backend"], "echo");
    assert_eq!(metadata["exit_code"], 0);
    assert!(metadata["duration_ms"].is_u64(), "{metadata}");
}

#[tokio::test]
async fn a_result_as_prompt_is_the_answer() {
    let worker = echo().start().await;
    let wanted = json!({
        "comment": {"body": "LGTM"},
        "labels": {"add": ["reviewed"], "remove": ["needs-review"]},
        "status": {"state": "success"},
    });
    let reply = worker.prompt(&wanted.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["comment"], wanted["comment"]);
    assert_eq!(reply.json["labels"], wanted["labels"]);
    assert_eq!(reply.json["status"], wanted["status"]);
    assert!(reply.json.get("output").is_none(), "{}", reply.json);
    assert_eq!(reply.json["metadata"]["backend"], "echo");
}

#[tokio::test]
async fn a_delay_past_the_timeout_times_out() {
    let worker = echo().var("WORKER_TIMEOUT", "1000").start().await;
    let reply = worker
        .task(&json!({"prompt": "slow", "context": {"echo_delay_ms": 60_000}}))
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json, json!({"error": "task timed out after 1s"}));
}

#[tokio::test]
async fn dry_run_names_the_echo_backend() {
    let worker = echo().var("WORKER_DRY_RUN", "1").start().await;
    let reply = worker.prompt("p").await;
    assert_eq!(
        reply.json,
        json!({"dry_run": true, "backend": "echo", "prompt": "p"})
    );
}
