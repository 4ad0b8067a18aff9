//! Dispatch benchmark: tasks per second through the whole pipeline to 50 fast local workers,
//! and the pipeline's own time per task, measured in one run.
//!
//! `cargo bench -p mecha --bench dispatch` (add `-- --quick` for a short run)
//!
//! The real `mecha serve` (durable SQLite, synchronous=FULL) runs as a separate process; 50
//! live workers are served by this process on 127.0.0.1 and answer every task at once. Each
//! generic webhook of type `load` matches all 50 workers (fan-out), so every event becomes 50
//! tasks: match, prompt, task rows, dispatch, completion and audit records each.
//!
//! Overhead per task: single webhooks of type `solo` go to one worker, one at a time. For each,
//! the time from the daemon's 202 to the task being `completed` minus the time the worker
//! itself spent on the request. What remains is mecha: matching, rendering, the commits, the
//! HTTP round trip and the bookkeeping. The task's state is polled only once the worker has
//! answered, back to back, so that the polls neither load the daemon while it dispatches nor
//! wait for a timer's tick. The solo runs start once the fan-out's events have all ended (their
//! write-backs and bookkeeping done), so that they measure a task's own path, not a backlog.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};

/// 50 workers, each matching every `load` event.
const WORKERS: usize = 50;

struct Settings {
    events: usize,
    solo_runs: usize,
}

mod support;

use support::{mecha, metric, start_daemon, write_private};

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let settings = if quick {
        Settings {
            events: 40,
            solo_runs: 40,
        }
    } else {
        Settings {
            events: 200,
            solo_runs: 200,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(&settings));
}

/// What one test worker has seen: tasks, and nanoseconds spent answering them.
#[derive(Default)]
struct Counters {
    tasks: AtomicU64,
    busy_nanos: AtomicU64,
    /// Woken at each answer.
    answered: tokio::sync::Notify,
}

async fn start_worker(counters: Arc<Counters>) -> String {
    async fn task(State(counters): State<Arc<Counters>>, body: String) -> String {
        let started = Instant::now();
        std::hint::black_box(body.len());
        let reply = "{\"output\":\"ok\"}".to_owned();
        counters.tasks.fetch_add(1, Ordering::Relaxed);
        counters
            .busy_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        counters.answered.notify_waiters();
        reply
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/task", post(task))
        .with_state(counters);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    endpoint
}

/// The daemon's API key in this benchmark.
const API_KEY: &str = "bench-key";

/// The JSON the daemon answers `GET url` with.
async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let text = client
        .get(url)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

async fn run(settings: &Settings) {
    let home = tempfile::tempdir().expect("home");
    let dir = home.path().join("workers");
    std::fs::create_dir(&dir).expect("dir");
    write_private(
        &home.path().join("config.yml"),
        &format!("api_key: {API_KEY}\ndispatch:\n  concurrency: 256\n"),
    );
    let counters: Vec<Arc<Counters>> = (0..WORKERS).map(|_| Arc::default()).collect();
    for (index, counters) in counters.iter().enumerate() {
        let endpoint = start_worker(counters.clone()).await;
        let solo = if index == 0 {
            "  - source: generic\n    on: [solo]\n    prompt: \"solo {{ n }}\"\n"
        } else {
            ""
        };
        std::fs::write(
            dir.join(format!("w{index:02}.yaml")),
            format!(
                "name: w{index:02}\nendpoint: {endpoint}\nconcurrency: 8\nrate_limit:\n  per_second: 1000000\n  burst: 1000000\nevents:\n  - source: generic\n    on: [load]\n    prompt: \"task {{{{ n }}}} for w{index:02}\"\n{solo}"
            ),
        )
        .expect("worker file");
    }
    mecha(
        home.path(),
        &["worker", "add", dir.to_str().expect("utf-8")],
    );
    for index in 0..WORKERS {
        mecha(home.path(), &["worker", "start", &format!("w{index:02}")]);
    }
    let (daemon, _) = start_daemon(home.path());
    // The generic source and the API need the daemon's key.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-api-key",
        reqwest::header::HeaderValue::from_static(API_KEY),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client");
    let url = format!("{}/webhook/generic", daemon.base);

    // Throughput: every event fans out to all 50 workers.
    let total_tasks = (settings.events * WORKERS) as u64;
    let started = Instant::now();
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (client, url) = (client.clone(), url.clone());
            let events = settings.events;
            tokio::spawn(async move {
                for n in (sender..events).step_by(8) {
                    let response = client
                        .post(&url)
                        .header("X-Event-Type", "load")
                        .body(format!("{{\"n\":{n}}}"))
                        .send()
                        .await
                        .expect("sent");
                    assert_eq!(response.status().as_u16(), 202);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
    let accepted = started.elapsed();
    while metric(&client, &daemon.base, "mecha_tasks_completed").await < total_tasks {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "tasks did not complete"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let received: u64 = counters
        .iter()
        .map(|c| c.tasks.load(Ordering::Relaxed))
        .sum();
    assert_eq!(
        received, total_tasks,
        "every task reached its worker exactly once"
    );
    println!(
        "== dispatch (real `mecha serve`, SQLite synchronous=FULL, {} live workers on loopback)",
        WORKERS
    );
    println!(
        "fan-out: {} events x {} workers = {total_tasks} tasks completed in {elapsed:.2} s (events accepted in {:.2} s): {:.0} tasks/s   [target >= 2000]",
        settings.events,
        WORKERS,
        accepted.as_secs_f64(),
        total_tasks as f64 / elapsed
    );

    // The fan-out's tasks are completed; their write-backs and events end shortly after.
    let unfinished = format!("{}/events?state=dispatched&limit=1", daemon.base);
    loop {
        let page = get_json(&client, &unfinished).await;
        if page.as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the fan-out's events did not end"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Overhead: one task at a time, from the 202 to `completed`, minus the worker's own time.
    let solo = &counters[0];
    let mut overheads = Vec::with_capacity(settings.solo_runs);
    let mut last_query = String::new();
    for n in 0..settings.solo_runs {
        let busy_before = solo.busy_nanos.load(Ordering::Relaxed);
        let tasks_before = solo.tasks.load(Ordering::Relaxed);
        let response = client
            .post(&url)
            .header("X-Event-Type", "solo")
            .body(format!("{{\"n\":{n}}}"))
            .send()
            .await
            .expect("sent");
        let acknowledged = Instant::now();
        assert_eq!(response.status().as_u16(), 202);
        let event: serde_json::Value =
            serde_json::from_str(&response.text().await.expect("body")).expect("json");
        let query = format!(
            "{}/tasks?event={}&state=completed",
            daemon.base,
            event["id"].as_str().expect("id")
        );
        while solo.tasks.load(Ordering::Relaxed) == tasks_before {
            let answered = solo.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            if solo.tasks.load(Ordering::Relaxed) == tasks_before {
                answered.await;
            }
        }
        loop {
            let page = get_json(&client, &query).await;
            if page["tasks"]
                .as_array()
                .is_some_and(|tasks| !tasks.is_empty())
            {
                break;
            }
        }
        let total = acknowledged.elapsed();
        last_query = query;
        let worker = Duration::from_nanos(solo.busy_nanos.load(Ordering::Relaxed) - busy_before);
        overheads.push(total.saturating_sub(worker));
    }
    overheads.sort();
    // The overhead includes finding out: one status poll, the same query as above.
    let probe = Instant::now();
    for _ in 0..50 {
        let _ = client
            .get(&last_query)
            .send()
            .await
            .expect("sent")
            .text()
            .await;
    }
    println!(
        "one status poll (part of each overhead figure below): {:.3} ms",
        probe.elapsed().as_secs_f64() * 1e3 / 50.0
    );
    let at = |p: f64| overheads[((overheads.len() as f64 * p) as usize).min(overheads.len() - 1)];
    println!(
        "pipeline overhead per task (acknowledged -> completed, minus the worker's time, {} runs): p50 {:.2} ms, p99 {:.2} ms   [target < 2 ms]",
        settings.solo_runs,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
}
