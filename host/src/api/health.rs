//! `GET /health`: whether the daemon is up.

use axum::routing::get;
use axum::{Json, Router};

use super::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new().route("/health", get(health))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
