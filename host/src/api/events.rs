//! `GET /events` and `GET /event/{id}`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::pipeline::operator::{self, OperatorError};
use crate::store::{EventFilter, EventId, EventRecord, EventState};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/events", get(list))
        .route("/event/{id}", get(show))
        .route("/events/{id}/replay", post(replay))
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    source: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<ApiState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<EventRecord>>, ApiError> {
    let event_state = query
        .state
        .as_deref()
        .filter(|text| !text.is_empty())
        .map(|text| {
            text.parse::<EventState>()
                .map_err(|err| ApiError::bad_request(format!("state: {err}")))
        })
        .transpose()?;
    let filter = EventFilter {
        state: event_state,
        source: query.source.filter(|source| !source.is_empty()),
        limit: query.limit.unwrap_or(100),
    };
    let events = state
        .processor
        .store
        .list(filter)
        .await
        .map_err(|err| ApiError::internal(&err))?;
    Ok(Json(events))
}

async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<EventRecord>, ApiError> {
    let id: EventId = id
        .parse()
        .map_err(|_| ApiError::not_found("event not found"))?;
    match state.processor.store.get(&id).await {
        Ok(Some(event)) => Ok(Json(event)),
        Ok(None) => Err(ApiError::not_found("event not found")),
        Err(err) => Err(ApiError::internal(&err)),
    }
}

/// Stores a copy of the event and processes it as if it had just arrived.
async fn replay(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id: EventId = id
        .parse()
        .map_err(|_| ApiError::not_found("event not found"))?;
    match operator::replay_event(&state.processor, &id).await {
        Ok(replayed) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "replay_of": id.to_string(), "event": replayed })),
        )),
        Err(OperatorError::EventNotFound) => Err(ApiError::not_found("event not found")),
        Err(err) => Err(ApiError::internal(&err)),
    }
}
