//! [`JsonBody`]: the extractor of every API route that takes a JSON body.
//!
//! It insists on a JSON `Content-Type` (415 otherwise). A browser sends `text/plain`, form and
//! multipart bodies to any site without asking it first; a JSON type makes it ask (a CORS
//! preflight, which the daemon never grants), so a web page cannot post to the API even when
//! another check fails. The body is read through [`super::body`], under the same size cap,
//! deadline and memory budget as webhooks.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::{ApiError, ApiState, body};

/// A request body parsed as JSON into `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        if !content_type.is_some_and(is_json) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON, with Content-Type: application/json",
            ));
        }
        let (parts, request_body) = request.into_parts();
        let buffered = body::read(&state.bodies, &parts.headers, request_body).await?;
        serde_json::from_slice(buffered.bytes())
            .map(JsonBody)
            .map_err(|err| ApiError::bad_request(format!("invalid request body: {err}")))
    }
}

/// `application/json`, or a `+json` type such as `application/merge-patch+json`, with any
/// parameters (`; charset=utf-8`).
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn only_json_types_are_json() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(json), "{json}");
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json+plain",
            "",
        ] {
            assert!(!is_json(other), "{other}");
        }
    }
}
