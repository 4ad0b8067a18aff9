//! From a webhook to finished tasks: matching, fan-out, prompts, retries, dead letters,
//! recovery of workers and of the daemon itself, and the audit trail of it all.

use std::time::Duration;

use crate::support::daemon::{
    Daemon, Home, client, free_port, get_json, send_github, status_and_json, wait_tasks,
};
use crate::support::fixtures;
use crate::support::worker::{Answer, TestWorker};

/// Retries and health probes in milliseconds, so the tests do not wait for production delays.
const FAST: &str =
    "dispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n";

/// Submits a task for `worker` through the API, which must accept it.
async fn submit(daemon: &Daemon, worker: &str) {
    let response = daemon
        .client()
        .post(daemon.url("/task"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "prompt": "do it", "worker": worker }).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 202);
}

fn live_worker(name: &str, endpoint: &str, rules: &str) -> String {
    format!("name: {name}\nendpoint: {endpoint}\nevents:\n{rules}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_fans_out_to_every_matching_worker_with_its_prompt_and_context() {
    let reviewer = TestWorker::start("looks good").await;
    let labeler = TestWorker::start("labelled").await;
    let bystander = TestWorker::start("never").await;
    let home = Home::new(FAST);
    home.add_worker(
        &live_worker(
            "reviewer",
            &reviewer.endpoint,
            "  - source: github\n    on: [pull_request.opened]\n    filter:\n      repo_owner: Codertocat\n    prompt: \"Review PR #{{.number}} in {{.repo_owner}}/{{ repo_name }}: {{.title}}\"\n",
        ),
    );
    home.add_worker(
        &live_worker(
            "labeler",
            &labeler.endpoint,
            "  - source: github\n    on: [\"pull_request.*\"]\n    filter:\n      draft: false\n      base_branch: [main, master]\n    prompt: \"Label {{ number }}\"\n  - source: github\n    on: [pull_request.opened]\n    prompt: \"second rule never used\"\n",
        ),
    );
    home.add_worker(&live_worker(
        "bystander",
        &bystander.endpoint,
        "  - source: github\n    on: [push]\n    prompt: \"never\"\n",
    ));
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let payload: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let (status, event) = send_github(&daemon, "pull_request", "fan-out-1", &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id").to_owned();

    let received = reviewer.wait_for(1).await;
    // The W3C trace context of the task's try: the event's trace, the try's own span (its
    // agreement with the exported span is checked in `traces.rs`).
    let traceparent = reviewer.traceparents()[0].clone().expect("a traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", event_id.as_str(), "01")
    );
    assert!(
        parts[2].len() == 16 && parts[2].bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{traceparent}"
    );
    let number = payload["number"].as_i64().expect("number");
    let title = payload["pull_request"]["title"].as_str().expect("title");
    assert_eq!(
        received[0]["prompt"],
        format!("Review PR #{number} in Codertocat/Hello-World: {title}")
    );
    let context = &received[0]["context"];
    assert_eq!(context["source"], "github");
    assert_eq!(context["actor"], payload["sender"]["login"]);
    assert_eq!(context["subject"], "Codertocat/Hello-World");
    assert_eq!(context["number"], number);
    assert_eq!(context["head_sha"], payload["pull_request"]["head"]["sha"]);
    let labelled = labeler.wait_for(1).await;
    assert_eq!(
        labelled[0]["prompt"],
        format!("Label {number}"),
        "first matching rule only"
    );

    let tasks = wait_tasks(&daemon, &format!("event={event_id}&state=completed"), 2).await;
    let mut workers: Vec<&str> = tasks
        .iter()
        .map(|task| task["worker_name"].as_str().expect("worker"))
        .collect();
    workers.sort();
    assert_eq!(workers, ["labeler", "reviewer"]);
    let reviewed = tasks
        .iter()
        .find(|task| task["worker_name"] == "reviewer")
        .expect("reviewer task");
    assert_eq!(reviewed["result"]["output"], "looks good");
    assert_eq!(reviewed["trace_id"], event_id.as_str());
    assert!(bystander.received().is_empty());

    // The event completes once both tasks have, and the audit trail shows each stage in order.
    let mut state = String::new();
    for _ in 0..250 {
        state = get_json(&daemon, &format!("/event/{event_id}")).await.1["state"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if state == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, "completed");
    let (status, logs) = get_json(&daemon, &format!("/logs?trace={event_id}&limit=100")).await;
    assert_eq!(status, 200);
    let mut actions: Vec<(String, String)> = logs
        .as_array()
        .expect("records")
        .iter()
        .rev()
        .map(|record| {
            (
                record["action"].as_str().unwrap_or("").to_owned(),
                record["worker"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions.first().map(|(action, _)| action.as_str()),
        Some("event.received"),
        "{actions:?}"
    );
    for worker in ["reviewer", "labeler"] {
        let stages: Vec<&str> = actions
            .iter()
            .filter(|(_, who)| who == worker)
            .map(|(action, _)| action.as_str())
            .collect();
        assert_eq!(
            stages,
            [
                "event.matched",
                "task.created",
                "task.sent",
                "task.completed",
                "policy.applied",
                // No GitHub token is configured, so there is nowhere to write to.
                "writeback.skipped"
            ],
            "{worker}: {actions:?}"
        );
    }
    actions.retain(|(_, who)| who == "bystander");
    assert!(actions.is_empty(), "bystander never appears: {actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_guard_ignores_bots_unless_a_rule_allows_them() {
    let strict = TestWorker::start("strict").await;
    let open = TestWorker::start("open").await;
    let home = Home::new(&format!(
        "api_key: k-123456789\nidentities: [mecha-bot]\n{FAST}"
    ));
    let rule = "  - source: generic\n    on: [note]\n    prompt: \"{{ actor_name }}\"\n";
    home.add_worker(&live_worker("strict", &strict.endpoint, rule));
    home.add_worker(&live_worker(
        "open",
        &open.endpoint,
        &format!("{rule}    allow_bots: true\n"),
    ));
    let daemon = Daemon::start(&home);
    // The generic source has no actor; these events set one through the `is_bot` attr.
    for (body, expected_open) in [
        (r#"{"actor_name":"human"}"#, 1),
        (r#"{"actor_name":"robot","is_bot":true}"#, 2),
    ] {
        let response = client()
            .post(daemon.url("/webhook/generic"))
            .header("X-API-Key", "k-123456789")
            .header("X-Event-Type", "note")
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 202);
        open.wait_for(expected_open).await;
    }
    assert_eq!(strict.wait_for(1).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        strict.received().len(),
        1,
        "the bot's event never reached the strict worker"
    );
    let response = client()
        .get(daemon.url("/logs?action=event.skipped&worker=strict"))
        .header("X-API-Key", "k-123456789")
        .send()
        .await
        .expect("sent");
    let (_, skipped) = status_and_json(response).await;
    assert_eq!(skipped.as_array().map(Vec::len), Some(1), "{skipped}");
}

/// A worker that answers 429 with `Retry-After: 1` twice is busy, not failing: the task goes
/// back after the second it asked for (not after the 15-30 s of a failed attempt under the
/// default schedule) and its retry budget is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_worker_gets_its_task_after_its_retry_after_with_the_budget_untouched() {
    let busy = TestWorker::scripted(
        vec![
            Answer::Busy { retry_after: 1 },
            Answer::Busy { retry_after: 1 },
        ],
        Answer::Ok("{\"output\":\"done\"}".into()),
    )
    .await;
    let home = Home::new("");
    home.add_worker(&live_worker("busy", &busy.endpoint, ""));
    let daemon = Daemon::start(&home);
    submit(&daemon, "busy").await;
    let done = wait_tasks(&daemon, "worker=busy&state=completed", 1).await;
    assert_eq!(done[0]["attempts"], 0, "busy answers use up no attempt");
    assert_eq!(done[0]["result"]["output"], "done");
    assert_eq!(busy.received().len(), 3);
    let (_, deferred) = get_json(&daemon, "/logs?action=task.deferred&worker=busy").await;
    let waits: Vec<u64> = deferred
        .as_array()
        .expect("audit entries")
        .iter()
        .map(|entry| {
            entry["detail"]["retry_in_ms"]
                .as_u64()
                .expect("retry_in_ms")
        })
        .collect();
    assert_eq!(waits.len(), 2, "{deferred}");
    assert!(
        waits.iter().all(|wait| (1000..=1100).contains(wait)),
        "each wait is the second asked for, with at most a tenth of jitter: {waits:?}"
    );
    let (_, retried) = get_json(&daemon, "/logs?action=task.retry&worker=busy").await;
    assert_eq!(
        retried,
        serde_json::json!([]),
        "no failed attempt was recorded"
    );
}

/// A worker's `rate_limit` raised with `mecha worker update` applies to a running daemon at
/// once, even to a task already waiting for a token under the old rate (about 17 minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_raised_while_the_daemon_runs_is_obeyed_without_a_restart() {
    let worker = TestWorker::start("done").await;
    let home = Home::new(FAST);
    let definition = |per_second: &str| {
        format!(
            "name: paced\nendpoint: {}\nrate_limit:\n  per_second: {per_second}\n  burst: 1\n",
            worker.endpoint
        )
    };
    home.add_worker(&definition("0.001"));
    let daemon = Daemon::start(&home);
    let pid = daemon.pid();
    for _ in 0..2 {
        submit(&daemon, "paced").await;
    }
    wait_tasks(&daemon, "worker=paced&state=completed", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(worker.received().len(), 1, "the second waits for a token");

    let file = home.path().join("paced.yaml");
    std::fs::write(&file, definition("100")).expect("written");
    let (ok, stdout, stderr) = home.mecha(&["worker", "update", file.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("updated paced"), "{stdout}");
    wait_tasks(&daemon, "worker=paced&state=completed", 2).await;
    assert_eq!(worker.received().len(), 2);
    assert_eq!(daemon.pid(), pid, "no restart");

    let (ok, _, stderr) = home.mecha(&["worker", "update", "/nonexistent/worker.yaml"]);
    assert!(!ok);
    assert!(!stderr.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_then_ok_is_retried_and_a_500_fails_at_once() {
    let flaky = TestWorker::scripted(
        vec![Answer::Busy { retry_after: 0 }, Answer::Status(503)],
        Answer::Ok("{\"output\":\"third time\"}".into()),
    )
    .await;
    let broken = TestWorker::scripted(Vec::new(), Answer::Status(500)).await;
    let home = Home::new(FAST);
    home.add_worker(&live_worker("flaky", &flaky.endpoint, ""));
    home.add_worker(&live_worker("broken", &broken.endpoint, ""));
    let daemon = Daemon::start(&home);

    let submit = |worker: &'static str| {
        daemon
            .client()
            .post(daemon.url("/task"))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "prompt": "do it", "worker": worker }).to_string())
            .send()
    };
    let (status, task) = status_and_json(submit("flaky").await.expect("sent")).await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(task["state"], "pending");
    let done = wait_tasks(&daemon, "worker=flaky&state=completed", 1).await;
    assert_eq!(
        done[0]["attempts"], 1,
        "the 503 is a failed attempt; the 429 with Retry-After is back-pressure and is not"
    );
    assert_eq!(done[0]["result"]["output"], "third time");
    assert_eq!(flaky.received().len(), 3);

    let (status, _) = status_and_json(submit("broken").await.expect("sent")).await;
    assert_eq!(status, 202);
    let failed = wait_tasks(&daemon, "worker=broken&state=failed", 1).await;
    assert_eq!(broken.received().len(), 1, "a 500 is not retried");
    assert!(
        failed[0]["error"]
            .as_str()
            .expect("error")
            .contains("worker returned 500"),
        "{failed:?}"
    );

    let (status, error) = status_and_json(submit("nobody").await.expect("sent")).await;
    assert_eq!(status, 404);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("unknown worker: nobody")
    );
    let (status, error) = status_and_json(
        daemon
            .client()
            .post(daemon.url("/task"))
            .header("content-type", "application/json")
            .body("{\"prompt\":\"\"}")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("prompt is required"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_dead_letter_and_tasks_retry_brings_it_back() {
    let worker = TestWorker::scripted(
        vec![
            Answer::Status(503),
            Answer::Status(503),
            Answer::Status(503),
        ],
        Answer::Ok("{\"output\":\"finally\"}".into()),
    )
    .await;
    let home = Home::new(FAST);
    home.add_worker(&format!(
        "{}max_retries: 3\n",
        live_worker("tired", &worker.endpoint, "")
    ));
    let daemon = Daemon::start(&home);
    let response = daemon
        .client()
        .post(daemon.url("/task"))
        .header("content-type", "application/json")
        .body("{\"prompt\":\"try\"}")
        .send()
        .await
        .expect("sent");
    let (status, task) = status_and_json(response).await;
    assert_eq!(status, 202, "{task}\n{}", daemon.log());
    let id = task["id"].as_str().expect("id").to_owned();
    let dead = wait_tasks(&daemon, "worker=tired&state=failed", 1).await;
    assert!(
        dead[0]["error"]
            .as_str()
            .expect("error")
            .contains("retries exhausted after 3 attempts"),
        "{dead:?}"
    );
    let (_, logs) = get_json(&daemon, &format!("/logs?task={id}&action=task.dead_letter")).await;
    assert_eq!(logs.as_array().map(Vec::len), Some(1), "{logs}");

    let (ok, stdout, stderr) = home.mecha(&["tasks", "retry", &id]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("pending again"), "{stdout}");
    let done = wait_tasks(&daemon, "worker=tired&state=completed", 1).await;
    assert_eq!(done[0]["result"]["output"], "finally");
    let (ok, _, stderr) = home.mecha(&["tasks", "retry", &id]);
    assert!(!ok);
    assert!(
        stderr.contains("is completed; only failed tasks"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_went_down_recovers_by_itself() {
    let port = free_port();
    let home = Home::new(FAST);
    let endpoint = format!("http://127.0.0.1:{port}");
    // Started while it is down: `worker start` warns and leaves it in error.
    let path = home.path().join("phoenix.yaml");
    std::fs::write(&path, live_worker("phoenix", &endpoint, "")).expect("file");
    assert!(
        home.mecha(&["worker", "add", path.to_str().expect("utf-8")])
            .0
    );
    let (ok, stdout, _) = home.mecha(&["worker", "start", "phoenix"]);
    assert!(ok);
    assert!(stdout.contains("warning: health check failed"), "{stdout}");
    let daemon = Daemon::start(&home);
    let response = daemon
        .client()
        .post(daemon.url("/task"))
        .header("content-type", "application/json")
        .body("{\"prompt\":\"rise\",\"worker\":\"phoenix\"}")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, workers) = get_json(&daemon, "/workers").await;
    assert_eq!(workers[0]["state"], "error", "{workers}");

    let worker =
        TestWorker::on_port(port, Vec::new(), Answer::Ok("{\"output\":\"back\"}".into())).await;
    let done = wait_tasks(&daemon, "worker=phoenix&state=completed", 1).await;
    assert_eq!(done[0]["result"]["output"], "back");
    assert_eq!(worker.received().len(), 1);
    let (_, workers) = get_json(&daemon, "/workers").await;
    assert_eq!(workers[0]["state"], "online");
    let (_, logs) = get_json(&daemon, "/logs?trace=worker:phoenix&action=worker.state").await;
    assert!(
        logs.as_array().is_some_and(|records| records.len() >= 2),
        "{logs}"
    );
}

/// `kill -9` after the events were acknowledged but before their tasks could be delivered:
/// after a restart every event reaches the worker exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_acceptance_and_dispatch_loses_and_repeats_nothing() {
    let port = free_port();
    let home = Home::new(FAST);
    let rule = "  - source: generic\n    on: [job]\n    prompt: \"job {{ n }}\"\n";
    let path = home.path().join("steady.yaml");
    std::fs::write(
        &path,
        live_worker("steady", &format!("http://127.0.0.1:{port}"), rule),
    )
    .expect("file");
    assert!(
        home.mecha(&["worker", "add", path.to_str().expect("utf-8")])
            .0
    );
    assert!(home.mecha(&["worker", "start", "steady"]).0);

    let daemon = Daemon::start(&home);
    const EVENTS: usize = 20;
    for n in 0..EVENTS {
        let response = daemon
            .client()
            .post(daemon.url("/webhook/generic"))
            .header("X-Event-Type", "job")
            .body(format!("{{\"n\":{n}}}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 202);
    }
    daemon.kill();

    let worker =
        TestWorker::on_port(port, Vec::new(), Answer::Ok("{\"output\":\"done\"}".into())).await;
    let daemon = Daemon::start(&home);
    wait_tasks(&daemon, "worker=steady&state=completed&limit=100", EVENTS).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut prompts: Vec<String> = worker
        .received()
        .iter()
        .map(|task| task["prompt"].as_str().expect("prompt").to_owned())
        .collect();
    prompts.sort();
    let mut expected: Vec<String> = (0..EVENTS).map(|n| format!("job {n}")).collect();
    expected.sort();
    assert_eq!(prompts, expected, "each event delivered exactly once");
    let (_, events) = get_json(&daemon, "/events?state=completed&limit=100").await;
    assert_eq!(events.as_array().map(Vec::len), Some(EVENTS));
}

/// Two daemons share one database. While one sends a task to a slow worker, renewing its lease,
/// the other leaves the task alone; once the first is killed, the other releases the lease that
/// ran out and sends the task again, exactly once, with the attempt counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_lease_runs_out_is_sent_again_once_by_another_daemon() {
    let slow = Answer::Slow {
        after: Duration::from_secs(600),
        body: "{\"output\":\"late\"}".into(),
    };
    let worker = TestWorker::scripted(vec![slow], Answer::Ok("{\"output\":\"done\"}".into())).await;
    let leased = format!("{FAST}  lease_ms: 600\n");
    let first = Home::new(&leased);
    first.add_worker(&live_worker(
        "slow",
        &worker.endpoint,
        "  - source: generic\n    on: [job]\n    prompt: job\n",
    ));
    let database = first.path().join("mecha.db");
    let holder = Daemon::start(&first);
    let second = Home::new(&leased);
    let other = Daemon::start_with_env(
        &second,
        &[("MECHA_DB_PATH", database.to_str().expect("utf-8"))],
    );

    submit(&holder, "slow").await;
    worker.wait_for(1).await;
    // Several leases long: the holder renews its lease, so the other daemon's sweeps pass it by.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(worker.received().len(), 1, "held by its lease");
    let held = wait_tasks(&other, "worker=slow&state=dispatched", 1).await;
    assert!(held[0]["lease"]["owner"].is_string(), "{held:?}");

    holder.kill();
    let done = wait_tasks(&other, "worker=slow&state=completed", 1).await;
    assert_eq!(done[0]["result"]["output"], "done");
    assert_eq!(done[0]["attempts"], 1, "the lost attempt is counted");
    // More sweeps, and nothing is sent a third time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(worker.received().len(), 2, "sent again exactly once");
    let id = done[0]["id"].as_str().expect("id");
    let (_, logs) = get_json(&other, &format!("/logs?task={id}&action=task.retry")).await;
    assert!(
        logs[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("lost its lease")),
        "{logs}"
    );
    let metrics = other
        .client()
        .get(other.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("mecha_leases_released 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_links_the_copy_to_the_original() {
    let worker = TestWorker::start("ok").await;
    let home = Home::new(FAST);
    home.add_worker(&live_worker(
        "echo",
        &worker.endpoint,
        "  - source: generic\n    on: [ping]\n    prompt: \"ping {{ n }}\"\n",
    ));
    let daemon = Daemon::start(&home);
    let response = daemon
        .client()
        .post(daemon.url("/webhook/generic"))
        .header("X-Event-Type", "ping")
        .body("{\"n\":1}")
        .send()
        .await
        .expect("sent");
    let (_, event) = status_and_json(response).await;
    let original = event["id"].as_str().expect("id").to_owned();
    worker.wait_for(1).await;

    let addr = daemon.base.trim_start_matches("http://").to_owned();
    let (ok, stdout, stderr) = home.mecha(&["events", "replay", &original, "--addr", &addr]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with(&format!("replayed {original} as ")),
        "{stdout}"
    );
    let copy = stdout.trim().rsplit(' ').next().expect("id").to_owned();
    assert_eq!(worker.wait_for(2).await[1]["prompt"], "ping 1");
    let (_, logs) = get_json(
        &daemon,
        &format!("/logs?trace={original}&action=event.replayed"),
    )
    .await;
    assert_eq!(logs[0]["detail"]["replayed_as"], copy.as_str());
    let (_, logs) = get_json(
        &daemon,
        &format!("/logs?trace={copy}&action=event.replayed"),
    )
    .await;
    assert_eq!(logs[0]["detail"]["replay_of"], original.as_str());
}
