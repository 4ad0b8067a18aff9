//! The daemon's HTTP API (axum). Handlers extract, call a function in `pipeline/` or `store/`,
//! and return; errors become `{"error": "..."}` through [`ApiError`].
//!
//! The router is a plain function of its state, so tests can drive it without a socket.

pub mod auth;
pub mod error;
pub mod events;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod tasks;
pub mod webhooks;
pub mod workers;

use std::sync::Arc;

use axum::Router;

use crate::config::secrets::Secret;
use crate::pipeline::operator::RoundRobin;
use crate::pipeline::process::Processor;
use crate::pipeline::sources::SourceTable;

pub use error::ApiError;

/// What the handlers share. Each field is an `Arc`, so cloning per request is cheap.
#[derive(Clone)]
pub struct ApiState {
    pub processor: Arc<Processor>,
    pub sources: Arc<SourceTable>,
    pub api_key: Option<Arc<Secret>>,
    pub max_body_bytes: usize,
    pub round_robin: Arc<RoundRobin>,
}

/// Every route of the daemon.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(webhooks::router())
        .merge(events::router())
        .merge(tasks::router())
        .merge(workers::router())
        .merge(logs::router())
        .merge(metrics::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .with_state(state)
}
