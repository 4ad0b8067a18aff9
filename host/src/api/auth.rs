//! API-key authentication, compared in constant time.
//!
//! `/health` and `/metrics` are always open. Webhooks of sources that verify their own signatures are open too
//! (the source proves per request that it verified). The dashboard's pages check a session of
//! their own, begun with the same key (`ui::session`). Everything else needs
//! `Authorization: Bearer <key>` or `X-API-Key: <key>`: the daemon always has a key, configured
//! or generated at its first start, because "only on loopback" still means every local user
//! and every web page the operator opens.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};
use crate::pipeline::sources::SourceSlot;

pub async fn require_api_key(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    if is_open(&state, request.uri().path())
        || presented_key_matches(&request, state.api_key.expose())
    {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized: send the API key as Authorization: Bearer <key> or X-API-Key; it is \
         api_key in config.yml, or else the file api_key in the mecha directory",
    )
    .into_response()
}

fn is_open(state: &ApiState, path: &str) -> bool {
    // The dashboard's pages ask for their own session (`ui::session`).
    if path == "/health" || path == "/metrics" || super::ui::is_page(path) {
        return true;
    }
    let Some(encoded) = path.strip_prefix("/webhook/") else {
        return false;
    };
    // The route extracts the source's name percent-decoded (`/webhook/gen%65ric` is `generic`),
    // so the name is decoded the same way before deciding; one that does not decode needs the key.
    let Ok(name) = percent_encoding::percent_decode_str(encoded).decode_utf8() else {
        return false;
    };
    // Only a source that accepts what it is sent without checking needs the key; unknown
    // and unconfigured ones answer 404 and 503 (saying what to set) without reading a body.
    !matches!(
        state.sources.get(&name),
        Some(SourceSlot::Ready(source)) if !source.verifies
    )
}

fn presented_key_matches(request: &Request, key: &str) -> bool {
    let headers = request.headers();
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let header = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok());
    [bearer, header]
        .into_iter()
        .flatten()
        .any(|presented| bool::from(presented.as_bytes().ct_eq(key.as_bytes())))
}
