//! A task as mecha sends it, and the checks that turn a `POST /task` body into one.
//!
//! The checks are the reference runtime's, in its order: a declared length (411), under the cap
//! (413), JSON (400), a prompt (400). The length is required so an oversized body is refused from
//! its headers, before any of it is read.

use axum::body::Body;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One task: what mecha rendered for the agent, and the event facts it was rendered from.
#[derive(Debug)]
pub struct Task {
    /// mecha's task ID; empty when the caller sent none.
    pub id: String,
    pub prompt: String,
    /// Always an object; `{}` when the caller sent none.
    pub context: Value,
}

/// The body as sent; every field may be missing, and each is checked after parsing.
#[derive(Deserialize)]
struct TaskBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    context: Option<Map<String, Value>>,
}

/// Why a body is not a task.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("Content-Length required")]
    LengthRequired,
    #[error("request body is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("could not read the request body: {0}")]
    Unreadable(#[source] axum::Error),
    #[error("invalid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("missing prompt")]
    MissingPrompt,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::LengthRequired => StatusCode::LENGTH_REQUIRED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable(_) | Self::InvalidJson(_) | Self::MissingPrompt => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

/// Reads and checks a `POST /task` body of at most `limit` bytes.
pub async fn read(headers: &HeaderMap, body: Body, limit: u64) -> Result<Task, Rejection> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .ok_or(Rejection::LengthRequired)?;
    if declared > limit {
        return Err(Rejection::TooLarge { limit });
    }
    // The server holds a body to its declared length, so this limit is only a second guard.
    let bytes = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(Rejection::Unreadable)?;
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Result<Task, Rejection> {
    // Through `Value`, because a derived struct would also be read from a JSON array.
    let body = match serde_json::from_slice(bytes).map_err(Rejection::InvalidJson)? {
        object @ Value::Object(_) => serde_json::from_value::<TaskBody>(object),
        _ => Err(serde::de::Error::custom("expected an object")),
    }
    .map_err(Rejection::InvalidJson)?;
    let prompt = body
        .prompt
        .filter(|prompt| !prompt.trim().is_empty())
        .ok_or(Rejection::MissingPrompt)?;
    Ok(Task {
        id: body.id.unwrap_or_default(),
        prompt,
        context: Value::Object(body.context.unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_body_parses() {
        let task =
            parse(br#"{"id":"t1","prompt":"review","context":{"number":7}}"#).expect("a task");
        assert_eq!(task.id, "t1");
        assert_eq!(task.prompt, "review");
        assert_eq!(task.context, serde_json::json!({"number": 7}));
    }

    #[test]
    fn id_and_context_are_optional() {
        let task = parse(br#"{"prompt":"p","context":null}"#).expect("a task");
        assert_eq!(
            (task.id.as_str(), task.context),
            ("", serde_json::json!({}))
        );
    }

    #[test]
    fn a_blank_or_missing_prompt_is_refused() {
        for body in [
            &br#"{"id":"t"}"#[..],
            br#"{"prompt":""}"#,
            br#"{"prompt":" \n"}"#,
        ] {
            assert!(matches!(parse(body), Err(Rejection::MissingPrompt)));
        }
    }

    #[test]
    fn wrong_shapes_are_invalid_json() {
        for body in [
            &b"{"[..],
            b"[]",
            br#"{"prompt": 5}"#,
            br#"{"prompt": "p", "context": [1]}"#,
        ] {
            let err = parse(body).expect_err("refused");
            assert!(err.to_string().starts_with("invalid JSON: "), "{err}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }
}
