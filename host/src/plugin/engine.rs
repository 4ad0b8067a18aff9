//! The one wasm engine of the process and the clock that enforces plugin deadlines.
//!
//! Instances come from a pooling allocator: slots are reserved once and recycled with
//! copy-on-write memory, which makes a fresh instance per call cheap (tens of microseconds for a
//! Rust component; a CPython one takes milliseconds, which is why plugins keep a spare instance,
//! see [`super::spare`]).
//! When the machine refuses the address space the pool needs (e.g. under `ulimit -v`), the
//! engine falls back to allocating on demand and says so.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::Error;
use super::host::log::LogSink;
use crate::config::server::{
    DEFAULT_PLUGIN_INSTANCES, DEFAULT_PLUGIN_MEMORY_MIB, DEFAULT_PLUGIN_TABLE_ELEMENTS,
    PluginConfig, ServerConfig,
};

/// 10 ms: the granularity of plugin deadlines. A plugin stuck in a loop is checked this often,
/// and the ticker's cost (one atomic add per tick) stays invisible.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// 256 KiB of each pooled memory stays resident between calls: the plugins' 128 KiB stack, their
/// data and the heap a 30 KB payload needs. Measured (`cargo bench --bench ingest`): more only
/// adds memset time, less brings page faults back.
const KEEP_RESIDENT_BYTES: usize = 256 << 10;

/// 16 KiB of each pooled table (a few thousand function references).
const KEEP_RESIDENT_TABLE_BYTES: usize = 16 << 10;

/// 64 KiB of each pooled async stack, the part a plugin call actually uses.
const KEEP_RESIDENT_STACK_BYTES: usize = 64 << 10;

/// Memory slots in the pool per concurrent call: every component has one main memory; a few
/// from other toolchains have a second.
const POOL_MEMORIES_PER_CALL: u32 = 2;

/// Table slots in the pool per concurrent call.
const POOL_TABLES_PER_CALL: u32 = 8;

/// 16 spare instances in the whole runtime (see [`super::spare`]): one each for the plugins a
/// daemon serves (its sources, triggers, policies and responders that have been called), which
/// are rarely more. An idle spare costs a pool instance's address space and the few pages its
/// instantiation wrote; a plugin that finds no free slot instantiates per call as before.
pub const SPARE_INSTANCES: u32 = 16;

/// How instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    Pooling,
    OnDemand,
}

/// What the runtime is sized for.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Plugin calls that may run at once; the pool holds this many instances, and
    /// [`SPARE_INSTANCES`] more for the spares.
    pub concurrent_calls: u32,
    /// The largest linear memory any plugin may be granted, in bytes.
    pub max_memory_bytes: u64,
    /// The most core instances any plugin may create in one call.
    pub instances_per_call: u32,
    /// The most elements any plugin's table may hold.
    pub table_elements: u32,
}

impl RuntimeOptions {
    /// The default limits, with a pool for `concurrent_calls`.
    pub fn with_pool(concurrent_calls: u32) -> RuntimeOptions {
        RuntimeOptions {
            concurrent_calls,
            ..RuntimeOptions::from_config(&ServerConfig::default())
        }
    }

    /// What the daemon configured in `config.yml`: its pool, and memory for the largest
    /// plugin limit anywhere in it. `mecha plugin` commands use the same, so a plugin is
    /// checked on the engine it will run on.
    pub fn from_config(config: &ServerConfig) -> RuntimeOptions {
        let largest_mib = config
            .plugins
            .values()
            .filter_map(|plugin| plugin.memory_mib)
            .chain(
                config
                    .sources
                    .values()
                    .filter_map(|source| source.memory_mib),
            )
            .chain(
                config
                    .responders
                    .values()
                    .filter_map(|responder| responder.memory_mib),
            )
            .chain([DEFAULT_PLUGIN_MEMORY_MIB])
            .max()
            .unwrap_or(DEFAULT_PLUGIN_MEMORY_MIB);
        let largest = |limit: fn(&PluginConfig) -> Option<u32>, default: u32| {
            config
                .plugins
                .values()
                .filter_map(limit)
                .chain([default])
                .max()
                .unwrap_or(default)
        };
        RuntimeOptions {
            concurrent_calls: config.plugin_pool,
            max_memory_bytes: largest_mib.saturating_mul(1024 * 1024),
            instances_per_call: largest(|plugin| plugin.instances, DEFAULT_PLUGIN_INSTANCES),
            table_elements: largest(
                |plugin| plugin.table_elements,
                DEFAULT_PLUGIN_TABLE_ELEMENTS,
            ),
        }
    }
}

/// The engines plus their epoch ticker. Dropping it stops the ticker.
///
/// Policies run on an engine of their own that meters fuel: a policy must decide within a
/// fixed amount of work whatever the machine's load, and metering every source call for that
/// would slow the ingest path for nothing. Policies run once per result, so that engine
/// allocates on demand rather than keeping a pool.
pub struct Runtime {
    engine: Engine,
    fuel_engine: Engine,
    allocator: Allocator,
    ticker: Ticker,
    gate: CallGate,
    log_sink: Arc<LogSink>,
}

/// Admits at most as many concurrent plugin calls as the pool has instances for calls; the
/// others wait for a slot instead of failing to instantiate.
///
/// Spare instances (see [`super::spare`]) have slots of their own, [`SPARE_INSTANCES`] more in
/// the pool: a spare holds a pool instance and its memory while it waits, but never a call's
/// slot, so idle spares cannot make calls wait. A call that takes a spare enters the gate like
/// any other and releases the spare's slot.
#[derive(Clone)]
pub struct CallGate {
    permits: Arc<tokio::sync::Semaphore>,
    spares: Arc<tokio::sync::Semaphore>,
}

impl CallGate {
    fn new(slots: u32) -> CallGate {
        CallGate {
            permits: Arc::new(tokio::sync::Semaphore::new(slots.max(1) as usize)),
            spares: Arc::new(tokio::sync::Semaphore::new(SPARE_INSTANCES as usize)),
        }
    }

    /// Waits for a free slot; the slot is released when the permit is dropped.
    pub async fn enter(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// A slot for a spare instance, if one is free; a spare is never worth waiting for.
    pub fn spare(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.spares.clone().try_acquire_owned().ok()
    }
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Runtime, Error> {
        let (engine, allocator) = match Engine::new(&config(Some(options))) {
            Ok(engine) => (engine, Allocator::Pooling),
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    "the pooling allocator is not available here; plugin instances are allocated \
                     on demand, which makes each call slower"
                );
                let engine =
                    Engine::new(&config(None)).map_err(|err| Error::Engine(err.to_string()))?;
                (engine, Allocator::OnDemand)
            }
        };
        let mut fuel_config = config(None);
        fuel_config.consume_fuel(true);
        let fuel_engine =
            Engine::new(&fuel_config).map_err(|err| Error::Engine(err.to_string()))?;
        let ticker = Ticker::start(vec![engine.clone(), fuel_engine.clone()])?;
        Ok(Runtime {
            engine,
            fuel_engine,
            allocator,
            ticker,
            gate: CallGate::new(options.concurrent_calls),
            log_sink: Arc::default(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The fuel-metered engine policies run on.
    pub fn fuel_engine(&self) -> &Engine {
        &self.fuel_engine
    }

    pub fn gate(&self) -> &CallGate {
        &self.gate
    }

    /// Where every plugin's log lines and output go.
    pub fn log_sink(&self) -> &Arc<LogSink> {
        &self.log_sink
    }

    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// A short hex digest of everything that makes compiled code of this engine incompatible
    /// with another's (wasmtime version, target, settings): part of the compile cache's key.
    pub fn compatibility_key(&self) -> String {
        compatibility_key(&self.engine)
    }

    /// [`Runtime::compatibility_key`] of the fuel-metered engine.
    pub fn fuel_compatibility_key(&self) -> String {
        compatibility_key(&self.fuel_engine)
    }

    /// Whether the epoch ticker is running (it stops only when the runtime is dropped).
    pub fn ticking(&self) -> bool {
        !self.ticker.stop.load(Ordering::Relaxed)
    }
}

fn compatibility_key(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn config(pool: Option<RuntimeOptions>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    // `perf` cannot name code compiled at run time; with `MECHA_PERFMAP=1`, each compiled
    // plugin function is listed in `/tmp/perf-<pid>.map`, so a profile of the daemon or a
    // bench shows plugin time by function, as it does host time.
    if std::env::var("MECHA_PERFMAP").is_ok_and(|value| !matches!(value.as_str(), "" | "0")) {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if let Some(options) = pool {
        // Every instance alive at once: the calls', and the spares' waiting for theirs.
        let calls = options
            .concurrent_calls
            .max(1)
            .saturating_add(SPARE_INSTANCES);
        let mut pooling = PoolingAllocationConfig::default();
        // Core instances only count against their total; memories and tables reserve address
        // space per slot, so those totals are sized for the typical component (a Rust one has
        // one memory and a few tables, a CPython one a few of each), not for every call at its
        // limit. A call that finds the pool full fails with a message naming `plugin_pool`.
        pooling
            .total_component_instances(calls)
            .total_core_instances(calls.saturating_mul(options.instances_per_call))
            .total_memories(calls.saturating_mul(POOL_MEMORIES_PER_CALL))
            .total_tables(calls.saturating_mul(POOL_TABLES_PER_CALL))
            .table_elements(options.table_elements as usize)
            .max_memory_size(usize::try_from(options.max_memory_bytes).unwrap_or(usize::MAX))
            // Reusing a slot resets this much memory with memset instead of returning it to
            // the kernel: the next call then touches warm pages instead of faulting in zeroed
            // ones, which is most of what a fresh instance costs for a webhook-sized body.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            // Where the kernel can tell which pages a call wrote (Linux 6.7 and later), only
            // those are reset when a slot is reused, and the pages of the memory image a call
            // only read stay mapped for the next instance of the same plugin. Without it the
            // whole memory is dropped and faulted in again page by page on every call: most
            // of what a CPython component's call cost (the `languages` bench measured the
            // Python source's call at 1.8 ms before, 1.0 ms after), and a third of the
            // daemon's CPU per webhook under load (`ingest`: 330 µs before, 250 µs after).
            // Elsewhere it falls back to the reset described above.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
            .async_stack_keep_resident(KEEP_RESIDENT_STACK_BYTES);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    config
}

/// Advances the engines' epochs every [`EPOCH_TICK`]; calls compare it to their deadline.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Without the ticker no plugin call could be stopped, so failing to start it is fatal.
    fn start(engines: Vec<Engine>) -> Result<Ticker, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mecha-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(|err| {
                Error::Engine(format!(
                    "could not start the epoch ticker thread, without which plugin deadlines cannot fire: {err}"
                ))
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
