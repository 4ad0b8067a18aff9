//! Slack Web API calls and how they fail.
//!
//! Slack answers almost everything with HTTP 200 and a JSON body whose `ok` says whether the
//! call worked and whose `error` says why not (`channel_not_found`, `not_in_channel`,
//! `invalid_auth`, ...). A rate limit is HTTP 429 with `Retry-After` in seconds; an outage is a
//! 5xx or one of the `error`s in [`RETRYABLE_ERRORS`]. Everything else is the same answer on
//! every try.

use mecha_plugin_sdk::responder::{
    Failure,
    http::{Http, Method, Request},
};
use serde_json::Value as Json;

/// `error` values that a later try may not get: Slack's own trouble and its rate limit.
pub const RETRYABLE_ERRORS: [&str; 5] = [
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Headers on every request; the host adds `Authorization: Bearer` for the API's origin.
pub const HEADERS: [(&str, &str); 1] = [("User-Agent", "mecha")];

/// Calls `method` (`chat.postMessage`) under `api` with a JSON `body`, or with none as a `GET`
/// with `query` (already encoded). `tolerated` lists `error`s that mean the wanted state holds
/// already (`already_reacted`); they count as success and give the reply as it is.
pub fn call(
    http: &mut dyn Http,
    action: &str,
    api: &str,
    method: &str,
    body: Option<&Json>,
    query: &str,
    tolerated: &[&str],
) -> Result<Json, Failure> {
    let url = if query.is_empty() {
        format!("{api}/{method}")
    } else {
        format!("{api}/{method}?{query}")
    };
    let request = match body {
        Some(body) => {
            // Slack warns about JSON posted without a charset, so `Request::json`'s plain
            // `application/json` is not used.
            let mut request = Request::new(Method::Post, url)
                .headers(&HEADERS)
                .header("Content-Type", "application/json; charset=utf-8");
            request.body = body.to_string().into_bytes();
            request
        }
        None => Request::new(Method::Get, url).headers(&HEADERS),
    };
    // Method and URL only: the request's headers and body stay out of messages.
    let summary = Request::new(request.method, request.url.clone());
    let response = http
        .send(request)
        .map_err(|error| Failure::transport(action, &summary, error))?;
    if response.status >= 300 {
        let mut failure = Failure::status(action, &summary, &response);
        if let Some(after) = response.header("retry-after") {
            let after = after.trim();
            failure.message = format!("{} (Slack asks to retry after {after} s)", failure.message);
        }
        return Err(failure);
    }
    let reply = response.json().unwrap_or(Json::Null);
    if reply["ok"] == Json::Bool(true) {
        return Ok(reply);
    }
    let error = reply["error"].as_str().unwrap_or("no ok in the reply");
    if tolerated.contains(&error) {
        return Ok(reply);
    }
    let warning = reply["response_metadata"]["messages"]
        .as_array()
        .and_then(|messages| messages.first())
        .and_then(Json::as_str)
        .map(|message| format!(" ({message})"))
        .unwrap_or_default();
    Err(Failure {
        action: action.to_owned(),
        message: format!("Slack {method} answered {error}{warning}"),
        retryable: RETRYABLE_ERRORS.contains(&error),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mecha_plugin_sdk::responder::http::{Recording, Response};

    fn answering(status: u16, body: &'static str) -> Recording {
        Recording::new(move |_| Ok(Response::new(status, body)))
    }

    #[test]
    fn ok_false_is_a_failure_retryable_only_for_slacks_own_trouble() {
        let body = serde_json::json!({"channel": "C1"});
        let mut http = answering(200, r#"{"ok":false,"error":"channel_not_found"}"#);
        let failure = call(
            &mut http,
            "comment",
            "https://s.test/api",
            "chat.postMessage",
            Some(&body),
            "",
            &[],
        )
        .unwrap_err();
        assert!(!failure.retryable);
        assert_eq!(
            failure.message,
            "Slack chat.postMessage answered channel_not_found"
        );
        assert_eq!(http.requests[0].url, "https://s.test/api/chat.postMessage");
        assert_eq!(
            http.requests[0].header_value("content-type"),
            Some("application/json; charset=utf-8")
        );

        let mut http = answering(200, r#"{"ok":false,"error":"internal_error"}"#);
        let failure = call(
            &mut http,
            "comment",
            "https://s.test/api",
            "x",
            Some(&body),
            "",
            &[],
        )
        .unwrap_err();
        assert!(failure.retryable);
    }

    #[test]
    fn rate_limits_and_outages_are_retryable() {
        for status in [429, 500, 503] {
            let mut http = Recording::new(move |_| {
                Ok(
                    Response::new(status, r#"{"ok":false,"error":"ratelimited"}"#)
                        .with_header("retry-after", "3"),
                )
            });
            let failure = call(
                &mut http,
                "labels",
                "https://s.test/api",
                "reactions.add",
                None,
                "a=b",
                &[],
            )
            .unwrap_err();
            assert!(failure.retryable, "{status}");
            assert!(
                failure.message.ends_with("(Slack asks to retry after 3 s)"),
                "{}",
                failure.message
            );
            assert_eq!(http.requests[0].url, "https://s.test/api/reactions.add?a=b");
        }
    }

    #[test]
    fn tolerated_errors_are_success() {
        let mut http = answering(200, r#"{"ok":false,"error":"already_reacted"}"#);
        let body = serde_json::json!({});
        assert!(
            call(
                &mut http,
                "labels",
                "https://s.test/api",
                "reactions.add",
                Some(&body),
                "",
                &["already_reacted"]
            )
            .is_ok()
        );
    }
}
