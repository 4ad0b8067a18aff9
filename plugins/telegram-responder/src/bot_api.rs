//! Telegram Bot API calls and how they fail.
//!
//! Methods are called as `POST {api}/bot/{method}` with a JSON body. The real path is
//! `/bot<token>/{method}`: the host inserts the token for the granted API origin, so the plugin
//! never holds it (nor sees it echoed: the host also hides it in the answer). Telegram answers
//! `{"ok":true,"result":…}`, or `{"ok":false,"error_code","description"}` with the error code as
//! the HTTP status; a flood limit is 429 with `parameters.retry_after` in seconds.

use mecha_plugin_sdk::responder::{
    Failure,
    http::{Http, Method, Request},
};
use serde_json::Value as Json;

/// Headers on every request; the token is not one of them.
pub const HEADERS: [(&str, &str); 1] = [("User-Agent", "mecha")];

/// Calls `method` under `api` with `body`; the `result` of a successful call.
pub fn call(
    http: &mut dyn Http,
    action: &str,
    api: &str,
    method: &str,
    body: &Json,
) -> Result<Json, Failure> {
    let request = Request::new(Method::Post, format!("{api}/bot/{method}"))
        .headers(&HEADERS)
        .json(body);
    // Method and URL only: the request's headers and body stay out of messages.
    let summary = Request::new(request.method, request.url.clone());
    let response = http
        .send(request)
        .map_err(|error| Failure::transport(action, &summary, error))?;
    let reply = response.json().unwrap_or(Json::Null);
    if response.status < 300 && reply["ok"] == Json::Bool(true) {
        return Ok(reply["result"].clone());
    }
    let mut failure = Failure::status(action, &summary, &response);
    // A flood limit or a server error; Telegram's `ok:false` with 200 is not retried.
    failure.retryable = response.status == 429 || response.status >= 500;
    if let Some(description) = reply["description"].as_str() {
        failure.message = format!(
            "Telegram {method} answered {}: {description}",
            response.status
        );
    }
    if let Some(after) = reply["parameters"]["retry_after"].as_u64() {
        failure.message = format!(
            "{} (Telegram asks to retry after {after} s)",
            failure.message
        );
    }
    Err(failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mecha_plugin_sdk::responder::http::{Recording, Response};
    use serde_json::json;

    fn answering(status: u16, body: Json) -> Recording {
        Recording::new(move |_| Ok(Response::json_body(status, &body)))
    }

    #[test]
    fn the_token_is_left_to_the_host_and_results_are_unwrapped() {
        let mut http = answering(200, json!({"ok": true, "result": {"message_id": 7}}));
        let result = call(
            &mut http,
            "comment",
            "https://tg.test",
            "sendMessage",
            &json!({}),
        )
        .expect("sent");
        assert_eq!(result["message_id"], 7);
        let request = &http.requests[0];
        assert_eq!(request.url, "https://tg.test/bot/sendMessage");
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.header_value("authorization"), None);
    }

    #[test]
    fn flood_limits_and_server_errors_are_retryable_the_rest_is_not() {
        let mut http = answering(
            429,
            json!({"ok": false, "error_code": 429,
            "description": "Too Many Requests: retry after 5", "parameters": {"retry_after": 5}}),
        );
        let failure = call(
            &mut http,
            "comment",
            "https://tg.test",
            "sendMessage",
            &json!({}),
        )
        .unwrap_err();
        assert!(failure.retryable);
        assert_eq!(
            failure.message,
            "Telegram sendMessage answered 429: Too Many Requests: retry after 5 (Telegram asks to retry after 5 s)"
        );
        for status in [500, 502] {
            let mut http = answering(
                status,
                json!({"ok": false, "error_code": status, "description": "Internal Server Error"}),
            );
            assert!(
                call(
                    &mut http,
                    "comment",
                    "https://tg.test",
                    "sendMessage",
                    &json!({})
                )
                .unwrap_err()
                .retryable
            );
        }
        let mut http = answering(
            400,
            json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
        );
        let failure = call(
            &mut http,
            "comment",
            "https://tg.test",
            "sendMessage",
            &json!({}),
        )
        .unwrap_err();
        assert!(!failure.retryable);
        assert_eq!(
            failure.message,
            "Telegram sendMessage answered 400: Bad Request: chat not found"
        );
    }
}
