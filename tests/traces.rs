//! Traces over OTLP: with `otlp_endpoint` set, each event is one trace with a span per stage,
//! exported to a receiver on loopback (`support::otlp`, standing in for an OpenTelemetry
//! Collector); the worker gets the `traceparent` of its try's span, and the requests to the
//! provider that of their stage's span: the source's hydration, the responder's write-back.

use std::collections::BTreeMap;

use crate::support::daemon::send_github;
use crate::support::daemon::{Daemon, wait_tasks, wait_write_back};
use crate::support::forge::GitHub;
use crate::support::otlp::{Receiver, Span};
use crate::support::worker::{Answer, TestWorker};
use crate::write_back::{
    GITHUB_TOKEN, full_result, github_home_with, open_pull_request, pull_request_body,
};

/// The span ids of `spans` by name (a name seen twice keeps both, in the order received).
fn by_name(spans: &[&Span]) -> BTreeMap<String, Vec<String>> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for span in spans {
        names
            .entry(span.name.clone())
            .or_default()
            .push(span.span_id.clone());
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_one_trace_with_a_span_per_stage_joined_by_worker_and_provider() {
    let receiver = Receiver::start().await;
    let github = GitHub::start(GITHUB_TOKEN).await;
    // The source hydrates pull requests from the same stand-in the responder writes to.
    let home = github_home_with(
        &github,
        &format!(
            "otlp_endpoint: {}\nsources:\n  github:\n    api_url: {}\n",
            receiver.endpoint, github.base
        ),
    );
    // The first try of each task fails, so each trace also has a retry, whose error quotes
    // the worker's answer: a secret in it must not reach the receiver.
    let refused = Answer::Refused {
        status: 503,
        body: format!("{{\"error\":\"upstream said {GITHUB_TOKEN}\"}}"),
    };
    let worker =
        TestWorker::scripted(vec![refused.clone(), refused], Answer::Ok(full_result())).await;
    home.add_worker(&format!(
        "name: reviewer\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: review\npolicy:\n  labels: {{allow: true, blocked: [wontfix]}}\n  metadata: {{allow: false}}\n",
        worker.endpoint
    ));
    let daemon = Daemon::start(&home);
    let first = open_pull_request(&daemon, "trace-1").await;
    let second = open_pull_request(&daemon, "trace-2").await;
    for event in [&first, &second] {
        wait_write_back(&daemon, event, "done").await;
    }
    // GitHub delivers the first again: a late stage of its trace.
    let (status, again) = send_github(
        &daemon,
        "pull_request",
        "trace-1",
        &pull_request_body("trace-1"),
    )
    .await;
    assert!((200..300).contains(&status), "{status}: {again}");
    let spans = receiver
        .wait_until(
            "write-back spans of both events, and the duplicate",
            |spans| {
                [&first, &second].iter().all(|event| {
                    spans
                        .iter()
                        .any(|span| span.trace_id == **event && span.name == "writeback.done")
                }) && spans
                    .iter()
                    .any(|span| span.trace_id == first && span.name == "event.duplicate")
            },
        )
        .await;
    assert!(receiver.problems().is_empty(), "{:#?}", receiver.problems());

    // One trace per event: the trace id is the event's id, and nothing of one event is in the
    // other's trace.
    let traces: std::collections::BTreeSet<&str> =
        spans.iter().map(|span| span.trace_id.as_str()).collect();
    assert_eq!(
        traces,
        [first.as_str(), second.as_str()].into_iter().collect(),
        "{spans:#?}"
    );
    for span in &spans {
        assert_eq!(span.service, "mecha");
        if let Some(event) = span.attributes.get("mecha.event_id") {
            assert_eq!(event, &span.trace_id, "{span:#?}");
        }
        assert!(span.end_ns >= span.start_ns, "{span:#?}");
    }

    let worker_parents = worker.traceparents();
    let parents = |hydration: bool| -> Vec<String> {
        github
            .requests()
            .iter()
            .filter(|request| request.path.contains("/pulls/") == hydration)
            .map(|request| {
                request
                    .header("traceparent")
                    .expect("every request to the provider carries a traceparent")
                    .to_owned()
            })
            .collect()
    };
    let (hydration_parents, provider_parents) = (parents(true), parents(false));
    assert!(!hydration_parents.is_empty(), "the source hydrated");
    for event in [&first, &second] {
        let trace: Vec<&Span> = spans
            .iter()
            .filter(|span| span.trace_id == **event)
            .collect();
        // The event's own span is the root; every stage hangs from it.
        let roots: Vec<&&Span> = trace.iter().filter(|span| span.parent.is_empty()).collect();
        assert_eq!(roots.len(), 1, "{trace:#?}");
        let root = roots[0];
        assert_eq!((root.name.as_str(), root.kind), ("event.received", 2));
        assert!(
            trace
                .iter()
                .filter(|span| !span.parent.is_empty())
                .all(|span| span.parent == root.span_id),
            "{trace:#?}"
        );

        let ids: std::collections::BTreeSet<&str> =
            trace.iter().map(|span| span.span_id.as_str()).collect();
        assert_eq!(ids.len(), trace.len(), "span ids are unique: {trace:#?}");

        // A span per stage, in the order the stages happened (the redelivery aside).
        let mut ordered: Vec<&Span> = trace
            .iter()
            .copied()
            .filter(|span| span.name != "event.duplicate")
            .collect();
        ordered.sort_by_key(|span| span.end_ns);
        let names: Vec<&str> = ordered.iter().map(|span| span.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "event.received",
                "event.hydrated",
                "event.matched",
                "task.created",
                "task.sent",
                "task.retry",
                "task.sent",
                "task.completed",
                "policy.applied",
                "writeback.done",
            ],
            "{trace:#?}"
        );
        // Each stage begins where the one before it ended.
        for pair in ordered.windows(2) {
            assert_eq!(pair[1].start_ns, pair[0].end_ns, "{:#?}", pair);
        }
        let retry = ordered[5];
        assert_eq!(retry.status, 2, "a failed try is an error: {retry:#?}");
        assert!(retry.message.contains("503"), "{retry:#?}");
        assert_eq!(
            retry.attributes.get("mecha.attempt").map(String::as_str),
            Some("1")
        );
        assert_eq!(retry.kind, 3);

        // The worker's requests carry the spans of their tries; the provider's, the span of
        // the write-back that made them.
        let names = by_name(&trace);
        for try_span in [&names["task.retry"][0], &names["task.completed"][0]] {
            let parent = format!("00-{event}-{try_span}-01");
            assert!(
                worker_parents.contains(&Some(parent.clone())),
                "{parent} not among {worker_parents:?}"
            );
        }
        let hydration = format!("00-{event}-{}-01", names["event.hydrated"][0]);
        assert!(
            hydration_parents.contains(&hydration),
            "{hydration} not among {hydration_parents:?}"
        );
        let write_back = format!("00-{event}-{}-01", names["writeback.done"][0]);
        assert!(
            provider_parents.contains(&write_back),
            "{write_back} not among {provider_parents:?}"
        );
    }
    // Every request to the provider belongs to one of the two write-backs.
    assert!(
        provider_parents
            .iter()
            .all(|parent| parent.starts_with(&format!("00-{first}-"))
                || parent.starts_with(&format!("00-{second}-"))),
        "{provider_parents:?}"
    );
    assert_eq!(worker_parents.len(), 4, "two tries per event");

    // The token, in the worker's answers, is in no span.
    for body in receiver.bodies() {
        assert!(
            !body.contains(GITHUB_TOKEN),
            "the token was exported: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_costs_the_pipeline_nothing() {
    // Nothing listens at the endpoint: tasks still complete, and the daemon says once that it
    // cannot export.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let github = GitHub::start(GITHUB_TOKEN).await;
    let home = github_home_with(
        &github,
        &format!("otlp_endpoint: http://127.0.0.1:{closed}\n"),
    );
    let worker = TestWorker::start("done").await;
    home.add_worker(&format!(
        "name: reviewer\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: review\n",
        worker.endpoint
    ));
    let daemon = Daemon::start(&home);
    for delivery in ["down-1", "down-2", "down-3"] {
        let event = open_pull_request(&daemon, delivery).await;
        wait_write_back(&daemon, &event, "done").await;
    }
    let mut log = String::new();
    for _ in 0..50 {
        log = daemon.log();
        if log.contains("could not export spans") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        log.matches("could not export spans").count(),
        1,
        "one warning per outage: {log}"
    );
}

/// A task sent through the API roots a trace of its own, an operator's retry through the API
/// is a stage of it, and the spans of its last stages reach the receiver when the daemon stops
/// right after them: the daemon sends what is queued before it exits instead of losing the
/// last batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_task_is_a_trace_and_its_last_spans_are_sent_at_shutdown() {
    let receiver = Receiver::start().await;
    // The first try is refused for good; an operator retries the task.
    let worker = TestWorker::scripted(
        vec![Answer::Status(400)],
        Answer::Ok(serde_json::json!({ "output": "done" }).to_string()),
    )
    .await;
    let home =
        crate::support::daemon::Home::new(&format!("otlp_endpoint: {}\n", receiver.endpoint));
    home.add_worker(&format!("name: reviewer\nendpoint: {}\n", worker.endpoint));
    let daemon = Daemon::start(&home);
    let response = daemon
        .client()
        .post(daemon.url("/task"))
        .header("content-type", "application/json")
        .body(r#"{"prompt":"do it","worker":"reviewer"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 202);
    let failed = wait_tasks(&daemon, "state=failed", 1).await;
    let id = failed[0]["id"].as_str().expect("id");
    let retried = daemon
        .client()
        .post(daemon.url(&format!("/task/{id}/retry")))
        .send()
        .await
        .expect("sent");
    assert!(retried.status().is_success(), "{}", retried.status());
    let tasks = wait_tasks(&daemon, "state=completed", 1).await;
    let trace = tasks[0]["trace_id"].as_str().expect("trace").to_owned();
    daemon.stop();

    // No waiting: what the daemon queued was sent before it exited.
    let spans: Vec<Span> = receiver
        .spans()
        .into_iter()
        .filter(|span| span.trace_id == trace)
        .collect();
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "task.created",
            "task.sent",
            "task.failed",
            "task.retry",
            "task.sent",
            "task.completed",
        ],
        "{spans:#?}"
    );
    assert!(
        spans[0].parent.is_empty(),
        "the task's creation is the root"
    );
    assert!(
        spans[1..]
            .iter()
            .all(|span| span.parent == spans[0].span_id)
    );
    assert_eq!(
        spans[3].attributes.get("mecha.via").map(String::as_str),
        Some("api"),
        "the operator's retry"
    );
    assert_eq!(
        worker.traceparents(),
        [
            Some(format!("00-{trace}-{}-01", spans[2].span_id)),
            Some(format!("00-{trace}-{}-01", spans[5].span_id)),
        ],
        "each try has its own span"
    );
}
