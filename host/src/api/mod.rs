//! The daemon's HTTP API (axum). Handlers extract, call a function in `pipeline/` or `store/`,
//! and return; errors become `{"error": "..."}` through [`ApiError`].
//!
//! The router is a plain function of its state, so tests can drive it without a socket.

pub mod auth;
pub mod body;
pub mod error;
pub mod events;
pub mod health;
pub mod json;
pub mod logs;
pub mod metrics;
pub mod origin;
pub mod plugins;
pub mod server;
pub mod tasks;
pub mod ui;
pub mod webhooks;
pub mod workers;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;

use crate::config::secrets::Secret;
use crate::metrics::Metrics;
use crate::pipeline::dispatch::Dispatcher;
use crate::pipeline::operator::RoundRobin;
use crate::pipeline::process::Processor;
use crate::pipeline::sources::SourceTable;
use crate::plugin::LivePlugins;
use crate::plugin::install::Installed;
use crate::redact::Redactor;
use crate::store::Store;
use crate::worker::runtime::Runtimes;

pub use body::BodyLimits;
pub use error::ApiError;
pub use origin::AllowedHosts;

/// What the handlers share. Each field is an `Arc`, so cloning per request is cheap.
#[derive(Clone)]
pub struct ApiState {
    pub processor: Arc<Processor>,
    pub sources: Arc<SourceTable>,
    /// The key the API and unverified webhooks require; the daemon always has one (configured
    /// or generated, see [`crate::config::api_key`]).
    pub api_key: Arc<Secret>,
    /// Size cap, deadline and shared memory budget for request bodies.
    pub bodies: BodyLimits,
    /// The host names the API answers to.
    pub hosts: Arc<AllowedHosts>,
    pub round_robin: Arc<RoundRobin>,
    /// The plugins running now, for `GET /plugins`.
    pub plugins: Arc<LivePlugins>,
    /// The dashboard's sessions and one-time links.
    pub ui: Arc<ui::session::Sessions>,
    /// What starts and stops each kind of worker, for the dashboard's buttons.
    pub runtimes: Arc<Runtimes>,
    /// The installed plugins' lock, for who signed each.
    pub installed: Installed,
}

/// The parts of [`ApiState`] a handler may take on its own (`State<Arc<dyn Store>>`,
/// `State<Redactor>`, …), so that each handler names what it uses instead of reaching through
/// the whole state.
macro_rules! part_of_state {
    ($($part:ty => |$state:ident| $get:expr;)*) => {
        $(impl FromRef<ApiState> for $part {
            fn from_ref($state: &ApiState) -> $part {
                $get
            }
        })*
    };
}

part_of_state! {
    Arc<Processor> => |state| state.processor.clone();
    Arc<dyn Store> => |state| state.processor.store.clone();
    Redactor => |state| state.processor.redactor.clone();
    Arc<Metrics> => |state| state.processor.metrics.clone();
    Dispatcher => |state| state.processor.dispatcher.clone();
    Arc<RoundRobin> => |state| state.round_robin.clone();
}

/// Every route of the daemon.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(webhooks::router())
        .merge(events::router())
        .merge(tasks::router())
        .merge(workers::router())
        .merge(plugins::router())
        .merge(logs::router())
        .merge(metrics::router())
        .merge(ui::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        // Outermost: a page of another site is refused before anything else is looked at.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            origin::refuse_foreign,
        ))
        .with_state(state)
}
