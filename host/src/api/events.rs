//! `GET /events`, `GET /event/{id}` and `POST /events/{id}/replay`.
//!
//! Lists carry no bodies (each may be up to `max_body_bytes`, and a page up to 1,000 events):
//! only each body's size, in `raw_bytes`. One event shows its body, cut at [`SHOWN_RAW_BYTES`]
//! with `raw_truncated` saying so; `mecha events show ID --json` prints it whole from the
//! database.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::pipeline::operator::{self, OperatorError};
use crate::pipeline::process::Processor;
use crate::store::{EventFilter, EventId, EventRecord, EventState, EventSummary, Store};

/// 1 MiB of a body on `GET /event/{id}`: enough to read any real webhook, while a
/// maximum-size body (which JSON escaping can inflate several times) stays out of responses.
pub const SHOWN_RAW_BYTES: usize = 1024 * 1024;

/// One event as `GET /event/{id}` shows it: the stored record with its body (as text, invalid
/// UTF-8 replaced) cut at [`SHOWN_RAW_BYTES`].
#[derive(serde::Serialize)]
struct ShownEvent {
    #[serde(flatten)]
    event: EventRecord,
    /// The size of the whole body, in bytes.
    raw_bytes: u64,
    /// Whether `raw` is only the start of the body.
    raw_truncated: bool,
}

impl ShownEvent {
    fn new(mut event: EventRecord) -> ShownEvent {
        let raw_bytes = event.raw.len() as u64;
        let raw_truncated = event.raw.len() > SHOWN_RAW_BYTES;
        if raw_truncated {
            // Cut on a character boundary, so the text shown is the body's own.
            let start = &event.raw[..event.raw.len().min(SHOWN_RAW_BYTES + 3)];
            let text = String::from_utf8_lossy(start);
            let end = text.floor_char_boundary(SHOWN_RAW_BYTES);
            event.raw = text.as_bytes()[..end].to_vec();
        }
        ShownEvent {
            event,
            raw_bytes,
            raw_truncated,
        }
    }
}

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
    State(store): State<Arc<dyn Store>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<EventSummary>>, ApiError> {
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
    let events = store
        .list_summaries(filter)
        .await
        .map_err(|err| ApiError::internal(&err))?;
    Ok(Json(events))
}

async fn show(
    State(store): State<Arc<dyn Store>>,
    Path(id): Path<String>,
) -> Result<Json<ShownEvent>, ApiError> {
    let id: EventId = id
        .parse()
        .map_err(|_| ApiError::not_found("event not found"))?;
    match store.get(&id).await {
        Ok(Some(event)) => Ok(Json(ShownEvent::new(event))),
        Ok(None) => Err(ApiError::not_found("event not found")),
        Err(err) => Err(ApiError::internal(&err)),
    }
}

/// Stores a copy of the event and processes it as if it had just arrived.
async fn replay(
    State(processor): State<Arc<Processor>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id: EventId = id
        .parse()
        .map_err(|_| ApiError::not_found("event not found"))?;
    match operator::replay_event(&processor, &id).await {
        Ok(replayed) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "replay_of": id.to_string(), "event": replayed })),
        )),
        Err(OperatorError::EventNotFound) => Err(ApiError::not_found("event not found")),
        Err(err) => Err(ApiError::internal(&err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(raw: Vec<u8>) -> EventRecord {
        EventRecord {
            id: EventId::generate().unwrap(),
            delivery_id: String::new(),
            dedup_key: String::new(),
            source: "generic".into(),
            event_type: "t".into(),
            actor: String::new(),
            subject: String::new(),
            attrs: serde_json::Map::new(),
            raw,
            state: EventState::Received,
            worker_name: String::new(),
            task_id: String::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_shown_body_is_cut_on_a_character_boundary_and_says_so() {
        let small = serde_json::to_value(ShownEvent::new(event(b"{}".to_vec()))).unwrap();
        assert_eq!(
            (&small["raw"], &small["raw_bytes"], &small["raw_truncated"]),
            (&"{}".into(), &2.into(), &false.into())
        );
        // Two-byte characters straddling the cut.
        let body = "é".repeat(SHOWN_RAW_BYTES).into_bytes();
        let shown = serde_json::to_value(ShownEvent::new(event(body.clone()))).unwrap();
        let raw = shown["raw"].as_str().unwrap();
        assert_eq!(raw.len(), SHOWN_RAW_BYTES);
        assert!(raw.chars().all(|c| c == 'é'));
        assert_eq!(shown["raw_bytes"], body.len() as u64);
        assert_eq!(shown["raw_truncated"], true);
        assert_eq!(shown["source"], "generic", "the record's fields are kept");
    }
}
