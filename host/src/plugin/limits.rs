//! Per-plugin limits and the one place that runs a call under them.
//!
//! Every call gets a pristine store with a memory cap and a deadline. The deadline is enforced by
//! epochs: the call yields to the async runtime at every tick (so a spinning plugin never
//! starves other requests) and is trapped once its time is up; a tokio timeout backs that up.
//! The store is made fresh for the call or, instantiated ahead, taken from the plugin's spare
//! (see [`super::spare`]); either way the deadline starts with the call.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, UpdateDeadline};

use super::CallError;
use super::engine::CallGate;
use super::host::PluginState;
use super::host::limits::{MAX_MEMORIES, MAX_TABLES};
use super::host::log::CallFigures;
use crate::config::server::{
    DEFAULT_PLUGIN_INSTANCES, DEFAULT_PLUGIN_MEMORY_MIB, DEFAULT_PLUGIN_TABLE_ELEMENTS,
    DEFAULT_PLUGIN_TIMEOUT, PluginConfig,
};

/// What one call of a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_mib: u64,
    /// Core wasm instances the call may create.
    pub instances: u32,
    /// Elements any one wasm table may hold.
    pub table_elements: u32,
    /// Units of work the call may do, on an engine that meters fuel (policies); `None` on the
    /// others.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_PLUGIN_TIMEOUT,
            memory_mib: DEFAULT_PLUGIN_MEMORY_MIB,
            instances: DEFAULT_PLUGIN_INSTANCES,
            table_elements: DEFAULT_PLUGIN_TABLE_ELEMENTS,
            fuel: None,
        }
    }
}

impl Limits {
    /// The operator's overrides on top of the defaults.
    pub fn from_config(config: &PluginConfig) -> Limits {
        let defaults = Limits::default();
        Limits {
            timeout: config
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.timeout),
            memory_mib: config.memory_mib.unwrap_or(defaults.memory_mib),
            instances: config.instances.unwrap_or(defaults.instances),
            table_elements: config.table_elements.unwrap_or(defaults.table_elements),
            fuel: None,
        }
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib.saturating_mul(1024 * 1024)
    }
}

/// A store holding `state` under `limits`: the memory cap and the instance and table limits,
/// which already apply while the component is instantiated, and the fuel on the metered engine.
/// No deadline yet: [`arm_deadline`] starts it.
pub fn store(
    engine: &Engine,
    plugin: &Arc<str>,
    limits: Limits,
    state: PluginState,
) -> Result<Store<PluginState>, CallError> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    if let Some(fuel) = limits.fuel
        && let Err(err) = store.set_fuel(fuel)
    {
        return Err(CallError::Trap {
            plugin: plugin.to_string(),
            reason: format!("could not meter its fuel: {err}"),
        });
    }
    Ok(store)
}

/// Starts the store's deadline of `timeout` now: wasm in it yields to the async runtime at
/// every epoch tick (so a spinning plugin never starves other requests) and traps once its time
/// is up. Arming it again restarts it. Returns when it started.
pub fn arm_deadline(store: &mut Store<PluginState>, timeout: Duration) -> Instant {
    let started = Instant::now();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut context| {
        if started.elapsed() >= timeout {
            context.data_mut().limiter.deadline_exceeded = true;
            return Err(wasmtime::Error::msg("deadline exceeded"));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    started
}

/// How long to wait for wasm under a deadline of `timeout` before giving up on it: the epoch
/// deadline fires first; this only catches wasm stuck in the host.
pub fn backstop(timeout: Duration) -> Duration {
    timeout + Duration::from_secs(1)
}

/// Runs one call under `limits` once the gate admits it.
///
/// `prepare` then gives the call's store, holding its state, and what `call` needs besides (a
/// spare's instance, or nothing when `call` instantiates the component itself); the deadline
/// starts right after. `call` gets both and returns the plugin's answer; any trap, deadline or
/// memory failure becomes a [`CallError`] naming the plugin. The final state is handed back
/// with the answer so the caller can read what the call recorded (e.g. whether it verified a
/// signature).
pub async fn run<R, P, F>(
    gate: &CallGate,
    plugin: &Arc<str>,
    limits: Limits,
    prepare: impl FnOnce() -> Result<(Store<PluginState>, P), CallError>,
    call: impl FnOnce(Store<PluginState>, P) -> F,
) -> Result<(R, PluginState), CallError>
where
    F: Future<Output = (wasmtime::Result<R>, Store<PluginState>)>,
{
    let _slot = gate.enter().await;
    let (mut store, prepared) = prepare()?;
    let started = arm_deadline(&mut store, limits.timeout);
    let limit_ms = u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX);
    let (result, store) =
        match tokio::time::timeout(backstop(limits.timeout), call(store, prepared)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                return Err(CallError::Timeout {
                    plugin: plugin.to_string(),
                    limit_ms,
                });
            }
        };
    let fuel_used = limits
        .fuel
        .and_then(|fuel| store.get_fuel().ok().map(|left| fuel.saturating_sub(left)));
    let state = store.into_data();
    state.flush_output();
    let instantiate = state.limiter.instantiated_in.unwrap_or_default();
    state.log.plugin_log().record(CallFigures {
        instantiate_us: micros(instantiate),
        call_us: micros(started.elapsed().saturating_sub(instantiate)),
        peak_memory_bytes: state.limiter.used_bytes,
        fuel_used,
        spare: state.limiter.on_spare,
    });
    match result {
        Ok(answer) => Ok((answer, state)),
        Err(_) if state.limiter.deadline_exceeded => Err(CallError::Timeout {
            plugin: plugin.to_string(),
            limit_ms,
        }),
        Err(_) if state.limiter.memory_exceeded => Err(CallError::Memory {
            plugin: plugin.to_string(),
            limit_mib: limits.memory_mib,
        }),
        Err(err) if err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel) => {
            Err(CallError::Fuel {
                plugin: plugin.to_string(),
                fuel: limits.fuel.unwrap_or_default(),
            })
        }
        Err(err) if let Some(limit) = host_limit(&err, &state, limits, plugin) => {
            Err(CallError::Limit {
                plugin: plugin.to_string(),
                limit,
            })
        }
        Err(err) => {
            tracing::debug!(plugin = %plugin, error = ?err, "plugin call trapped");
            Err(CallError::Trap {
                plugin: plugin.to_string(),
                reason: trap_reason(&err, &state.captured_output()),
            })
        }
    }
}

/// Which host limit (other than time and memory) stopped the call, said with the setting that
/// raises it; `None` when the call failed for another reason.
///
/// wasmtime reports instance, memory and table counts only in its error text, so the text is
/// matched here, in one place.
fn host_limit(
    err: &wasmtime::Error,
    state: &PluginState,
    limits: Limits,
    plugin: &str,
) -> Option<String> {
    if let Some(size) = state.limiter.table_refused {
        return Some(format!(
            "a table of {size} elements is more than its {} (plugins.{plugin}.table_elements \
             raises it)",
            limits.table_elements
        ));
    }
    let text = format!("{err:#}");
    if text.contains("instance count too high") {
        return Some(format!(
            "it needs more than {} core wasm instances per call (plugins.{plugin}.instances \
             raises it)",
            limits.instances
        ));
    }
    if text.contains("memory count too high") {
        return Some(format!(
            "it needs more than {MAX_MEMORIES} linear memories per call, which no setting raises"
        ));
    }
    if text.contains("table count too high") {
        return Some(format!(
            "it needs more than {MAX_TABLES} tables per call, which no setting raises"
        ));
    }
    if text.contains("maximum concurrent") {
        return Some(format!(
            "the daemon's instance pool is full ({}); raise plugin_pool in config.yml",
            err.root_cause()
        ));
    }
    None
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// 500 characters of what a crashed plugin printed: enough for a panic message, and short
/// enough for an HTTP error body and a log line.
const MAX_PRINTED_CHARS: usize = 500;

/// The trap itself (not the wasm backtrace, which goes to the debug log) and what the plugin
/// printed before it, on one line.
fn trap_reason(err: &wasmtime::Error, printed: &str) -> String {
    let trap = err.root_cause().to_string();
    let printed: Vec<&str> = printed
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    if printed.is_empty() {
        return trap;
    }
    let printed: String = printed.join(" ").chars().take(MAX_PRINTED_CHARS).collect();
    format!("{trap}; it printed: {printed}")
}

#[cfg(test)]
mod tests {
    use super::trap_reason;

    #[test]
    fn trap_reason_is_one_line_without_the_backtrace_hint() {
        let err = wasmtime::Error::msg("wasm trap: unreachable")
            .context("error while executing at wasm backtrace:\n 0: 0x1 - x");
        let reason = trap_reason(
            &err,
            "thread '<unnamed>' panicked at src/lib.rs:1:1:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable",
        );
        assert_eq!(
            reason,
            "wasm trap: unreachable; it printed: thread '<unnamed>' panicked at src/lib.rs:1:1: boom"
        );
        assert_eq!(trap_reason(&err, ""), "wasm trap: unreachable");
        assert_eq!(
            trap_reason(&err, &"x".repeat(2000)).len(),
            "wasm trap: unreachable; it printed: ".len() + 500
        );
    }
}
