//! Plugins from other languages' toolchains, straight from their build scripts, through the
//! real daemon: the Python source and the C source serve webhooks, the Python policy filters a
//! worker's result in a chain, and a Python plugin gets nothing it was not granted.

use crate::support::daemon::{Daemon, Home, client, send_github, status_and_json, wait_tasks};
use crate::support::fixtures;
use crate::support::toolchains;
use crate::support::worker::{Answer, TestWorker};

/// Installs the component at `path` into `home`, checking the CLI's answer.
fn install(home: &Home, path: &std::path::Path, name: &str) {
    let (ok, stdout, stderr) =
        home.mecha(&["plugin", "install", "--yes", path.to_str().expect("utf-8")]);
    assert!(ok, "install {name}: {stderr}");
    assert!(stdout.contains(&format!("installed {name}")), "{stdout}");
}

async fn post(daemon: &Daemon, source: &str, body: &str) -> (u16, serde_json::Value) {
    let response = client()
        .post(daemon.url(&format!("/webhook/{source}")))
        .header("X-API-Key", "the-api-key")
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("sent");
    status_and_json(response).await
}

#[tokio::test]
async fn the_python_source_serves_webhooks() {
    let Some(wasm) = toolchains::built(
        "the_python_source_serves_webhooks",
        "examples/plugins/python-source",
        "python-source.wasm",
    ) else {
        return;
    };
    let home = Home::new("api_key: the-api-key\n");
    install(&home, &wasm, "python-source");
    let daemon = Daemon::start(&home);

    let alert = std::fs::read_to_string(wasm.with_file_name("fixtures").join("request.json"))
        .expect("fixture");
    let (status, answer) = post(&daemon, "python-source", &alert).await;
    assert_eq!(status, 202, "{answer}");
    // One event: the reply is the stored event.
    let event = &answer;
    let fixture: serde_json::Value = serde_json::from_str(&alert).expect("JSON fixture");
    assert_eq!(event["type"], fixture["type"], "{answer}");
    assert_eq!(event["subject"], fixture["monitor"], "{answer}");
    assert_eq!(
        event["attrs"]["status_code"], fixture["status_code"],
        "{answer}"
    );

    let (status, answer) = post(&daemon, "python-source", "{not json").await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|message| message.contains("not valid JSON")),
        "{answer}"
    );
    let (status, answer) = post(&daemon, "python-source", "[1, 2]").await;
    assert_eq!(status, 400, "{answer}");

    // The daemon still serves its own plugins alongside.
    let push = fixtures::read("github", "push__payload.json");
    assert_eq!(
        send_github(&daemon, "push", "next-to-python", &push)
            .await
            .0,
        202
    );
}

#[tokio::test]
async fn the_c_source_serves_webhooks() {
    let Some(wasm) = toolchains::built(
        "the_c_source_serves_webhooks",
        "examples/plugins/c-source",
        "c-source.wasm",
    ) else {
        return;
    };
    let home = Home::new("api_key: the-api-key\n");
    install(&home, &wasm, "c-source");
    let daemon = Daemon::start(&home);

    let (status, answer) = post(
        &daemon,
        "c-source",
        r#"{"type": "deploy.finished", "actor": "ci-bot"}"#,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["type"], "deploy.finished", "{answer}");
    assert_eq!(answer["actor"], "ci-bot", "{answer}");
    for bad in ["{not json", "[]", "", "\"unterminated"] {
        let (status, answer) = post(&daemon, "c-source", bad).await;
        assert_eq!(status, 400, "{bad:?}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_policy_filters_a_result_in_a_chain() {
    let Some(wasm) = toolchains::built(
        "the_python_policy_filters_a_result_in_a_chain",
        "examples/plugins/python-policy",
        "python-policy.wasm",
    ) else {
        return;
    };
    let home = Home::new("");
    install(&home, &wasm, "python-policy");
    let proposed = serde_json::json!({
        "output": "reviewed",
        "comment": {"body": "This logs the user's password in plain text."},
        "labels": {"add": ["security", "wontfix"], "remove": []},
        "status": {"state": "success", "description": "ok"}
    });
    let worker = TestWorker::scripted(Vec::new(), Answer::Ok(proposed.to_string())).await;
    home.add_worker(&format!(
        "name: guarded\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: review\n\
         policy:\n  - plugin: rules\n    config: {{comment: {{allow: true}}, labels: {{allow: true}}, status: {{allow: false}}}}\n\
         \x20 - plugin: python-policy\n    config: {{allowed_labels: [bug, security], forbidden_words: [password]}}\n",
        worker.endpoint
    ));
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&daemon, "pull_request", "python-policy", &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id").to_owned();
    let decision = wait_decision(&daemon, &event_id).await;
    let decision = &decision;
    assert_eq!(
        decision["policies"],
        serde_json::json!(["rules", "python-policy"]),
        "{decision}"
    );
    let reasons = |side: &str| -> String { decision[side].to_string() };
    // rules denied the status; the Python policy the comment and the label it does not list.
    assert!(reasons("denied").contains("status"), "{decision}");
    assert!(reasons("denied").contains("comment"), "{decision}");
    assert!(reasons("denied").contains("wontfix"), "{decision}");
    assert!(reasons("allowed").contains("labels"), "{decision}");
}

/// The policy decision stored with the task of `event_id`, once there is one.
async fn wait_decision(daemon: &Daemon, event_id: &str) -> serde_json::Value {
    for _ in 0..500 {
        let tasks = wait_tasks(daemon, &format!("event={event_id}&state=completed"), 1).await;
        if !tasks[0]["decision"].is_null() {
            return tasks[0]["decision"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the policies never decided:\n{}", daemon.log());
}

#[tokio::test]
async fn a_python_plugin_gets_nothing_it_was_not_granted() {
    let Some(wasm) = toolchains::built(
        "a_python_plugin_gets_nothing_it_was_not_granted",
        "tests/plugins/python-probe",
        "python-probe.wasm",
    ) else {
        return;
    };
    let home = Home::new("api_key: the-api-key\n");
    install(&home, &wasm, "python-probe");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("address").port();
    let daemon = Daemon::start_with_env(&home, &[("MECHA_PROBE_CANARY", "visible")]);
    let (status, answer) = post(&daemon, "python-probe", &format!("{{\"port\": {port}}}")).await;
    assert_eq!(status, 202, "{answer}");
    let attrs = &answer["attrs"];
    for attempt in ["file", "socket"] {
        let outcome = attrs[attempt].as_str().expect("text attr");
        assert!(outcome.starts_with("denied"), "{attempt}: {outcome}");
    }
    assert_eq!(attrs["env"], 0, "{attrs}");
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(
        listener.accept().is_err(),
        "nothing connected to the listener"
    );
    let log = daemon.log();
    assert!(log.contains("probe stdout line"), "{log}");
    assert!(log.contains("probe stderr line"), "{log}");
}

#[tokio::test]
async fn a_python_policy_reads_a_stopped_clock() {
    let Some(wasm) = toolchains::built(
        "a_python_policy_reads_a_stopped_clock",
        "tests/plugins/python-clock",
        "python-clock.wasm",
    ) else {
        return;
    };
    let home = Home::new("");
    install(&home, &wasm, "python-clock");
    let result = std::env::temp_dir().join(format!("mecha-clock-{}.json", std::process::id()));
    std::fs::write(&result, r#"{"output": "x"}"#).expect("result written");
    let (ok, stdout, stderr) = home.mecha(&[
        "plugin",
        "test",
        wasm.to_str().expect("utf-8"),
        "--result",
        result.to_str().expect("utf-8"),
        "--json",
    ]);
    let _ = std::fs::remove_file(&result);
    assert!(ok, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let reason = report["outcome"]["decision"]["allowed"][0]["reason"]
        .as_str()
        .expect("reason");
    assert!(reason.starts_with("clock=0 "), "{reason}");
    assert!(
        report["figures"]["fuel_used"].as_u64().is_some(),
        "{report}"
    );
}
