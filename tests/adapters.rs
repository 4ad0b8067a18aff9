//! Adapter workers run by `mecha serve` against local Ollama and OpenAI stand-ins, and canary
//! secrets that must never show up anywhere a user or an attacker could read them.

use std::time::Duration;

use crate::support::daemon::{Daemon, Home, client, status_and_json};
use crate::support::fixtures;
use crate::support::llm::LlmServer;

const CANARY_WEBHOOK_SECRET: &str = "canary-webhook-secret-7f3a9c2e";
const CANARY_TOKEN: &str = "sk-canaryTOKEN0123456789abcdefXYZ";
const CANARY_API_KEY: &str = "canary-api-key-55aa77bb";
const CANARY_ENV: &str = "canary-env-value-9d8e7f6a";
const CANARIES: [&str; 4] = [
    CANARY_WEBHOOK_SECRET,
    CANARY_TOKEN,
    CANARY_API_KEY,
    CANARY_ENV,
];

fn add(home: &Home, name: &str, yaml: &str) {
    let path = home.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("worker file");
    let (ok, _, stderr) = home.mecha(&["worker", "add", path.to_str().expect("utf-8")]);
    assert!(ok, "worker add {name}: {stderr}");
}

async fn get(daemon: &Daemon, path: &str) -> (u16, String) {
    let response = client()
        .get(daemon.url(path))
        .header("X-API-Key", CANARY_API_KEY)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn wait_task(daemon: &Daemon, id: &str, state: &str) -> serde_json::Value {
    let mut task = serde_json::Value::Null;
    for _ in 0..500 {
        let (_, text) = get(daemon, &format!("/task/{id}")).await;
        task = serde_json::from_str(&text).unwrap_or_default();
        if task["state"] == state {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} never reached {state}: {task}\n{}", daemon.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_answer_through_ollama_and_openai_and_no_secret_leaks() {
    // The OpenAI stand-in requires the canary token as its key, and echoes it back in its
    // answer: the stored result must not carry it.
    let openai = LlmServer::openai(
        &format!("review done; key was {CANARY_TOKEN}"),
        CANARY_TOKEN,
    )
    .await;
    let ollama = LlmServer::ollama("hello from llama").await;
    let home = Home::empty();
    home.write_config(&format!(
        "api_key: {CANARY_API_KEY}\ndispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n"
    ));
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {CANARY_WEBHOOK_SECRET}\ntokens:\n  openai:\n    main: {CANARY_TOKEN}\n"
    ));
    add(
        &home,
        "gpt",
        &format!(
            "name: gpt\nadapter:\n  type: openai\n  upstream: {}\n  model: gpt-test\n  token: openai.main\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: \"Review {{{{.title}}}}\"\n",
            openai.url
        ),
    );
    add(
        &home,
        "llama",
        &format!(
            "name: llama\nadapter:\n  type: ollama\n  upstream: {}\n  model: llama3\n",
            ollama.url
        ),
    );
    add(
        &home,
        "boxed",
        &format!(
            "name: boxed\ndocker:\n  image: mecha/worker:test\n  env:\n    SECRET_THING: {CANARY_ENV}\n"
        ),
    );

    let daemon = Daemon::start(&home);
    let (status, workers) = get(&daemon, "/workers").await;
    assert_eq!(status, 200);
    let workers: serde_json::Value = serde_json::from_str(&workers).expect("json");
    let states: Vec<(&str, &str)> = workers
        .as_array()
        .expect("array")
        .iter()
        .map(|worker| {
            (
                worker["name"].as_str().expect("name"),
                worker["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("boxed", "offline"), ("gpt", "online"), ("llama", "online")]
    );

    // A webhook reaches the OpenAI adapter through its rule.
    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let signature = mecha::signature::github_signature(CANARY_WEBHOOK_SECRET.as_bytes(), &body);
    let response = client()
        .post(daemon.url("/webhook/github"))
        .header("X-GitHub-Event", "pull_request")
        .header("X-GitHub-Delivery", "canary-1")
        .header("X-Hub-Signature-256", signature)
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 202);
    let mut gpt_task = serde_json::Value::Null;
    for _ in 0..500 {
        let (_, page) = get(&daemon, "/tasks?worker=gpt&state=completed").await;
        let page: serde_json::Value = serde_json::from_str(&page).expect("json");
        if let Some(task) = page["tasks"].get(0) {
            gpt_task = task.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        gpt_task["result"]["metadata"]["model"],
        "gpt-test",
        "{gpt_task}\n{}",
        daemon.log()
    );
    assert_eq!(gpt_task["result"]["metadata"]["input_tokens"], 13);
    assert_eq!(
        gpt_task["result"]["output"], "review done; key was [REDACTED]",
        "the worker's echo of the token is redacted"
    );
    assert_eq!(
        openai.authorizations(),
        [Some(format!("Bearer {CANARY_TOKEN}"))]
    );
    assert_eq!(
        openai.requests()[0]["messages"][0]["content"],
        "Review Update the README with new information."
    );

    // A task for the Ollama adapter through the API.
    let response = client()
        .post(daemon.url("/task"))
        .header("content-type", "application/json")
        .header("Authorization", format!("Bearer {CANARY_API_KEY}"))
        .body(r#"{"prompt":"say hi","worker":"llama"}"#)
        .send()
        .await
        .expect("sent");
    let (status, task) = status_and_json(response).await;
    assert_eq!(status, 202, "{task}");
    let done = wait_task(&daemon, task["id"].as_str().expect("id"), "completed").await;
    assert_eq!(done["result"]["output"], "hello from llama");
    assert_eq!(done["result"]["metadata"]["output_tokens"], 7);
    assert_eq!(ollama.requests()[0]["messages"][0]["content"], "say hi");
    assert_eq!(ollama.requests()[0]["model"], "llama3");

    // A task for the Docker worker fails (it is offline), with an error to show.
    let response = client()
        .post(daemon.url("/task"))
        .header("content-type", "application/json")
        .header("X-API-Key", CANARY_API_KEY)
        .body(r#"{"prompt":"box","worker":"boxed"}"#)
        .send()
        .await
        .expect("sent");
    let (_, task) = status_and_json(response).await;
    wait_task(&daemon, task["id"].as_str().expect("id"), "failed").await;

    // Nothing anyone can read carries a canary.
    let mut outputs = Vec::new();
    for path in [
        "/workers",
        "/tasks?limit=100",
        "/events?limit=100",
        "/logs?limit=1000",
        "/metrics",
        "/health",
    ] {
        let (status, text) = get(&daemon, path).await;
        assert_eq!(status, 200, "{path}");
        outputs.push((path.to_owned(), text));
    }
    let (_, text) = get(
        &daemon,
        &format!("/task/{}", gpt_task["id"].as_str().expect("id")),
    )
    .await;
    outputs.push(("/task/{id}".into(), text));
    for command in [
        vec!["worker", "ls", "--json"],
        vec!["worker", "ls"],
        vec!["config"],
        vec!["tasks", "ls", "--json"],
        vec!["logs", "--json", "--limit", "1000"],
        vec!["events", "ls", "--json"],
        vec!["doctor"],
    ] {
        let (_, stdout, stderr) = home.mecha(&command);
        outputs.push((
            format!("mecha {}", command.join(" ")),
            format!("{stdout}{stderr}"),
        ));
    }
    let stopped = daemon.stop();
    outputs.push(("daemon log".into(), stopped));
    for (source, text) in &outputs {
        for canary in CANARIES {
            assert!(!text.contains(canary), "{source} leaks {canary}:\n{text}");
        }
    }
    let config = &outputs
        .iter()
        .find(|(source, _)| source == "mecha config")
        .expect("config")
        .1;
    assert!(
        config.contains("SECRET_THING"),
        "env keys stay visible: {config}"
    );
    assert!(
        config.contains("token: openai.main"),
        "token references stay visible: {config}"
    );
}

/// Posts a task for `worker` through `daemon`'s API and waits for it to complete.
async fn completed_task(daemon: &Daemon, worker: &str, prompt: &str) -> serde_json::Value {
    let response = client()
        .post(daemon.url("/task"))
        .header("content-type", "application/json")
        .header("X-API-Key", CANARY_API_KEY)
        .body(serde_json::json!({"prompt": prompt, "worker": worker}).to_string())
        .send()
        .await
        .expect("sent");
    let (status, task) = status_and_json(response).await;
    assert_eq!(status, 202, "{task}");
    wait_task(daemon, task["id"].as_str().expect("id"), "completed").await
}

/// Two daemons on one database each run their own runner of an adapter worker, and each sends
/// its tasks to its own: the other's runner asks for a key only the other holds. A daemon that
/// stops leaves the worker to the daemon still running it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_daemon_on_a_shared_database_sends_to_its_own_adapter_runner() {
    let ollama = LlmServer::ollama("hello from llama").await;
    let config = format!(
        "api_key: {CANARY_API_KEY}\ndispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n"
    );
    let first = Home::new(&config);
    add(
        &first,
        "llama",
        &format!(
            "name: llama\nadapter:\n  type: ollama\n  upstream: {}\n  model: llama3\n",
            ollama.url
        ),
    );
    let second = Home::new(&format!(
        "{config}database_url: sqlite://{}\n",
        first.path().join("mecha.db").display()
    ));
    let early = Daemon::start(&first);
    // Started second, so its runner's endpoint is the one stored.
    let late = Daemon::start(&second);

    for (daemon, prompt) in [(&early, "to the first"), (&late, "to the second")] {
        let done = completed_task(daemon, "llama", prompt).await;
        assert_eq!(done["result"]["output"], "hello from llama", "{done}");
    }
    let prompts: Vec<serde_json::Value> = ollama
        .requests()
        .iter()
        .map(|request| request["messages"][0]["content"].clone())
        .collect();
    assert_eq!(prompts, ["to the first", "to the second"]);

    // The daemon whose runner the store names stops and leaves the worker offline; the other
    // still sends to its own runner, and takes the stored runner over.
    late.stop();
    let done = completed_task(&early, "llama", "after the second stopped").await;
    assert_eq!(done["result"]["output"], "hello from llama", "{done}");
    let mut listed = serde_json::Value::Null;
    for _ in 0..500 {
        let (ok, stdout, stderr) = first.mecha(&["worker", "ls", "--json"]);
        assert!(ok, "{stderr}");
        listed = serde_json::from_str(&stdout).expect("json");
        if listed[0]["state"] == "online" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(listed[0]["state"], "online", "{listed}\n{}", early.log());

    // An operator's stop holds whatever runner a daemon has.
    let (ok, _, stderr) = first.mecha(&["worker", "stop", "llama"]);
    assert!(ok, "{stderr}");
    let (_, workers) = get(&early, "/workers").await;
    let workers: serde_json::Value = serde_json::from_str(&workers).expect("json");
    assert_eq!(workers[0]["state"], "offline", "{workers}");
    let asked = ollama.requests().len();
    let response = client()
        .post(early.url("/task"))
        .header("content-type", "application/json")
        .header("X-API-Key", CANARY_API_KEY)
        .body(r#"{"prompt":"while stopped","worker":"llama"}"#)
        .send()
        .await
        .expect("sent");
    let (_, task) = status_and_json(response).await;
    wait_task(&early, task["id"].as_str().expect("id"), "failed").await;
    assert_eq!(ollama.requests().len(), asked, "nothing reached the model");
    early.stop();
}
