use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The built binary, with no `WORKER_*` variable from the test's environment.
fn worker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mecha-worker"));
    for name in [
        "WORKER_PORT",
        "WORKER_API_KEY",
        "WORKER_TIMEOUT",
        "WORKER_DRY_RUN",
    ] {
        command.env_remove(name);
    }
    command.kill_on_drop(true);
    command
}

#[tokio::test]
async fn help_explains_the_environment() {
    let output = worker().arg("--help").output().await.expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--listen",
        "--workdir",
        "--max-body-bytes",
        "--echo",
        "WORKER_PORT",
        "WORKER_API_KEY",
        "WORKER_TIMEOUT",
        "WORKER_DRY_RUN",
        "MECHA_TASK_ID",
        "MECHA_CONTEXT",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[tokio::test]
async fn a_bad_variable_stops_the_start_and_is_named() {
    let output = worker()
        .args(["--echo", "--listen", "127.0.0.1:0"])
        .env("WORKER_TIMEOUT", "abc")
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"WORKER_TIMEOUT="abc" is not valid"#),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_missing_program_stops_the_start() {
    let output = worker()
        .args(["--listen", "127.0.0.1:0", "--", "no-such-agent-program"])
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("program `no-such-agent-program` was not found on PATH"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_backend_is_required() {
    let output = worker()
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("PROGRAM"));
}

#[tokio::test]
async fn sigterm_lets_the_running_task_finish_and_the_log_keeps_no_secrets() {
    const KEY: &str = "key-that-must-not-be-logged";
    let mut child = worker()
        .args(["--echo", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("WORKER_API_KEY", KEY)
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut log = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut lines = Vec::new();
    let address = loop {
        let line = log.next_line().await.expect("log").expect("a start line");
        lines.push(line.clone());
        if let Some((_, rest)) = line.split_once("address=") {
            break rest
                .split_whitespace()
                .next()
                .expect("an address")
                .to_owned();
        }
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let task = tokio::spawn({
        let client = client.clone();
        let url = format!("http://{address}/task");
        async move {
            let body = json!({
                "id": "task-7",
                "prompt": "prompt-that-must-not-be-logged",
                "context": {"echo_delay_ms": 1500, "secret": "context-that-must-not-be-logged"},
            });
            let response = client
                .post(url)
                .bearer_auth(KEY)
                .body(body.to_string())
                .send()
                .await?;
            Ok::<_, reqwest::Error>((response.status().as_u16(), response.text().await?))
        }
    });
    let health = format!("http://{address}/health");
    let mut busy = false;
    for _ in 0..200 {
        let status = client.get(&health).send().await.expect("health").status();
        if status == 503 {
            busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(busy, "the task never started");

    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());

    let (status, body) = task.await.expect("joined").expect("the task's reply");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("prompt-that-must-not-be-logged"), "{body}");
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the worker stopped")
        .expect("exit status");
    assert!(exit.success(), "{exit}");

    while let Some(line) = log.next_line().await.expect("log") {
        lines.push(line);
    }
    let log = lines.join("\n");
    assert!(log.contains("task finished"), "{log}");
    assert!(log.contains("\"task-7\""), "{log}");
    for secret in [
        KEY,
        "prompt-that-must-not-be-logged",
        "context-that-must-not-be-logged",
    ] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}
