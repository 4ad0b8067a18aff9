//! Plugins from other languages' toolchains against the Rust ones, measured in one run.
//!
//! `cargo bench -p mecha --bench languages` (add `-- --quick` for a short run)
//!
//! The Python and C examples are built by their own `build.sh` (componentize-py; clang,
//! wit-bindgen and wasm-tools) when their component is missing. Then:
//!
//! 1. Compile ("install") time of each component with an empty compile cache.
//! 2. The median cost of one webhook call on a pristine instance, as the daemon makes it, for the
//!    Python source, the C source and the bundled Rust `generic` source on the same JSON body;
//!    with the instantiation and call parts, and what Python and C add over Rust. Twice: with
//!    webhooks [`PACE`] apart, as a daemon serving a steady stream sees them (each call then
//!    finds the spare instance its plugin made after the previous one), and back to back, as a
//!    saturated daemon does (a call often arrives before the spare is ready, and instantiates).
//! 3. The daemon's RSS (the real `mecha serve`) after start and 200 webhooks, with and without
//!    the Python source installed and serving them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mecha::plugin::bindings::source::types;
use mecha::plugin::engine::RuntimeOptions;
use mecha::plugin::loader::{Loader, Origin, Runner};
use mecha::plugin::source::{SourceCall, SourcePlugin};
use mecha::plugin::{Runtime, World};

mod support;

use support::{rss_kib, start_daemon, write_private};

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let iterations = if quick { 200 } else { 2000 };
    let python = example("python-source", "python-source.wasm");
    let c = example("c-source", "c-source.wasm");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(calls(&python, &c, iterations));
    runtime.block_on(daemon_memory(&python));
}

/// The component of `examples/plugins/<name>`, built by its `build.sh` when missing.
fn example(name: &str, file: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plugins")
        .join(name);
    let path = dir.join(file);
    if !path.is_file() {
        let status = std::process::Command::new(dir.join("build.sh"))
            .status()
            .expect("build.sh runs");
        assert!(status.success(), "{name}/build.sh failed");
    }
    path
}

/// The alert the Python example's fixture holds, sent to every source.
fn request() -> types::Request {
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/plugins/python-source/fixtures/request.json"),
    )
    .expect("fixture");
    types::Request {
        method: "POST".into(),
        query: String::new(),
        headers: vec![
            types::Header {
                name: "content-type".into(),
                value: "application/json".into(),
            },
            types::Header {
                name: "x-event-type".into(),
                value: "monitor.down".into(),
            },
        ],
        body,
    }
}

async fn load(loader: &Loader, label: &str, wasm: &[u8]) -> (Arc<SourcePlugin>, Duration) {
    let started = Instant::now();
    let plugin = loader
        .load(label, wasm, Origin::Bundled)
        .await
        .expect("loads");
    let compiled = started.elapsed();
    assert_eq!(plugin.world, World::Source);
    let Runner::Source(source) = plugin.runner else {
        unreachable!("a source")
    };
    (source, compiled)
}

/// 10 ms between webhooks to one source in the paced run: 100 a second, a busy stream for one
/// provider, and time enough for the next spare instance (a CPython one takes about 2 ms).
const PACE: Duration = Duration::from_millis(10);

struct Figures {
    total: Duration,
    instantiate: Duration,
    call: Duration,
    /// Calls that ran on a spare instance.
    on_spare: usize,
}

/// Calls `plugin` `iterations` times, `pace` apart (back to back when `None`).
async fn measure(
    runtime: &Runtime,
    plugin: &SourcePlugin,
    iterations: usize,
    pace: Option<Duration>,
) -> Figures {
    let call = SourceCall::default();
    let request = request();
    // Warm the pool slot and the page cache, as a daemon that has served a few webhooks.
    for _ in 0..20 {
        let answer = plugin
            .handle_webhook(&call, request.clone())
            .await
            .expect("call");
        assert!(
            answer.outcome.is_ok(),
            "{} refused the fixture",
            plugin.name()
        );
    }
    runtime.log_sink().start_tap();
    runtime.log_sink().take_figures();
    let mut totals = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        if let Some(pace) = pace {
            tokio::time::sleep(pace).await;
        }
        let started = Instant::now();
        let answer = plugin
            .handle_webhook(&call, request.clone())
            .await
            .expect("call");
        totals.push(started.elapsed());
        assert!(answer.outcome.is_ok());
    }
    let figures = runtime.log_sink().take_figures();
    runtime.log_sink().take();
    let instantiate = figures
        .iter()
        .map(|(_, figures)| Duration::from_micros(figures.instantiate_us))
        .collect();
    let call = figures
        .iter()
        .map(|(_, figures)| Duration::from_micros(figures.call_us))
        .collect();
    Figures {
        total: median(totals),
        instantiate: median(instantiate),
        call: median(call),
        on_spare: figures.iter().filter(|(_, figures)| figures.spare).count(),
    }
}

async fn calls(python: &Path, c: &Path, iterations: usize) {
    let runtime = Arc::new(Runtime::new(RuntimeOptions::with_pool(16)).expect("runtime"));
    // No compile cache: loading is compiling, as on a first install.
    let loader = Loader::new(runtime.clone(), None).expect("loader");
    let generic_wasm = mecha::plugin::bundled::BUNDLED
        .iter()
        .find(|(label, _)| *label == "generic.wasm")
        .map(|(_, wasm)| *wasm)
        .expect("bundled generic");
    let python_wasm = std::fs::read(python).expect("python component");
    let c_wasm = std::fs::read(c).expect("c component");
    let (generic, generic_compile) = load(&loader, "generic", generic_wasm).await;
    let (python, python_compile) = load(&loader, "python-source", &python_wasm).await;
    let (c, c_compile) = load(&loader, "c-source", &c_wasm).await;

    println!("compile (install) time, empty cache:");
    for (name, size, compile) in [
        ("generic (Rust)", generic_wasm.len(), generic_compile),
        ("python-source", python_wasm.len(), python_compile),
        ("c-source", c_wasm.len(), c_compile),
    ] {
        println!(
            "  {name:<16} {:>9.1} KiB  {:>9.1} ms",
            size as f64 / 1024.0,
            compile.as_secs_f64() * 1000.0
        );
    }

    for (how, pace) in [
        (format!("{} ms apart", PACE.as_millis()), Some(PACE)),
        ("back to back".to_owned(), None),
    ] {
        let rust = measure(&runtime, &generic, iterations, pace).await;
        let python = measure(&runtime, &python, iterations, pace).await;
        let c = measure(&runtime, &c, iterations, pace).await;
        println!(
            "one webhook on a pristine instance, {how}, median of {iterations} (instantiate / \
             call; calls that ran on a spare instance):"
        );
        for (name, figures) in [
            ("generic (Rust)", &rust),
            ("python-source", &python),
            ("c-source", &c),
        ] {
            println!(
                "  {name:<16} {:>8.1} µs  ({:.1} / {:.1}; {} on a spare)",
                micros(figures.total),
                micros(figures.instantiate),
                micros(figures.call),
                figures.on_spare
            );
        }
        println!(
            "python-source adds {:.3} ms per webhook over the Rust source, {how} (goal: at most \
             1.5 ms); c-source {:+.1} µs ({:.2}x the Rust source)",
            (micros(python.total) - micros(rust.total)) / 1000.0,
            micros(c.total) - micros(rust.total),
            micros(c.total) / micros(rust.total)
        );
    }
}

/// RSS after start and 200 webhooks to `source`, in a home with `installed` plugins.
async fn serve_and_measure(home: &Path, source: &str) -> u64 {
    let (daemon, _) = start_daemon(home);
    let client = reqwest::Client::new();
    let body = request().body;
    for _ in 0..200 {
        let response = client
            .post(format!("{}/webhook/{source}", daemon.base))
            .header("X-API-Key", "bench-key")
            .header("X-Event-Type", "monitor.down")
            .body(body.clone())
            .send()
            .await
            .expect("sent");
        // 202 the first time; the same body again is a duplicate (200), parsed all the same.
        assert!(
            response.status().is_success(),
            "{source}: {}",
            response.status()
        );
    }
    rss_kib(daemon.child.id())
}

/// Writes `<home>/config.yml` owner-only, as mecha requires of a file that may hold the API key.
fn write_config(home: &Path, text: &str) {
    write_private(&home.join("config.yml"), text);
}

async fn daemon_memory(python: &Path) {
    let without = tempfile::tempdir().expect("home");
    write_config(without.path(), "api_key: bench-key\n");
    // Start once to fill the compile cache, then measure a warm start.
    drop(start_daemon(without.path()));
    let rss_without = serve_and_measure(without.path(), "generic").await;

    let with = tempfile::tempdir().expect("home");
    write_config(with.path(), "api_key: bench-key\n");
    let started = Instant::now();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mecha"))
        .args([
            "plugin",
            "install",
            "--yes",
            python.to_str().expect("utf-8"),
        ])
        .env("MECHA_HOME", with.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("mecha plugin install");
    assert!(status.success());
    let install = started.elapsed();
    drop(start_daemon(with.path()));
    let rss_with = serve_and_measure(with.path(), "python-source").await;
    println!(
        "mecha plugin install python-source.wasm: {:.1} s (compiles it, and the bundled plugins \
         into an empty cache)",
        install.as_secs_f64()
    );
    println!(
        "daemon RSS after 200 webhooks: {:.1} MiB with generic only, {:.1} MiB with \
         python-source serving them: +{:.1} MiB (goal: at most 40 MiB)",
        rss_without as f64 / 1024.0,
        rss_with as f64 / 1024.0,
        rss_with.saturating_sub(rss_without) as f64 / 1024.0
    );
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
