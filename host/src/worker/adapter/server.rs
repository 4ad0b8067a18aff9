//! The adapter's side of the worker contract: `GET /health` and `POST /task`.
//!
//! One task at a time (single flight, as the reference runtime): a second `POST /task` gets 429
//! `{"error":"worker busy"}`, which the daemon retries, and `/health` says `busy` meanwhile.
//! Callers get short, fixed error texts; why an upstream call failed goes to the log, redacted.
//!
//! Every route asks for the adapter's own key (`Authorization: Bearer <key>`), which the daemon
//! generated when it started the adapter and only its dispatcher knows. The port is on loopback,
//! but loopback is shared by every process of the machine and by every web page its browsers
//! open: without the key any of them could spend the operator's LLM key through the adapter.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::ServerTimeouts;
use super::connection::ConnectionActivity;
use super::upstream::Upstream;
use crate::config::secrets::Secret;
use crate::worker::body::MAX_BODY_BYTES;

#[derive(Clone)]
struct AdapterState {
    upstream: Arc<Upstream>,
    /// One permit: the single flight.
    flight: Arc<Semaphore>,
    /// How long a task's body may take to arrive once its head is in.
    read_timeout: Duration,
}

/// The body of `POST /task`; only the prompt is read.
#[derive(Deserialize)]
struct TaskBody {
    #[serde(default)]
    prompt: Option<String>,
}

/// The adapter's routes, behind `key`, with the write deadline and in-flight tracking around
/// every request.
pub(super) fn router(upstream: Upstream, timeouts: ServerTimeouts, key: Secret) -> Router {
    let state = AdapterState {
        upstream: Arc::new(upstream),
        flight: Arc::new(Semaphore::new(1)),
        read_timeout: timeouts.read,
    };
    Router::new()
        .route("/health", get(health))
        .route("/task", post(task))
        .layer(axum::middleware::from_fn_with_state(
            timeouts.write,
            bound_request,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(key),
            require_key,
        ))
        .with_state(state)
}

/// Answers 401 unless the request carries the adapter's key as a bearer token. The comparison
/// takes the same time wherever the first wrong byte is, so the key cannot be guessed a byte at
/// a time from how fast the answer comes.
async fn require_key(State(key): State<Arc<Secret>>, request: Request, next: Next) -> Response {
    let offered = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if bool::from(offered.ct_eq(key.expose().as_bytes())) {
        return next.run(request).await;
    }
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong adapter key; adapters take tasks from their mecha daemon only",
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Marks the request in flight on its connection (so the connection does not time out under it)
/// and answers 504 when the handler is not done by the write deadline.
async fn bound_request(State(write): State<Duration>, request: Request, next: Next) -> Response {
    let _in_flight = request
        .extensions()
        .get::<ConnectInfo<ConnectionActivity>>()
        .map(|ConnectInfo(activity)| activity.begin());
    match tokio::time::timeout(write, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(deadline = ?write, "adapter task cut off at the write deadline");
            error(StatusCode::GATEWAY_TIMEOUT, "task timed out")
        }
    }
}

async fn health(State(state): State<AdapterState>) -> Response {
    if state.flight.available_permits() == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    match state.upstream.check().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "adapter upstream check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response()
        }
    }
}

async fn task(State(state): State<AdapterState>, headers: HeaderMap, body: Body) -> Response {
    let Ok(_flight) = state.flight.clone().try_acquire_owned() else {
        return error(StatusCode::TOO_MANY_REQUESTS, "worker busy");
    };
    let bytes = match tokio::time::timeout(state.read_timeout, read_body(&headers, body)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyTooLarge)) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body is larger than the 10 MiB limit",
            );
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "request body arrived too slowly",
            );
        }
    };
    let Ok(request) = serde_json::from_slice::<TaskBody>(&bytes) else {
        return error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let Some(prompt) = request.prompt.filter(|prompt| !prompt.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "missing prompt");
    };
    let started = Instant::now();
    match state.upstream.chat(&prompt).await {
        Ok(completion) => Json(serde_json::json!({
            "output": completion.output,
            "metadata": {
                "model": state.upstream.model(),
                "input_tokens": completion.input_tokens,
                "output_tokens": completion.output_tokens,
                "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "exit_code": 0,
            },
        }))
        .into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "adapter task failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "task failed")
        }
    }
}

/// The request body was over [`MAX_BODY_BYTES`], declared or as it arrived.
#[derive(Debug, PartialEq)]
struct BodyTooLarge;

/// The request body under the cap. A body cut short by the client is read as what arrived; it
/// then fails as invalid JSON.
async fn read_body(headers: &HeaderMap, mut body: Body) -> Result<Vec<u8>, BodyTooLarge> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(BodyTooLarge);
    }
    let mut bytes = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_BODY_BYTES {
                return Err(BodyTooLarge);
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_as_it_streams() {
        let body = Body::from(vec![b'a'; MAX_BODY_BYTES + 1]);
        assert_eq!(read_body(&HeaderMap::new(), body).await, Err(BodyTooLarge));
        let body = Body::from(vec![b'a'; MAX_BODY_BYTES]);
        assert_eq!(
            read_body(&HeaderMap::new(), body).await.map(|b| b.len()),
            Ok(MAX_BODY_BYTES)
        );
    }
}
