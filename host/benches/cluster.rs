//! Cluster benchmark: ingest and dispatch throughput of one daemon on SQLite, and of one, two
//! and three daemons sharing one PostgreSQL database, measured in one run.
//!
//! `cargo bench -p mecha --bench cluster` (add `-- --quick` for a short run)
//!
//! PostgreSQL is Debian's server, started by this process on loopback (`mecha-test-postgres`);
//! each setup gets a fresh database. The daemons are the real `mecha serve`, each with a home of
//! its own, on the same machine as the database, the load generator and the workers: on a
//! small machine the figures say how the work divides, not how a cluster of machines scales.
//!
//! - ingest: small generic webhooks of a type no worker takes, posted by 32 connections spread
//!   round robin over the daemons; each 202 means the event is committed.
//! - dispatch: generic webhooks that fan out to 10 live workers served here, which answer at
//!   once; from the first post until every task is completed (as the daemons' `/metrics` count
//!   them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};

mod support;

use support::{Daemon, mecha, metric, start_daemon, write_private};

/// The daemons' API key, which the generic source asks of its senders.
const API_KEY: &str = "bench-key";

/// Live workers, each taking every `load` event.
const WORKERS: usize = 10;

/// Connections posting webhooks at once.
const SENDERS: usize = 32;

struct Settings {
    ingest_events: usize,
    load_events: usize,
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let settings = if quick {
        Settings {
            ingest_events: 2_000,
            load_events: 100,
        }
    } else {
        Settings {
            ingest_events: 10_000,
            load_events: 500,
        }
    };
    if !mecha_test_postgres::available() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(&settings));
}

async fn run(settings: &Settings) {
    let server = tokio::task::spawn_blocking(mecha_test_postgres::Server::start)
        .await
        .expect("thread")
        .expect("PostgreSQL starts");
    let answered = Arc::new(AtomicU64::new(0));
    let mut endpoints = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        endpoints.push(start_worker(answered.clone()).await);
    }
    println!(
        "== cluster (real `mecha serve` daemons; ingest: {} webhooks over {SENDERS} connections; dispatch: {} webhooks x {WORKERS} workers)",
        settings.ingest_events, settings.load_events
    );
    let setups: [(&str, usize); 4] = [
        ("SQLite", 1),
        ("PostgreSQL", 1),
        ("PostgreSQL", 2),
        ("PostgreSQL", 3),
    ];
    for (backend, daemons) in setups {
        let database = (backend == "PostgreSQL").then(|| server.fresh_database());
        let before = answered.load(Ordering::Relaxed);
        let figures = measure(settings, database.as_deref(), daemons, &endpoints).await;
        let sent = answered.load(Ordering::Relaxed) - before;
        let tasks = (settings.load_events * WORKERS) as u64;
        assert_eq!(sent, tasks, "every task reached its worker exactly once");
        let commits = figures
            .2
            .map(|per_event| format!("   ({per_event:.2} write transactions per ingested event)"))
            .unwrap_or_default();
        println!(
            "{backend:<10} x{daemons}: ingest {:7.0} events/s   dispatch {:7.0} tasks/s{commits}",
            figures.0, figures.1
        );
    }
}

/// Ingest events/s and dispatch tasks/s of `daemons` daemons on `database` (the first home's
/// SQLite file when `None`), and on PostgreSQL the write transactions the ingest committed per
/// event: the daemons' inserts, state changes and audit batches, as transaction ids counted by
/// the server.
async fn measure(
    settings: &Settings,
    database: Option<&str>,
    daemons: usize,
    endpoints: &[String],
) -> (f64, f64, Option<f64>) {
    let homes: Vec<tempfile::TempDir> = (0..daemons)
        .map(|_| tempfile::tempdir().expect("home"))
        .collect();
    let database_url = database.map_or_else(String::new, |url| format!("database_url: {url}\n"));
    for home in &homes {
        write_private(
            &home.path().join("config.yml"),
            &format!("api_key: {API_KEY}\n{database_url}dispatch:\n  concurrency: 256\n"),
        );
    }
    let workers = homes[0].path().join("workers");
    std::fs::create_dir(&workers).expect("dir");
    for (index, endpoint) in endpoints.iter().enumerate() {
        std::fs::write(
            workers.join(format!("w{index}.yaml")),
            format!(
                "name: w{index}\nendpoint: {endpoint}\nconcurrency: 16\nrate_limit:\n  per_second: 1000000\n  burst: 1000000\nevents:\n  - source: generic\n    on: [load]\n    prompt: \"task {{{{ n }}}}\"\n"
            ),
        )
        .expect("worker file");
    }
    mecha(
        homes[0].path(),
        &["worker", "add", workers.to_str().expect("utf-8")],
    );
    for index in 0..endpoints.len() {
        mecha(homes[0].path(), &["worker", "start", &format!("w{index}")]);
    }
    let running: Vec<Daemon> = homes
        .iter()
        .map(|home| start_daemon(home.path()).0)
        .collect();
    let bases: Arc<Vec<String>> = Arc::new(running.iter().map(|d| d.base.clone()).collect());
    let client = client();

    let xid_before = match database {
        Some(url) => Some(transaction_id(url).await),
        None => None,
    };
    let started = Instant::now();
    post_all(&client, &bases, "ingest", settings.ingest_events).await;
    let ingest = settings.ingest_events as f64 / started.elapsed().as_secs_f64();
    let commits = match (database, xid_before) {
        (Some(url), Some(before)) => {
            // What follows each acknowledgement (the event's move, its audit entries) settles.
            tokio::time::sleep(Duration::from_secs(1)).await;
            // Less the transaction that read the first id.
            let after = transaction_id(url).await;
            Some((after - before - 1) as f64 / settings.ingest_events as f64)
        }
        _ => None,
    };

    let tasks = (settings.load_events * endpoints.len()) as u64;
    let started = Instant::now();
    post_all(&client, &bases, "load", settings.load_events).await;
    loop {
        let mut completed = 0;
        for base in bases.iter() {
            completed += metric(&client, base, "mecha_tasks_completed").await;
        }
        if completed >= tasks {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{completed} of {tasks} tasks completed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let dispatch = tasks as f64 / started.elapsed().as_secs_f64();
    drop(running);
    (ingest, dispatch, commits)
}

/// The next transaction id of the server at `url` (a transaction of its own, which takes it).
async fn transaction_id(url: &str) -> u64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connected");
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .expect("transaction id");
    row.get::<_, String>(0).parse().expect("a number")
}

/// Posts `count` generic webhooks of type `kind` over [`SENDERS`] connections, round robin over
/// the daemons at `bases`; every one must be acknowledged.
async fn post_all(
    client: &reqwest::Client,
    bases: &Arc<Vec<String>>,
    kind: &'static str,
    count: usize,
) {
    let next = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (client, bases, next) = (client.clone(), bases.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if n >= count {
                        return;
                    }
                    let base = &bases[n % bases.len()];
                    let response = client
                        .post(format!("{base}/webhook/generic"))
                        .header("X-Event-Type", kind)
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
}

/// A live worker that answers every task at once, counting them in `answered`.
async fn start_worker(answered: Arc<AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/task",
            post(move |_body: String| async move {
                answered.fetch_add(1, Ordering::Relaxed);
                "{\"output\":\"ok\"}"
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    endpoint
}

/// A client that sends the daemons' API key.
fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-api-key",
        reqwest::header::HeaderValue::from_static(API_KEY),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}
