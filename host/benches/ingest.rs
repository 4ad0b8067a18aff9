//! Ingest benchmark: prints every figure of the ingest targets, measured in one run.
//!
//! `cargo bench -p mecha --bench ingest` (add `-- --quick` for a short run, `-- --calls-only`
//! to skip the daemon)
//!
//! 1. Plugin calls, in process: the bundled github plugin's `describe` (instantiate + trivial
//!    call) and `handle-webhook` on real fixtures, each on a fresh instance as the daemon does,
//!    against the same parser and HMAC check compiled natively. The ratio wasm/native is
//!    computed from medians taken in the same run.
//! 2. The daemon, as a separate process (the real `mecha serve`, durable SQLite with
//!    synchronous=FULL): start-to-ready with a warm compile cache and idle RSS; then a load
//!    generator over loopback that makes every GitHub fixture unique (a counter field, since
//!    the daemon refuses a signed body it has seen as a replay), signs it and posts it with a
//!    fresh delivery id, at saturation and at a fixed rate. Latency at the fixed rate is measured from each
//!    request's scheduled send time, so a stalled daemon cannot hide its queueing delay.
//! 3. Storage under sustained load: saturation for 60 s (10 s with `--quick`), then the sizes of
//!    the WAL and the database, and the database's growth against the bytes received.
//!
//! The load generator shares the machine's cores with the daemon, so saturation figures are a
//! lower bound of what the daemon does with the machine to itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mecha::config::secrets::Secret;
use mecha::plugin::bindings::source::types;
use mecha::plugin::engine::RuntimeOptions;
use mecha::plugin::install::Installed;
use mecha::plugin::loader::{Loader, Runner};
use mecha::plugin::source::{SourceCall, SourcePlugin};
use mecha::plugin::{PluginRegistry, Runtime, World};

const SECRET: &str = "bench-webhook-secret";

struct Settings {
    call_iterations: usize,
    load_seconds: u64,
    sustained_seconds: u64,
    connections: usize,
    fixed_rate: u64,
}

mod support;

use support::{cpu_time, rss_kib, start_daemon, write_private};

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let settings = if quick {
        Settings {
            call_iterations: 300,
            load_seconds: 2,
            sustained_seconds: 10,
            connections: 32,
            fixed_rate: 1000,
        }
    } else {
        Settings {
            call_iterations: 3000,
            load_seconds: 5,
            sustained_seconds: 60,
            connections: 64,
            fixed_rate: 1000,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(plugin_calls(&settings));
    if !std::env::args().any(|arg| arg == "--calls-only") {
        runtime.block_on(daemon(&settings));
    }
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/github");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("fixture");
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

fn event_of(file_name: &str) -> String {
    file_name.split("__").next().unwrap_or("push").to_owned()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

async fn github_plugin() -> (Arc<SourcePlugin>, SourceCall, Loader) {
    let runtime = Runtime::new(RuntimeOptions::with_pool(16)).expect("runtime");
    println!("engine allocator: {:?}", runtime.allocator());
    let loader = Loader::new(Arc::new(runtime), None).expect("loader");
    let none = Installed::new(std::env::temp_dir().join("mecha-bench-no-plugins"));
    let registry = PluginRegistry::load(&loader, &none)
        .await
        .expect("bundled plugins");
    let Runner::Source(plugin) = registry
        .get(World::Source, "github")
        .expect("github")
        .runner
        .clone()
    else {
        panic!("the github source is a source");
    };
    let mut secrets = BTreeMap::new();
    secrets.insert("webhook_secret".to_owned(), Secret::new(SECRET));
    let call = SourceCall {
        secrets: Arc::new(secrets),
        ..SourceCall::default()
    };
    (plugin, call, loader)
}

fn signed_request(event: &str, body: &[u8]) -> types::Request {
    let header = |name: &str, value: String| types::Header {
        name: name.to_owned(),
        value,
    };
    types::Request {
        method: "POST".into(),
        query: String::new(),
        headers: vec![
            header("x-github-event", event.to_owned()),
            header("x-github-delivery", "bench".to_owned()),
            header(
                "x-hub-signature-256",
                mecha::signature::github_signature(SECRET.as_bytes(), body),
            ),
        ],
        body: body.to_vec(),
    }
}

/// The work of one wasm `handle-webhook`, natively: decode and check the signature, parse.
fn native_handle(event: &str, body: &[u8], signature_header: &str) {
    let hex = signature_header.trim_start_matches("sha256=");
    let signature = mecha_plugin_sdk::hex::decode(hex).expect("hex");
    assert!(mecha::plugin::host::verify::hmac_sha256_matches(
        SECRET.as_bytes(),
        body,
        &signature
    ));
    let parsed = mecha_plugin_github::parse::parse(event, Some("bench"), body).expect("parses");
    std::hint::black_box(parsed);
}

async fn plugin_calls(settings: &Settings) {
    println!(
        "== plugin calls ({} iterations each, fresh instance per call)",
        settings.call_iterations
    );
    let (plugin, call, _loader) = github_plugin().await;
    let limits = call.limits;

    let mut samples = Vec::with_capacity(settings.call_iterations);
    for _ in 0..settings.call_iterations {
        let started = Instant::now();
        std::hint::black_box(plugin.describe(limits).await.expect("describe"));
        samples.push(started.elapsed());
    }
    println!(
        "github describe (instantiate + call):  median {:8.1} µs   [target < 25 µs]",
        micros(median(samples.clone()))
    );

    let describe = micros(median(samples));
    let mut totals = Totals::default();
    for (name, body) in fixtures() {
        let event = event_of(&name);
        let request = signed_request(&event, &body);
        let signature = request.headers[2].value.clone();
        let mut wasm = Vec::with_capacity(settings.call_iterations);
        let mut native = Vec::with_capacity(settings.call_iterations);
        let mut hmac = Vec::with_capacity(settings.call_iterations);
        for _ in 0..settings.call_iterations {
            // The call takes its request; the copy is made outside the timed part, as the
            // daemon hands over the request it read.
            let request = request.clone();
            let started = Instant::now();
            let answer = plugin.handle_webhook(&call, request).await.expect("call");
            wasm.push(started.elapsed());
            assert!(answer.outcome.is_ok() && answer.verified, "{name}");
            let started = Instant::now();
            native_handle(&event, &body, &signature);
            native.push(started.elapsed());
            let started = Instant::now();
            std::hint::black_box(mecha::signature::hmac_sha256_hex(SECRET.as_bytes(), &body));
            hmac.push(started.elapsed());
        }
        let (wasm, native, hmac) = (
            micros(median(wasm)),
            micros(median(native)),
            micros(median(hmac)),
        );
        totals.wasm += wasm;
        totals.native += native;
        totals.hmac += hmac;
        totals.calls += 1.0;
        println!(
            "github handle-webhook {name:<48} {:>6} B   wasm {wasm:7.1} µs   native {native:6.1} µs   ratio {:5.2}",
            body.len(),
            wasm / native
        );
    }
    println!(
        "github handle-webhook, all fixtures: wasm {:.1} µs / native {:.1} µs = ratio {:.2}   [target <= 1.5]",
        totals.wasm,
        totals.native,
        totals.wasm / totals.native
    );
    // The same run, decomposed: both sides pay the HMAC (the host computes it for the plugin);
    // the wasm side also pays a fresh instance (the describe figure) per call.
    let wasm_parse = totals.wasm - totals.hmac - describe * totals.calls;
    let native_parse = totals.native - totals.hmac;
    println!(
        "  of which: HMAC {:.1} µs on both sides, instantiation {:.1} µs (wasm only); parsing alone: wasm {wasm_parse:.1} µs / native {native_parse:.1} µs = ratio {:.2}",
        totals.hmac,
        describe * totals.calls,
        wasm_parse / native_parse
    );
}

#[derive(Default)]
struct Totals {
    wasm: f64,
    native: f64,
    hmac: f64,
    calls: f64,
}

/// Bodies of every fixture, with their event names.
struct Payloads {
    items: Vec<(String, Vec<u8>)>,
    next_delivery: AtomicU64,
}

impl Payloads {
    fn new() -> Payloads {
        let items = fixtures()
            .into_iter()
            .map(|(name, body)| (event_of(&name), body))
            .collect();
        Payloads {
            items,
            next_delivery: AtomicU64::new(0),
        }
    }

    /// Posts the next fixture, made unique with a `"bench"` counter field and signed, with a
    /// fresh delivery id; returns the body's size if it was stored (202).
    async fn send(&self, client: &reqwest::Client, url: &str) -> Option<u64> {
        let n = self.next_delivery.fetch_add(1, Ordering::Relaxed);
        let (event, fixture) = &self.items[n as usize % self.items.len()];
        let mut body = format!("{{\"bench\":{n},").into_bytes();
        body.extend_from_slice(fixture.get(1..).unwrap_or_default());
        let signature = mecha::signature::github_signature(SECRET.as_bytes(), &body);
        let size = body.len() as u64;
        let response = client
            .post(url)
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", format!("bench-{n}"))
            .header("X-Hub-Signature-256", signature)
            .body(body)
            .send()
            .await;
        matches!(response, Ok(response) if response.status().as_u16() == 202).then_some(size)
    }
}

/// What a run at saturation did.
struct Saturation {
    stored: u64,
    failed: u64,
    /// Bytes of the bodies stored.
    bytes: u64,
    seconds: f64,
}

/// Every connection sends its next request as soon as the last one is answered, for `seconds`.
async fn saturate(
    client: &reqwest::Client,
    url: &str,
    payloads: &Arc<Payloads>,
    connections: usize,
    seconds: u64,
) -> Saturation {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stored = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, payloads) = (client.clone(), url.to_owned(), payloads.clone());
            let (stored, failed, bytes) = (stored.clone(), failed.clone(), bytes.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match payloads.send(&client, &url).await {
                        Some(size) => {
                            stored.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(size, Ordering::Relaxed);
                        }
                        None => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    Saturation {
        stored: stored.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        bytes: bytes.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The size of the file at `path` in MiB (0 when it does not exist).
fn mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |file| file.len() as f64 / (1024.0 * 1024.0))
}

async fn daemon(settings: &Settings) {
    println!("== daemon (real `mecha serve`, SQLite synchronous=FULL)");
    let home = tempfile::tempdir().expect("temp home");
    write_private(
        &home.path().join("secrets.yml"),
        &format!("github:\n  webhook_secret: {SECRET}\n"),
    );
    // One load generator on loopback stands for many senders, so the per-address connection
    // cap would otherwise be what is measured.
    write_private(
        &home.path().join("config.yml"),
        "http:\n  max_connections_per_ip: 512\n",
    );

    // The first start fills the compile cache; the second is the one users see every day.
    let (first, cold) = start_daemon(home.path());
    drop(first);
    let (daemon, warm) = start_daemon(home.path());
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_kib(daemon.child.id());
    println!(
        "start to ready: cold cache {:.0} ms, warm cache {:.0} ms   [target < 150 ms]",
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3
    );
    println!(
        "idle RSS: {:.1} MiB   [target < 40 MiB]",
        idle_rss as f64 / 1024.0
    );

    let url = format!("{}/webhook/github", daemon.base);
    let payloads = Arc::new(Payloads::new());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.connections)
        .build()
        .expect("client");

    let cpu_before = cpu_time(daemon.child.id());
    let run = saturate(
        &client,
        &url,
        &payloads,
        settings.connections,
        settings.load_seconds,
    )
    .await;
    let cpu = cpu_time(daemon.child.id()).saturating_sub(cpu_before);
    println!(
        "saturation ({} connections, {} s): {:.0} durable events/s ({} stored, {} failed)   [target >= 5000]",
        settings.connections,
        settings.load_seconds,
        run.stored as f64 / run.seconds,
        run.stored,
        run.failed
    );
    // The load generator runs on the same cores: the daemon's own CPU per event says what the
    // daemon would do with the machine to itself.
    let cpu_per_event = cpu.as_secs_f64() / run.stored.max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "  the daemon's CPU time: {:.0} µs per event, {:.2} cores busy; {:.0} events/s would fill {cores} cores",
        cpu_per_event * 1e6,
        cpu.as_secs_f64() / run.seconds,
        cores as f64 / cpu_per_event,
    );

    // Fixed rate: requests are scheduled at exact instants; latency counts from the schedule.
    let rate = settings.fixed_rate;
    let total = rate * settings.load_seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let origin = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = origin + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, url, payloads) = (client.clone(), url.clone(), payloads.clone());
        tasks.push(tokio::spawn(async move {
            let ok = payloads.send(&client, &url).await.is_some();
            (ok, scheduled.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for task in tasks {
        let (ok, latency) = task.await.expect("task");
        if !ok {
            errors += 1;
        }
        latencies.push(latency);
    }
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "fixed {rate} events/s for {} s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {errors} failed   [target p99 < 25 ms]",
        settings.load_seconds,
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
    );

    // Sustained saturation: does storage stay bounded?
    let database = home.path().join("mecha.db");
    let wal = home.path().join("mecha.db-wal");
    let database_before = mib(&database) + mib(&wal);
    let run = saturate(
        &client,
        &url,
        &payloads,
        settings.connections,
        settings.sustained_seconds,
    )
    .await;
    let received = run.bytes as f64 / (1024.0 * 1024.0);
    let growth = mib(&database) + mib(&wal) - database_before;
    println!(
        "sustained saturation ({} s): {:.0} durable events/s, {received:.0} MiB of bodies received",
        settings.sustained_seconds,
        run.stored as f64 / run.seconds,
    );
    println!(
        "  at its end: WAL {:.1} MiB [target < 64], database {:.1} MiB, grown by {growth:.1} MiB = {:.2} of the bytes received [target <= 0.33]",
        mib(&wal),
        mib(&database),
        growth / received
    );
}
