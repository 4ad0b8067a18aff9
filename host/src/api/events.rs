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
use crate::store::{
    DEFAULT_LIST_LIMIT, EventFilter, EventId, EventRecord, EventState, EventSummary, Store,
};

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

/// Which events a list shows, as `GET /events` and the dashboard's events page take it from the
/// query string. Empty values are no filter, as an HTML form sends its blank fields.
#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    /// An event state: `received`, `matched`, ...
    pub state: Option<String>,
    /// A source instance, as named in the webhook's path.
    pub source: Option<String>,
    /// An event type, exactly (`pull_request.opened`).
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// An actor, exactly.
    pub actor: Option<String>,
    /// A subject, exactly (`owner/repo`).
    pub subject: Option<String>,
    /// Text found in the type, actor, subject or delivery id; ASCII letters match in either
    /// case (others do on PostgreSQL, not on SQLite).
    pub q: Option<String>,
    /// Received at or after this: RFC 3339 (`2026-12-06T09:30:00Z`), or a date and time
    /// without a zone (`2026-12-06T09:30`, as a browser's date-time field sends it) in UTC.
    pub since: Option<String>,
    /// Received before this; written as `since`.
    pub until: Option<String>,
    /// At most this many, 1 to 1,000; 100 when absent.
    pub limit: Option<u32>,
}

impl EventQuery {
    /// The store's filter, or which field is wrong and why.
    pub fn filter(self) -> Result<EventFilter, ApiError> {
        let given = |value: Option<String>| value.filter(|value| !value.trim().is_empty());
        Ok(EventFilter {
            state: given(self.state)
                .map(|text| {
                    text.parse::<EventState>()
                        .map_err(|err| ApiError::bad_request(format!("state: {err}")))
                })
                .transpose()?,
            source: given(self.source),
            event_type: given(self.event_type),
            actor: given(self.actor),
            subject: given(self.subject),
            text: given(self.q),
            since: given(self.since)
                .map(|text| time("since", &text))
                .transpose()?,
            until: given(self.until)
                .map(|text| time("until", &text))
                .transpose()?,
            limit: self.limit.unwrap_or(DEFAULT_LIST_LIMIT),
        })
    }
}

/// Unix seconds of an RFC 3339 time, or of a zoneless date and time taken as UTC.
fn time(field: &str, text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    text.parse::<jiff::Timestamp>()
        .or_else(|_| {
            text.parse::<jiff::civil::DateTime>()
                .and_then(|civil| civil.to_zoned(jiff::tz::TimeZone::UTC))
                .map(|zoned| zoned.timestamp())
        })
        .map(|at| at.as_second())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{field}: expected a time like 2026-12-06T09:30:00Z or 2026-12-06T09:30 (UTC)"
            ))
        })
}

async fn list(
    State(store): State<Arc<dyn Store>>,
    Query(query): Query<EventQuery>,
) -> Result<Json<Vec<EventSummary>>, ApiError> {
    let filter = query.filter()?;
    let events = store.list_summaries(filter).await?;
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
    fn a_query_becomes_a_filter_and_a_bad_field_is_named() {
        let query = |pairs: &str| -> EventQuery {
            serde_json::from_value(serde_json::from_str(pairs).unwrap()).unwrap()
        };
        let filter = query(
            r#"{"type":"push","q":"acme","actor":"","since":"2026-12-06T09:30","until":"2026-12-06T10:00:00+01:00"}"#,
        )
        .filter()
        .unwrap();
        assert_eq!(filter.event_type.as_deref(), Some("push"));
        assert_eq!(filter.text.as_deref(), Some("acme"));
        assert_eq!(filter.actor, None, "a blank field is no filter");
        // 09:30 taken as UTC; 10:00 at +01:00 is 09:00 UTC.
        assert_eq!(filter.since, Some(1_796_549_400));
        assert_eq!(filter.until, Some(1_796_547_600));
        assert_eq!(filter.limit, DEFAULT_LIST_LIMIT);
        for (field, bad) in [
            ("since", "yesterday"),
            ("until", "2026-13-01"),
            ("state", "done"),
        ] {
            let error = query(&format!(r#"{{"{field}":"{bad}"}}"#))
                .filter()
                .unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST);
            assert!(format!("{error:?}").contains(field), "{error:?}");
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
