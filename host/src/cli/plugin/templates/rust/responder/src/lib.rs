//! {{name}}: a mecha responder plugin. It writes a worker's allowed result back to an API.
//!
//! The result's comment (or, without one, its output) is posted as `{"body": "..."}` to
//! `<api_url>/comments`, where `api_url` is the plugin's setting (`responders.{{name}}.api_url`
//! in the daemon's config.yml). The host lets the plugin reach that origin only and adds the
//! credential itself: the plugin never holds a token and must not set authorization headers.
//!
//! The logic is in plain functions ([`comment_post`], [`receipt`]) that `cargo test` runs
//! natively; [`post_json`] is the HTTP call, on the generated `wasi:http/outgoing-handler`
//! bindings, and only works inside mecha.

wit_bindgen::generate!({
    world: "responder",
    path: "wit",
    generate_all,
});

use exports::mecha::plugin::responder_api::{ActionReceipt, Guest, Receipt, RespondError};
use mecha::plugin::log::{self, Field, Level};
use mecha::plugin::types::{PluginInfo, StoredEvent, TaskResult};
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasi::io::streams::StreamError;

/// The setting holding the API's base URL, e.g. `https://api.example.com/v1`.
const API_URL: &str = "api_url";

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "{{name}}".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            summary: "Posts a worker's comment to <api_url>/comments".to_owned(),
            secrets: Vec::new(),
            settings: vec![API_URL.to_owned()],
            // The API's default origin, used when the operator sets no api_url, e.g.
            // `https://api.example.com`. Empty: the operator must set one.
            hosts: Vec::new(),
        }
    }

    fn respond(
        _event: StoredEvent,
        allowed: TaskResult,
        marker: String,
    ) -> Result<Receipt, RespondError> {
        let api_url = mecha::plugin::config::get(API_URL)
            .filter(|url| !url.trim().is_empty())
            .ok_or_else(|| RespondError {
                message: "no api_url: set responders.{{name}}.api_url in config.yml".to_owned(),
                retryable: false,
            })?;
        let Some(post) = comment_post(&api_url, &allowed, &marker) else {
            // Nothing to write back.
            return Ok(Receipt {
                actions: Vec::new(),
            });
        };
        let (status, reply) = post_json(&post.url, &post.body)?;
        log::emit(
            Level::Info,
            "comment posted",
            &[
                Field {
                    key: "url".to_owned(),
                    value: post.url.clone(),
                },
                Field {
                    key: "status".to_owned(),
                    value: status.to_string(),
                },
            ],
        );
        receipt(&post.url, status, &reply)
    }
}

// The export exists only in the component: natively (`cargo test`) this is a plain library.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub url: String,
    /// JSON, `{"body": "..."}`.
    pub body: Vec<u8>,
}

/// The comment to post for `allowed`: its comment, else its output, ending with a line that
/// carries `marker`; `None` when there is neither.
///
/// The marker lets a responder recognise its own comment: one that must never post twice after
/// a retry first lists the existing comments and skips the post when one carries the marker.
pub fn comment_post(api_url: &str, allowed: &TaskResult, marker: &str) -> Option<Post> {
    let text = allowed
        .comment
        .as_ref()
        .map(|comment| comment.body.as_str())
        .or(allowed.output.as_deref())
        .filter(|text| !text.trim().is_empty())?;
    // `--` would end the HTML comment early.
    let marker = marker.replace("--", "-");
    let body = format!("{}\n\n<!-- mecha:{marker} -->", text.trim_end());
    Some(Post {
        url: format!("{}/comments", api_url.trim().trim_end_matches('/')),
        body: serde_json::json!({ "body": body }).to_string().into_bytes(),
    })
}

/// What the API's answer means: a receipt for a 2xx (referring to the comment's URL when the
/// reply names one), otherwise an error that is retryable for 429 and 5xx.
pub fn receipt(url: &str, status: u16, reply: &[u8]) -> Result<Receipt, RespondError> {
    if !(200..300).contains(&status) {
        let reply = String::from_utf8_lossy(reply);
        let reply: String = reply.chars().take(200).collect();
        return Err(RespondError {
            message: format!("POST {url} answered {status}: {reply}"),
            retryable: status == 429 || status >= 500,
        });
    }
    let reply: serde_json::Value = serde_json::from_slice(reply).unwrap_or_default();
    let reference = ["html_url", "web_url", "url"]
        .iter()
        .find_map(|key| reply[key].as_str())
        .unwrap_or(url)
        .to_owned();
    Ok(Receipt {
        actions: vec![ActionReceipt {
            action: "comment".to_owned(),
            reference,
        }],
    })
}

/// Splits `scheme://authority/path?query` into the scheme, the authority and the path with
/// its query, which starts with `/`.
pub fn split_url(url: &str) -> Option<(Scheme, &str, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        _ => return None,
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return None;
    }
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Some((scheme, authority, path))
}

fn failed(message: impl Into<String>, retryable: bool) -> RespondError {
    RespondError {
        message: message.into(),
        retryable,
    }
}

/// A request that got no answer: retryable unless the host refused it or it is malformed.
fn http_error(code: &ErrorCode) -> RespondError {
    match code {
        ErrorCode::HttpRequestDenied => failed(
            "the host denied the request: is api_url's origin granted to this plugin?",
            false,
        ),
        ErrorCode::HttpRequestUriInvalid
        | ErrorCode::HttpRequestMethodInvalid
        | ErrorCode::ConfigurationError => failed(format!("invalid request: {code:?}"), false),
        other => failed(format!("the request failed: {other:?}"), true),
    }
}

/// POSTs the JSON `body` to `url` with the host's outgoing HTTP, and returns the status and the
/// reply's body. Blocks until the reply is read.
pub fn post_json(url: &str, body: &[u8]) -> Result<(u16, Vec<u8>), RespondError> {
    let (scheme, authority, path) =
        split_url(url).ok_or_else(|| failed(format!("not an http(s) URL: {url}"), false))?;
    let headers = Fields::from_list(&[
        ("content-type".to_owned(), b"application/json".to_vec()),
        (
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .map_err(|err| failed(format!("invalid header: {err:?}"), false))?;
    let request = OutgoingRequest::new(headers);
    let refused = |what: &str| failed(format!("the host refused the request's {what}"), false);
    request
        .set_method(&Method::Post)
        .map_err(|()| refused("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| refused("authority"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| refused("path"))?;
    let outgoing = request.body().map_err(|()| refused("body"))?;

    let future =
        wasi::http::outgoing_handler::handle(request, None).map_err(|code| http_error(&code))?;
    {
        let stream = outgoing
            .write()
            .map_err(|()| failed("the request body was already taken", false))?;
        // `blocking-write-and-flush` takes at most 4096 bytes at a time.
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|err| failed(format!("writing the request failed: {err:?}"), true))?;
        }
        // The stream must be dropped before its body is finished.
    }
    OutgoingBody::finish(outgoing, None).map_err(|code| http_error(&code))?;

    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(http_error(&code)),
        Some(Err(())) | None => return Err(failed("no response arrived", true)),
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| failed("the response body was already taken", false))?;
    let mut reply = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| failed("the response body was already taken", false))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => reply.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(err)) => {
                    return Err(failed(
                        format!("reading the response failed: {}", err.to_debug_string()),
                        true,
                    ));
                }
            }
        }
    }
    drop(IncomingBody::finish(incoming));
    Ok((status, reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mecha::plugin::types::Comment;

    fn result(comment: Option<&str>, output: Option<&str>) -> TaskResult {
        TaskResult {
            output: output.map(str::to_owned),
            comment: comment.map(|body| Comment {
                body: body.to_owned(),
            }),
            labels: None,
            status: None,
            commit: None,
            metadata: None,
        }
    }

    /// The fixture's comment and output (the format of `fixtures/result.json`).
    fn fixture() -> TaskResult {
        let value: serde_json::Value =
            serde_json::from_str(include_str!("../fixtures/result.json")).expect("JSON");
        result(value["comment"]["body"].as_str(), value["output"].as_str())
    }

    fn sent_body(post: &Post) -> String {
        let json: serde_json::Value = serde_json::from_slice(&post.body).expect("JSON");
        json["body"].as_str().expect("a body").to_owned()
    }

    #[test]
    fn describes_itself() {
        let info = Plugin::describe();
        assert_eq!(info.name, "{{name}}");
        assert_eq!(info.settings, [API_URL]);
    }

    #[test]
    fn the_comment_is_posted_with_the_marker() {
        let post = comment_post("http://127.0.0.1:8080/", &fixture(), "task-1").expect("a post");
        assert_eq!(post.url, "http://127.0.0.1:8080/comments");
        assert_eq!(
            sent_body(&post),
            "Thanks! `parse` panics on an empty body: see src/lib.rs:42.\n\n<!-- mecha:task-1 -->"
        );
    }

    #[test]
    fn the_output_is_posted_when_there_is_no_comment() {
        let post = comment_post(
            "https://api.example.com/v1",
            &result(None, Some("done")),
            "m",
        )
        .expect("a post");
        assert_eq!(post.url, "https://api.example.com/v1/comments");
        assert!(sent_body(&post).starts_with("done\n\n"));
        assert_eq!(
            comment_post("https://x.test", &result(None, None), "m"),
            None
        );
        assert_eq!(
            comment_post("https://x.test", &result(Some(" "), None), "m"),
            None
        );
    }

    #[test]
    fn a_success_refers_to_the_comment() {
        let reply = br#"{"id": 1, "html_url": "https://x.test/c/1"}"#;
        let posted = receipt("https://x.test/comments", 201, reply).expect("a receipt");
        assert_eq!(posted.actions[0].action, "comment");
        assert_eq!(posted.actions[0].reference, "https://x.test/c/1");
        // A reply without a URL: the receipt refers to where the comment was posted.
        let posted = receipt("https://x.test/comments", 200, b"").expect("a receipt");
        assert_eq!(posted.actions[0].reference, "https://x.test/comments");
    }

    #[test]
    fn server_errors_and_rate_limits_are_retryable() {
        for (status, retryable) in [
            (500, true),
            (503, true),
            (429, true),
            (404, false),
            (401, false),
        ] {
            let err = receipt("https://x.test/comments", status, b"{}").expect_err("an error");
            assert_eq!(err.retryable, retryable, "{status}");
            assert!(err.message.contains(&status.to_string()), "{}", err.message);
        }
    }

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let (scheme, authority, path) = split_url("http://127.0.0.1:8080/a/comments").expect("ok");
        assert!(matches!(scheme, Scheme::Http));
        assert_eq!(
            (authority, path.as_str()),
            ("127.0.0.1:8080", "/a/comments")
        );
        let path = |url| split_url(url).map(|(_, _, path)| path);
        assert_eq!(path("https://x.test").as_deref(), Some("/"));
        assert_eq!(path("https://x.test?page=2").as_deref(), Some("/?page=2"));
        assert!(split_url("ftp://x.test/").is_none());
        assert!(split_url("/comments").is_none());
        assert!(!http_error(&ErrorCode::HttpRequestDenied).retryable);
        assert!(http_error(&ErrorCode::ConnectionRefused).retryable);
    }
}
