use std::time::{Duration, Instant};

use serde_json::json;

use crate::worker::{command, has_ended, read_pid, send};

#[tokio::test]
async fn the_prompt_arrives_on_stdin_and_text_comes_back_as_output() {
    let worker = command("cat").start().await;
    let reply = worker.prompt("Review PR #7, please.").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["output"], "Review PR #7, please.");
    let metadata = &reply.json["metadata"];
    assert_eq!(metadata["backend"], "command");
    assert_eq!(metadata["exit_code"], 0);
    assert!(metadata["duration_ms"].is_u64(), "{metadata}");
}

#[tokio::test]
async fn a_prompt_larger_than_a_pipe_round_trips() {
    // Far past a pipe's 64 KiB buffer: writing the prompt and reading the answer must overlap.
    let worker = command("cat").start().await;
    let prompt = "0123456789abcdef".repeat(128 * 1024);
    let reply = worker.prompt(&prompt).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json["output"].as_str().map(str::len),
        Some(prompt.len())
    );
}

#[tokio::test]
async fn an_agent_that_ignores_its_prompt_still_answers() {
    let worker = command("echo ignored the prompt").start().await;
    let reply = worker.prompt(&"x".repeat(1024 * 1024)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["output"], "ignored the prompt");
}

#[tokio::test]
async fn claude_json_is_mapped() {
    let worker = command("cat claude.json").start().await;
    std::fs::write(
        worker.dir().join("claude.json"),
        json!({
            "type": "result", "subtype": "success", "is_error": false,
            "duration_ms": 2871, "num_turns": 4, "result": "Found two bugs.",
            "session_id": "abc-123", "total_cost_usd": 0.042,
            "usage": {"input_tokens": 10, "output_tokens": 250},
        })
        .to_string(),
    )
    .expect("write the summary");
    let reply = worker.prompt("review").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["output"], "Found two bugs.");
    let metadata = &reply.json["metadata"];
    assert_eq!(metadata["input_tokens"], 10);
    assert_eq!(metadata["output_tokens"], 250);
    assert_eq!(metadata["cost_usd"], 0.042);
    assert_eq!(metadata["num_turns"], 4);
    assert_eq!(metadata["session_id"], "abc-123");
    assert_eq!(metadata["backend"], "command");
    assert_eq!(metadata["exit_code"], 0);
}

#[tokio::test]
async fn a_claude_error_is_a_500_with_its_text() {
    let summary =
        r#"{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key"}"#;
    let worker = command(&format!("echo '{summary}'; exit 1")).start().await;
    let reply = worker.prompt("review").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json, json!({"error": "Invalid API key"}));
}

#[tokio::test]
async fn a_full_result_is_passed_through() {
    let printed = r#"{"output":"summary","comment":{"body":"LGTM"},"labels":{"add":["ok"]},"metadata":{"model":"local","exit_code":"kept"}}"#;
    let worker = command(&format!("printf '%s\\n' '{printed}'"))
        .start()
        .await;
    let reply = worker.prompt("review").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["output"], "summary");
    assert_eq!(reply.json["comment"], json!({"body": "LGTM"}));
    assert_eq!(reply.json["labels"], json!({"add": ["ok"]}));
    let metadata = &reply.json["metadata"];
    assert_eq!(metadata["model"], "local");
    assert_eq!(metadata["exit_code"], "kept", "the agent's own key stays");
    assert_eq!(metadata["backend"], "command");
    assert!(metadata["duration_ms"].is_u64());
}

#[tokio::test]
async fn a_non_zero_exit_is_a_500_with_the_end_of_stderr() {
    let script = "i=0; while [ $i -lt 300 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done; \
                  echo 'fatal: the real reason' >&2; echo partial; exit 3";
    let worker = command(script).start().await;
    let reply = worker.prompt("review").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json["error"], "agent exited with status 3");
    let stderr = reply.json["stderr"].as_str().expect("stderr");
    assert!(stderr.len() <= 1024, "{} bytes", stderr.len());
    assert!(stderr.ends_with("fatal: the real reason\n"), "{stderr}");
    assert!(!stderr.contains("noise line 0\n"), "only the end is kept");
}

#[tokio::test]
async fn a_killed_agent_names_the_signal() {
    let worker = command("kill -9 $$").start().await;
    let reply = worker.prompt("review").await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.json["error"],
        "agent was killed by signal 9 (SIGKILL)"
    );
}

#[tokio::test]
async fn the_agent_gets_the_task_id_and_context_but_not_the_key() {
    let script = r#"printf '%s|%s|%s|%s' "$MECHA_TASK_ID" "$MECHA_CONTEXT" "${WORKER_API_KEY-unset}" "$AGENT_TOKEN""#;
    let worker = command(script)
        .var("WORKER_API_KEY", "worker-key")
        .var("AGENT_TOKEN", "for-the-agent")
        .start()
        .await;
    let request = worker
        .post("/task")
        .header("authorization", "Bearer worker-key")
        .body(
            json!({"id": "task-42", "prompt": "p", "context": {"repo_name": "mecha", "number": 7}})
                .to_string(),
        );
    let reply = send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["output"],
        r#"task-42|{"number":7,"repo_name":"mecha"}|unset|for-the-agent"#
    );
}

#[tokio::test]
async fn the_agent_runs_in_the_work_directory() {
    let worker = command("pwd -P").start().await;
    let reply = worker.prompt("where").await;
    let expected = std::fs::canonicalize(worker.dir()).expect("canonical");
    assert_eq!(reply.json["output"], expected.to_string_lossy().as_ref());
}

#[tokio::test]
async fn a_task_past_the_timeout_is_killed_with_its_process_group() {
    let script = "echo $$ > leader.pid; sleep 30 & echo $! > straggler.pid; wait";
    let worker = command(script).var("WORKER_TIMEOUT", "1000").start().await;
    let started = Instant::now();
    let reply = worker.prompt("loop forever").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json, json!({"error": "task timed out after 1s"}));
    assert!(started.elapsed() < Duration::from_secs(10));

    let leader = read_pid(&worker.dir().join("leader.pid"));
    assert!(
        !std::path::Path::new(&format!("/proc/{leader}")).exists(),
        "the agent {leader} was killed and reaped"
    );
    let straggler = read_pid(&worker.dir().join("straggler.pid"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_ended(straggler) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        has_ended(straggler),
        "the agent's child {straggler} was killed"
    );
    assert_eq!(worker.health().await, (200, "ok".to_owned()));
}

#[tokio::test]
async fn what_the_agent_leaves_running_is_killed_when_it_exits() {
    // The background sleep holds stdout open: without the group kill, the reply would wait for it.
    let worker = command("sleep 30 & echo $! > straggler.pid; echo done")
        .start()
        .await;
    let started = Instant::now();
    let reply = worker.prompt("p").await;
    assert_eq!(reply.json["output"], "done");
    assert!(started.elapsed() < Duration::from_secs(10));
    let straggler = read_pid(&worker.dir().join("straggler.pid"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_ended(straggler) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(has_ended(straggler), "{straggler} outlived its task");
}

#[tokio::test]
async fn dry_run_runs_nothing() {
    let worker = command("touch ran")
        .var("WORKER_DRY_RUN", "true")
        .start()
        .await;
    let reply = worker.prompt("would review").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json,
        json!({"dry_run": true, "backend": "command", "prompt": "would review"})
    );
    assert!(!worker.dir().join("ran").exists());
}

#[tokio::test]
async fn a_task_whose_caller_hangs_up_is_killed() {
    let worker = command("echo $$ > leader.pid; sleep 30").start().await;
    let request = worker
        .post("/task")
        .timeout(Duration::from_millis(1500))
        .body(json!({"prompt": "p"}).to_string());
    assert!(request.send().await.is_err(), "the caller gave up");
    let leader = read_pid(&worker.dir().join("leader.pid"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_ended(leader) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(has_ended(leader), "the agent {leader} outlived its caller");
    assert_eq!(worker.health().await, (200, "ok".to_owned()));
}
