//! `POST /webhook/{source}` (and `GET`, for providers that verify an endpoint with a handshake).
//!
//! The handler reads the body under the limits of [`super::body`], hands it to [`crate::pipeline::ingest`], and
//! turns the result into the provider-facing reply: 202 with the stored event, 200
//! `{"status":"duplicate"}` for a redelivery, the plugin's own reply for a handshake.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiError, ApiState, body};
use crate::config::secrets::Secret;
use crate::pipeline::ingest::{IngestError, Ingested, ingest};
use crate::pipeline::sources::SourceSlot;
use crate::plugin::bindings::source::types;
use crate::store::{EventId, EventRecord, EventState};

pub fn router() -> Router<ApiState> {
    Router::new().route("/webhook/{source}", post(receive).get(receive))
}

async fn receive(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, ApiError> {
    let source = match state.sources.get(&name) {
        Some(SourceSlot::Ready(source)) => source.clone(),
        Some(SourceSlot::Disabled(reason)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                reason.clone(),
            ));
        }
        None => return Err(ApiError::not_found(format!("unknown source: {name}"))),
    };
    // Held until the plugin is done with the body, so the memory budget covers it throughout.
    let (body, _budget_share) = body::read(&state.bodies, &headers, request_body)
        .await?
        .into_parts();
    let request = types::Request {
        method: method.to_string(),
        query: query.unwrap_or_default(),
        // The daemon's own API key is for the daemon: it never enters a plugin.
        headers: headers
            .iter()
            .filter(|(name, value)| {
                !carries_api_key(&state.api_key, name.as_str(), value.as_bytes())
            })
            .map(|(name, value)| types::Header {
                name: name.as_str().to_owned(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect(),
        body,
    };
    let processor = &state.processor;
    match ingest(
        &source,
        processor.store.as_ref(),
        &processor.metrics,
        &processor.tracer,
        request,
    )
    .await
    {
        Ok(Ingested::Stored {
            stored,
            duplicates,
            acknowledgement,
        }) => {
            // The answer is made before the events go on, so their bodies are not copied.
            let response = match acknowledgement {
                Some(reply) => reply_response(reply),
                None => stored_response(&stored, &duplicates),
            };
            processor.spawn(stored);
            Ok(response)
        }
        Ok(Ingested::Reply(reply)) => Ok(reply_response(reply)),
        Err(IngestError::Unauthorized(message)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "webhook validation failed: {}",
                processor.redactor.redact(&message)
            ),
        )),
        Err(IngestError::BadRequest(message)) => {
            Err(ApiError::bad_request(processor.redactor.redact(&message)))
        }
        Err(
            err @ (IngestError::Plugin { .. } | IngestError::Call(_) | IngestError::Unverified(_)),
        ) => {
            // A plugin's own words (or its panic message) may echo what it was sent.
            let message = processor.redactor.redact(&err.to_string()).into_owned();
            tracing::warn!(source = %name, error = %message, "webhook failed in its source plugin");
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message))
        }
        Err(err @ IngestError::Store(_)) => Err(ApiError::internal(&err)),
    }
}

/// Whether a header carries the daemon's API key (`X-API-Key: <key>` or
/// `Authorization: Bearer <key>`); other values of those headers belong to the provider.
fn carries_api_key(api_key: &Secret, name: &str, value: &[u8]) -> bool {
    let key = api_key.expose().as_bytes();
    if name.eq_ignore_ascii_case("x-api-key") {
        value == key
    } else if name.eq_ignore_ascii_case("authorization") {
        value.strip_prefix(b"Bearer ") == Some(key)
    } else {
        false
    }
}

fn stored_response(stored: &[EventRecord], duplicates: &[EventId]) -> Response {
    match (stored.len(), duplicates.first()) {
        (0, Some(existing)) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "duplicate", "id": existing.to_string() })),
        )
            .into_response(),
        (0, None) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ignored" })),
        )
            .into_response(),
        (1, _) => (StatusCode::ACCEPTED, Json(Acknowledged::of(&stored[0]))).into_response(),
        _ => {
            let events: Vec<Acknowledged<'_>> = stored.iter().map(Acknowledged::of).collect();
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({ "events": events })),
            )
                .into_response()
        }
    }
}

/// What a 202 says of a stored event: what it is and where it stands, to find it again
/// (`GET /event/{id}`), but not its body. The sender has the body, and writing it back,
/// JSON-escaped, into every answer cost as much as storing it.
#[derive(Serialize)]
struct Acknowledged<'a> {
    id: &'a EventId,
    delivery_id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    actor: &'a str,
    subject: &'a str,
    attrs: &'a serde_json::Map<String, serde_json::Value>,
    /// The size of the body as received, in bytes.
    raw_bytes: usize,
    state: EventState,
}

impl<'a> Acknowledged<'a> {
    fn of(event: &'a EventRecord) -> Acknowledged<'a> {
        Acknowledged {
            id: &event.id,
            delivery_id: &event.delivery_id,
            source: &event.source,
            event_type: &event.event_type,
            actor: &event.actor,
            subject: &event.subject,
            attrs: &event.attrs,
            raw_bytes: event.raw.len(),
            state: event.state,
        }
    }
}

fn reply_response(reply: types::Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, reply.body).into_response();
    for header in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(header.name.as_str()),
            HeaderValue::try_from(header.value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_daemons_own_key_is_kept_from_plugins() {
        let key = Secret::new("the-key");
        assert!(carries_api_key(&key, "X-API-Key", b"the-key"));
        assert!(carries_api_key(&key, "authorization", b"Bearer the-key"));
        assert!(!carries_api_key(
            &key,
            "authorization",
            b"Bearer provider-token"
        ));
        assert!(!carries_api_key(&key, "x-api-key", b"provider-key"));
        assert!(!carries_api_key(&key, "x-hub-signature-256", b"the-key"));
    }
}
