//! `GET /workers`: every worker with its state, its definition sanitized.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use std::sync::Arc;

use super::{ApiError, ApiState};
use crate::redact::Redactor;
use crate::store::Store;
use crate::worker::view::{WorkerView, views};

pub fn router() -> Router<ApiState> {
    Router::new().route("/workers", get(list))
}

async fn list(
    State(store): State<Arc<dyn Store>>,
    State(redactor): State<Redactor>,
) -> Result<Json<Vec<WorkerView>>, ApiError> {
    let workers = views(store.as_ref(), &redactor).await?;
    Ok(Json(workers))
}
