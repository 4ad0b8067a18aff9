//! `GET /workers`: every worker with its state, its definition sanitized.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, ApiState};
use crate::worker::view::{WorkerView, views};

pub fn router() -> Router<ApiState> {
    Router::new().route("/workers", get(list))
}

async fn list(State(state): State<ApiState>) -> Result<Json<Vec<WorkerView>>, ApiError> {
    let processor = &state.processor;
    let workers = views(processor.store.as_ref(), &processor.redactor)
        .await
        .map_err(|err| ApiError::internal(&err))?;
    Ok(Json(workers))
}
