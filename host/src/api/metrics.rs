//! `GET /metrics`: Prometheus text.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use std::sync::Arc;

use super::ApiState;
use crate::metrics::Metrics;
use crate::pipeline::dispatch::Dispatcher;

pub fn router() -> Router<ApiState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(
    State(metrics): State<Arc<Metrics>>,
    State(dispatcher): State<Dispatcher>,
) -> impl IntoResponse {
    metrics.set_queue_depth(dispatcher.queue_depth() as u64);
    metrics.set_leases_held(dispatcher.in_flight() as u64);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}
