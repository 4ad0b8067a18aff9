//! What the host gives a plugin during one call: the store data, built fresh per call.
//!
//! Each capability is a small context in its own file ([`log`], [`config`], [`verify`],
//! [`acknowledge`]) with the
//! `Host` implementation of its WIT interface; [`PluginState`] holds one of each plus the WASI
//! context and the call's limits. [`StateBuilder`] grants what the operator configured (settings,
//! and only the secrets the plugin declared); no plugin gets environment variables, arguments,
//! directories or network. Which imports a world may use at all is decided once, at load, by
//! [`crate::plugin::world`].

pub mod acknowledge;
pub mod config;
pub mod http;
pub mod limits;
pub mod log;
pub mod output;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::config::secrets::Secret;
use crate::plugin::bindings::source::{Source, types};

pub use limits::CallLimiter;

/// 16 KiB of stdout/stderr kept per call: enough for a panic message and some debugging output.
const CAPTURED_OUTPUT_BYTES: usize = 16 * 1024;

/// Store data for one plugin call; built fresh per call so nothing leaks between events.
pub struct PluginState {
    table: ResourceTable,
    /// No env, no args, no dirs, no network; output is captured to explain a crash.
    wasi: WasiCtx,
    stdout: output::Capture,
    stderr: output::Capture,
    pub(crate) log: log::LogContext,
    pub(crate) config: config::ConfigContext,
    pub(crate) verify: verify::VerifyContext,
    pub(crate) acknowledge: acknowledge::AcknowledgeContext,
    pub(crate) limiter: CallLimiter,
    /// Outgoing HTTP; reachable only by worlds that may import `wasi:http`, and only to the
    /// origins granted.
    http: http::HttpContext,
}

/// Builds a [`PluginState`] for one call of one plugin.
pub struct StateBuilder {
    plugin: Arc<str>,
    settings: Arc<BTreeMap<String, String>>,
    secrets: Arc<BTreeMap<String, Secret>>,
    grant: Arc<http::HttpGrant>,
    memory_bytes: u64,
    clock: Option<std::time::SystemTime>,
}

impl StateBuilder {
    pub fn new(plugin: Arc<str>, memory_bytes: u64) -> StateBuilder {
        StateBuilder {
            plugin,
            settings: Arc::default(),
            secrets: Arc::default(),
            grant: Arc::new(http::HttpGrant::none()),
            memory_bytes,
            clock: None,
        }
    }

    /// The operator's settings, readable through `config`.
    pub fn settings(mut self, settings: Arc<BTreeMap<String, String>>) -> Self {
        self.settings = settings;
        self
    }

    /// The secrets `verify` may check against: only those the plugin declared and the operator
    /// configured.
    pub fn secrets(mut self, secrets: Arc<BTreeMap<String, Secret>>) -> Self {
        self.secrets = secrets;
        self
    }

    /// The origins the plugin may call over `wasi:http`, and the credentials added to them.
    pub fn http(mut self, grant: Arc<http::HttpGrant>) -> Self {
        self.grant = grant;
        self
    }

    /// The time the plugin's wall clock shows, instead of the system's: a delivery checked
    /// against a replay window can then be re-checked as of when it arrived.
    pub fn clock(mut self, at: Option<std::time::SystemTime>) -> Self {
        self.clock = at;
        self
    }

    pub fn build(self) -> PluginState {
        let stdout = output::Capture::new(CAPTURED_OUTPUT_BYTES);
        let stderr = output::Capture::new(CAPTURED_OUTPUT_BYTES);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        if let Some(at) = self.clock {
            wasi.wall_clock(FixedClock(at));
        }
        let wasi = wasi.build();
        PluginState {
            table: ResourceTable::new(),
            wasi,
            stdout,
            stderr,
            log: log::LogContext::new(self.plugin.clone()),
            config: config::ConfigContext::new(self.settings),
            verify: verify::VerifyContext::new(self.secrets),
            acknowledge: acknowledge::AcknowledgeContext::default(),
            limiter: CallLimiter::new(self.memory_bytes),
            http: http::HttpContext::new(self.plugin, self.grant),
        }
    }
}

/// A wall clock stopped at one instant.
struct FixedClock(std::time::SystemTime);

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn now(&self) -> std::time::Duration {
        self.0
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }
}

impl PluginState {
    /// What the plugin wrote to stdout and stderr during the call, lossily decoded.
    pub fn captured_output(&self) -> String {
        let mut text = self.stdout.text();
        text.push_str(&self.stderr.text());
        text.trim().to_owned()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for PluginState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http.ctx,
            table: &mut self.table,
            hooks: &mut self.http.hooks,
        }
    }
}

impl types::Host for PluginState {}

/// A linker with WASI (checked per world before linking, see [`crate::plugin::world`]) and the
/// mecha host interfaces.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Source::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |state| state)?;
    Ok(linker)
}
