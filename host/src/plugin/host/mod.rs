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

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::config::secrets::Secret;
use crate::plugin::bindings::source::{
    acknowledge as acknowledge_api, config as config_api, log as log_api, types,
    verify as verify_api,
};
use crate::plugin::limits::Limits;
use crate::plugin::world::World;

pub use limits::CallLimiter;

/// 16 KiB of stdout/stderr kept per call: enough for a traceback and some debugging output.
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
    /// Whether a host function has been called with this state. A spare instance's blank state
    /// must not have been (see `plugin::spare`): the call's own state replaces it, and whatever
    /// the plugin read from it would be stale.
    pub(crate) used: bool,
}

/// Builds a [`PluginState`] for one call of one plugin.
pub struct StateBuilder {
    log: Arc<log::PluginLog>,
    world: World,
    settings: Arc<BTreeMap<String, String>>,
    secrets: Arc<BTreeMap<String, Secret>>,
    grant: Arc<http::HttpGrant>,
    limits: Limits,
    clock: Option<std::time::SystemTime>,
    retry_after: http::RetryAfter,
    traceparent: Option<String>,
}

impl StateBuilder {
    pub fn new(log: Arc<log::PluginLog>, world: World, limits: Limits) -> StateBuilder {
        StateBuilder {
            log,
            world,
            settings: Arc::default(),
            secrets: Arc::default(),
            grant: Arc::new(http::HttpGrant::none()),
            limits,
            clock: None,
            retry_after: http::RetryAfter::default(),
            traceparent: None,
        }
    }

    /// The name of the plugin the state is for.
    pub fn plugin(&self) -> &Arc<str> {
        self.log.plugin()
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

    /// Where the gate keeps the `Retry-After` of a rate-limited answer, for the caller to read
    /// after the call.
    pub fn retry_after(mut self, retry_after: http::RetryAfter) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The W3C `traceparent` the gate adds to each outgoing request that has none, so the
    /// provider's side of the call joins the trace of the stage that made it.
    pub fn traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// The time the plugin's wall clock shows, instead of the system's: a delivery checked
    /// against a replay window can then be re-checked as of when it arrived. (A policy's clock
    /// is always [`POLICY_CLOCK`].)
    pub fn clock(mut self, at: Option<std::time::SystemTime>) -> Self {
        self.clock = at;
        self
    }

    pub fn build(self) -> PluginState {
        let stdout = output::Capture::new(CAPTURED_OUTPUT_BYTES);
        let stderr = output::Capture::new(CAPTURED_OUTPUT_BYTES);
        let mut wasi = WasiCtxBuilder::new();
        // The builder's defaults already give no environment, arguments, preopens or stdin;
        // sockets are refused outright rather than address by address.
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if self.world == World::Policy {
            wasi.wall_clock(FixedClock(POLICY_CLOCK))
                .monotonic_clock(StoppedClock)
                .secure_random(StdRng::seed_from_u64(POLICY_RANDOM_SEED))
                .insecure_random(StdRng::seed_from_u64(POLICY_RANDOM_SEED))
                .insecure_random_seed(u128::from(POLICY_RANDOM_SEED));
        } else if let Some(at) = self.clock {
            wasi.wall_clock(FixedClock(at));
        }
        let grant = if self.world.offers_http() {
            self.grant
        } else {
            Arc::new(http::HttpGrant::none())
        };
        PluginState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            stdout,
            stderr,
            http: http::HttpContext::new(
                self.log.plugin().clone(),
                grant,
                self.retry_after,
                self.traceparent
                    .and_then(|value| ::http::HeaderValue::from_str(&value).ok()),
            ),
            log: log::LogContext::new(self.log),
            config: config::ConfigContext::new(self.settings),
            verify: verify::VerifyContext::new(self.secrets),
            acknowledge: acknowledge::AcknowledgeContext::default(),
            limiter: CallLimiter::new(&self.limits),
            used: false,
        }
    }
}

/// What a policy's wall clock always shows: the Unix epoch, 1970-01-01T00:00:00Z. A policy that
/// reads the time gets this, so its decision cannot depend on when it ran.
pub const POLICY_CLOCK: std::time::SystemTime = std::time::UNIX_EPOCH;

/// The seed of a policy's random numbers ("mecha" in ASCII): the same on every call, for the
/// same reason.
pub const POLICY_RANDOM_SEED: u64 = 0x006d_6563_6861;

/// A monotonic clock that never advances, for policies.
struct StoppedClock;

impl wasmtime_wasi::HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
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
    /// Writes what the plugin printed during the call to its log.
    pub fn flush_output(&self) {
        let log = self.log.plugin_log();
        log.output(log::Stream::Stdout, &self.stdout.text());
        log.output(log::Stream::Stderr, &self.stderr.text());
    }

    /// What the plugin wrote to stdout and stderr during the call, lossily decoded.
    pub fn captured_output(&self) -> String {
        let mut text = self.stdout.text();
        text.push_str(&self.stderr.text());
        text.trim().to_owned()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.used = true;
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for PluginState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        self.used = true;
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http.ctx,
            table: &mut self.table,
            hooks: &mut self.http.hooks,
        }
    }
}

impl types::Host for PluginState {}

/// A linker with all of WASI 0.2, outgoing HTTP and the mecha host interfaces; what a component
/// may import of them is checked per world before linking (see [`crate::plugin::world`]).
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    // The mecha interfaces one by one: the worlds' own `add_to_linker` would also link their
    // `wasi:http` import, which wasmtime-wasi-http has linked above.
    types::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, used)?;
    log_api::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, used)?;
    config_api::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, used)?;
    verify_api::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, used)?;
    acknowledge_api::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, used)?;
    Ok(linker)
}

/// The state a mecha interface's host function works on, marked as used (as `WasiView::ctx`
/// marks it for WASI's).
fn used(state: &mut PluginState) -> &mut PluginState {
    state.used = true;
    state
}
