//! `GET /metrics`: Prometheus text.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use super::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    state
        .processor
        .metrics
        .set_queue_depth(state.processor.dispatcher.queue_depth() as u64);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.processor.metrics.render(),
    )
}
