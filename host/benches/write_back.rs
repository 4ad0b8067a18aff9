//! Write-back costs: the `rules` policy's evaluation of one result, and the github responder's
//! overhead per action (plugin instance, wasi:http, the host's gate), excluding the remote API's
//! own time.
//!
//! The API is a local stand-in that answers at once, like GitHub does for these routes, and
//! measures how long it spends on each request; that time is subtracted, so what remains is
//! mecha's: instantiating the responder, building and sending the requests through the gate,
//! and reading the answers.
//!
//! `cargo bench -p mecha --bench write_back` (add `-- --quick` for a short run).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use mecha::config::secrets::Secret;
use mecha::plugin::bindings::source::types;
use mecha::plugin::engine::RuntimeOptions;
use mecha::plugin::host::http::{
    Credential, DEFAULT_MAX_RESPONSE_BYTES, HttpGrant, Origin, Placement,
};
use mecha::plugin::install::Installed;
use mecha::plugin::limits::Limits;
use mecha::plugin::loader::{Loader, Runner};
use mecha::plugin::responder::ResponderCall;
use mecha::plugin::{PluginRegistry, Runtime, World};

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let iterations = if quick { 200 } else { 2_000 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(run(iterations));
}

async fn run(iterations: usize) {
    let runtime = Runtime::new(RuntimeOptions::with_pool(16)).expect("runtime");
    let loader = Loader::new(Arc::new(runtime), None).expect("loader");
    let none = Installed::new(std::env::temp_dir().join("mecha-bench-no-plugins"));
    let registry = PluginRegistry::load(&loader, &none)
        .await
        .expect("bundled plugins");
    let event = pull_request_event();
    let proposed = full_result();

    let Some(Runner::Policy(rules)) = registry
        .get(World::Policy, "rules")
        .map(|plugin| plugin.runner.clone())
    else {
        panic!("rules is bundled");
    };
    let config = r#"{"comment":{"allow":true,"max_length":2000},"labels":{"allow":true,"blocked":["wontfix"],"allowed":["bug","review"]},"status":{"allow":true},"commit":{"allow":true,"max_size":100000},"metadata":{"allow":false}}"#;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let (_, decision) = rules
            .evaluate(Arc::default(), Limits::default(), &event, &proposed, config)
            .await
            .expect("evaluates");
        samples.push(started.elapsed());
        std::hint::black_box(decision);
    }
    println!(
        "rules policy, one result with every action (fresh instance, fuel-metered): median {:.1} µs over {iterations}",
        micros(median(samples))
    );

    let Some(Runner::Responder(github)) = registry
        .get(World::Responder, "github")
        .map(|plugin| plugin.runner.clone())
    else {
        panic!("the github responder is bundled");
    };
    let api = StandIn::start().await;
    let origin = Origin::parse(&api.base).expect("origin");
    let call = ResponderCall {
        settings: Arc::new(BTreeMap::from([("api_url".to_owned(), api.base.clone())])),
        grant: Arc::new(HttpGrant {
            origins: vec![origin.clone()],
            credentials: vec![Credential {
                origin,
                placement: Placement::Header {
                    name: http::header::AUTHORIZATION,
                    value: Secret::new("Bearer bench-token"),
                },
            }],
            allow_private: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }),
        limits: Limits {
            timeout: Duration::from_secs(30),
            ..Limits::default()
        },
    };
    let allowed = types::TaskResult {
        metadata: None,
        ..proposed
    };
    let rounds = (iterations / 10).max(20);
    let mut per_action = Vec::with_capacity(rounds);
    let mut requests_per_round = 0;
    let mut actions_per_round = 0;
    for round in 0..rounds {
        let before = api.snapshot();
        let started = Instant::now();
        let receipt = github
            .respond(&call, &event, &allowed, &format!("bench{round:08}"), None)
            .await
            .expect("the call runs")
            .answer
            .expect("the stand-in accepts everything");
        let total = started.elapsed();
        let (requests, api_time) = api.since(before);
        requests_per_round = requests;
        actions_per_round = receipt.actions.len();
        let actions = actions_per_round.max(1) as u32;
        per_action.push(total.saturating_sub(api_time) / actions);
    }
    println!(
        "github responder, {actions_per_round} actions in {requests_per_round} requests per result: overhead median {:.1} µs per action (API time excluded) over {rounds} results",
        micros(median(per_action))
    );
}

/// The GitHub API for one pull request, answering at once and timing itself.
struct StandIn {
    base: String,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    nanos: AtomicU64,
}

impl StandIn {
    async fn start() -> StandIn {
        let stats = Arc::new(Stats::default());
        let router = Router::new()
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                get(list).post(created),
            )
            .route("/repos/{owner}/{repo}/issues/{number}/labels", post(labels))
            .route(
                "/repos/{owner}/{repo}/issues/{number}/labels/{name}",
                axum::routing::delete(labels),
            )
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(created))
            .with_state(stats.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        StandIn { base, stats }
    }

    fn snapshot(&self) -> (u64, u64) {
        (
            self.stats.requests.load(Ordering::Relaxed),
            self.stats.nanos.load(Ordering::Relaxed),
        )
    }

    /// Requests and API time since `before`.
    fn since(&self, before: (u64, u64)) -> (u64, Duration) {
        let (requests, nanos) = self.snapshot();
        (requests - before.0, Duration::from_nanos(nanos - before.1))
    }
}

fn timed(stats: &Stats, started: Instant) {
    stats.requests.fetch_add(1, Ordering::Relaxed);
    stats
        .nanos
        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

// Each handler reads the request body, as the real API does: answering before the body is
// read would make the server drop the connection mid-request.

async fn list(State(stats): State<Arc<Stats>>) -> (StatusCode, &'static str) {
    let started = Instant::now();
    let reply = (StatusCode::OK, "[]");
    timed(&stats, started);
    reply
}

async fn created(State(stats): State<Arc<Stats>>, _body: Bytes) -> (StatusCode, &'static str) {
    let started = Instant::now();
    let reply = (
        StatusCode::CREATED,
        r#"{"id":1,"html_url":"https://github.com/o/r/issues/2#issuecomment-1"}"#,
    );
    timed(&stats, started);
    reply
}

async fn labels(State(stats): State<Arc<Stats>>, _body: Bytes) -> (StatusCode, &'static str) {
    let started = Instant::now();
    let reply = (StatusCode::OK, r#"[{"id":1,"name":"bug"}]"#);
    timed(&stats, started);
    reply
}

fn pull_request_event() -> types::StoredEvent {
    let attr = |name: &str, value: types::Value| types::Attr {
        name: name.to_owned(),
        value,
    };
    types::StoredEvent {
        id: "0123456789abcdef0123456789abcdef".into(),
        source: "github".into(),
        trace_id: "0123456789abcdef0123456789abcdef".into(),
        event: types::Event {
            event_type: "pull_request.opened".into(),
            delivery_id: Some("bench".into()),
            dedup_key: None,
            actor: "octocat".into(),
            subject: "o/r".into(),
            attrs: vec![
                attr("repo_owner", types::Value::Text("o".into())),
                attr("repo_name", types::Value::Text("r".into())),
                attr("number", types::Value::Integer(2)),
                attr(
                    "head_sha",
                    types::Value::Text("ec26c3e57ca3a959ca5aad62de7213c562f8c821".into()),
                ),
            ],
        },
    }
}

fn full_result() -> types::TaskResult {
    types::TaskResult {
        output: Some("reviewed".into()),
        comment: Some(types::Comment {
            body: "Looks good, but the parser's error handling needs work. ".repeat(10),
        }),
        labels: Some(types::Labels {
            add: vec!["bug".into()],
            remove: vec!["triage".into()],
        }),
        status: Some(types::Status {
            state: "success".into(),
            description: "review passed".into(),
        }),
        commit: Some(types::Commit {
            message: "Fix typo".into(),
            diff: "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-teh\n+the\n".into(),
        }),
        metadata: Some(r#"{"model":"bench"}"#.into()),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
