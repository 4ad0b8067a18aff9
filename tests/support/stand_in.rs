//! What every local API stand-in shares: serving on loopback, recording each request, and
//! answering with queued faults instead of the normal answer.
//!
//! The end-to-end tests cannot reach the real services, so each API mecha calls has a stand-in
//! (the forges in `forge.rs`, the chat apps in `chat_apps.rs`) that implements [`StandIn`]: its
//! normal answers, its own shape of each [`Fault`], and the headers every answer carries.
//! [`handle`] does the rest:
//!
//! * **Recording.** Every request that reaches a stand-in is kept as a [`Request`] (method, raw
//!   path, raw query, lower-cased headers, JSON body, and the status it was answered with), in
//!   arrival order, including the ones that were refused or failed on purpose.
//! * **Fault injection.** `fail_next(method, path_pattern, fault, times)` queues a [`Fault`]
//!   for the next `times` requests whose method is `method` (`"*"`: any) and whose raw path
//!   contains `path_pattern`. Queued faults are consumed in the order they were queued: a request
//!   takes the first rule that matches it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use axum::response::Response;
use serde_json::Value;

/// A failure to answer with instead of the normal answer, queued with `fail_next`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// This status, with the stand-in's error body for it (GitHub: `{"message",
    /// "documentation_url","status"}`; GitLab: `{"message":"<code> <reason>"}`; Slack:
    /// `{"ok":false,"error":…}`; Telegram: `{"ok":false,"error_code","description"}`).
    Status(u16),
    /// The primary rate limit is used up. GitHub: 403, `x-ratelimit-remaining: 0`, a reset one
    /// second ahead, `{"message":"API rate limit exceeded for …"}`. GitLab: 429 `Retry later`
    /// with `retry-after: 1` and `ratelimit-remaining: 0`. Slack: 429 `ratelimited` with
    /// `retry-after: 1`. Telegram: 429 with `parameters.retry_after: 1`.
    RateLimited,
    /// GitHub's secondary rate limit: 429 with `retry-after: 1` and `{"message":"You have
    /// exceeded a secondary rate limit. …"}`. GitLab: an application rate limit, 429 with
    /// `retry-after: 1` and `{"message":{"error":"This endpoint has been requested too many
    /// times. Try again later."}}`.
    SecondaryRateLimit,
    /// Waits this long, then answers normally.
    Hang(Duration),
    /// Does what the request asks (a message is posted), then holds the answer this long: the
    /// window in which the caller has had its effect but not yet heard of it.
    Held(Duration),
}

/// One request received by a api.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path as sent, still percent-encoded (`/api/v4/projects/group%2Fproject/…`).
    pub path: String,
    /// The query string as sent, without `?` (empty when there was none).
    pub query: String,
    /// Header names lower-cased; repeated headers joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON; a JSON string holding the text when it is not JSON; `null`
    /// when empty.
    pub body: Value,
    /// The status answered, once answered.
    pub status: Option<u16>,
}

impl Request {
    /// A header by its name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A running loopback server; stops when dropped.
pub struct Running {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A free loopback port to serve on, and its `http://127.0.0.1:PORT`.
pub(super) async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("stand-in binds");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, origin)
}

/// Serves `api` on `listener`. Every request goes to one handler, which routes on the raw
/// (still percent-encoded) path itself.
pub(super) fn serve<F: StandIn>(listener: tokio::net::TcpListener, api: Arc<F>) -> Running {
    spawn(
        listener,
        Router::new().fallback(handle::<F>).with_state(api),
    )
}

/// Serves `router` on `listener` until the returned [`Running`] is dropped: every loopback
/// server of the tests (stand-ins, test workers, the OTLP receiver) runs so.
pub fn spawn(listener: tokio::net::TcpListener, router: Router) -> Running {
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Running {
        shutdown: Some(shutdown),
    }
}

/// What each stand-in implements; [`handle`] does the recording and the faults.
pub(super) trait StandIn: Send + Sync + 'static {
    fn core(&self) -> &Core;
    /// The normal answer.
    fn answer(&self, call: &Call) -> Reply;
    /// The answer for an injected fault (never [`Fault::Hang`] or [`Fault::Held`]).
    fn fault(&self, call: &Call, fault: &Fault) -> Reply;
    /// Adds the headers every answer carries.
    fn finish(&self, call: &Call, reply: &mut Reply);
}

async fn handle<F: StandIn>(
    State(api): State<Arc<F>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let core = api.core();
    let (index, seq) = core.record(&method, &uri, &headers, &body);
    let call = Call {
        method,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
        seq,
    };
    let mut fault = core.take_fault(call.method.as_str(), &call.path);
    if let Some(Fault::Hang(delay)) = fault {
        tokio::time::sleep(delay).await;
        fault = None;
    }
    let mut reply = match fault {
        Some(Fault::Held(delay)) => {
            let reply = api.answer(&call);
            tokio::time::sleep(delay).await;
            reply
        }
        Some(fault) => api.fault(&call, &fault),
        None => api.answer(&call),
    };
    api.finish(&call, &mut reply);
    core.answered(index, reply.status);
    reply.into_response()
}

/// One request, as a stand-in sees it.
pub(super) struct Call {
    pub(super) method: Method,
    /// Raw, percent-encoded.
    pub(super) path: String,
    /// Raw, without `?`.
    pub(super) query: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
    /// 1, 2, 3, … per stand-in: for request ids.
    pub(super) seq: u64,
}

impl Call {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// A query parameter, decoded (`+` is a space).
    pub(super) fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(&self.query)
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The content type's essence, lower-cased: `application/json` for
    /// `Application/JSON; charset=utf-8`.
    pub(super) fn content_type(&self) -> Option<String> {
        self.header("content-type").map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }
}

/// An answer under construction.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Reply {
    /// A JSON answer; the stand-in adds its content type in `finish`.
    pub(super) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub(super) fn text(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.to_owned(),
        }
    }

    pub(super) fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(super) fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(key, _)| key == name)
    }

    /// Adds the header unless the answer already carries one of that name.
    pub(super) fn default_header(&mut self, name: &str, value: impl Into<String>) {
        if !self.has_header(name) {
            self.headers.push((name.to_owned(), value.into()));
        }
    }

    pub(super) fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = axum::http::StatusCode::from_u16(self.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

/// One queued fault.
struct Rule {
    method: String,
    pattern: String,
    fault: Fault,
    remaining: usize,
}

/// The recording and fault queue of one stand-in.
#[derive(Default)]
pub(super) struct Core {
    rules: Mutex<VecDeque<Rule>>,
    requests: Mutex<Vec<Request>>,
    seq: AtomicU64,
}

impl Core {
    pub(super) fn fail_next(&self, method: &str, path_pattern: &str, fault: Fault, times: usize) {
        if times == 0 {
            return;
        }
        self.rules.lock().expect("lock").push_back(Rule {
            method: method.to_ascii_uppercase(),
            pattern: path_pattern.to_owned(),
            fault,
            remaining: times,
        });
    }

    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("lock");
        let index = rules.iter().position(|rule| {
            (rule.method == "*" || rule.method == method) && path.contains(&rule.pattern)
        })?;
        let rule = &mut rules[index];
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            rules.remove(index);
        }
        Some(fault)
    }

    /// Keeps the request; returns its index and its sequence number.
    fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> (usize, u64) {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            names
                .entry(name.as_str().to_ascii_lowercase())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert(value);
        }
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        let mut requests = self.requests.lock().expect("lock");
        requests.push(Request {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            headers: names,
            body,
            status: None,
        });
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        (requests.len() - 1, seq)
    }

    fn answered(&self, index: usize, status: u16) {
        if let Some(request) = self.requests.lock().expect("lock").get_mut(index) {
            request.status = Some(status);
        }
    }

    pub(super) fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }

    /// Waits (up to 30 s) until `count` answered requests match `method` (`"*"`: any) and
    /// contain `path_pattern` in their raw path; returns the matching ones.
    pub(super) async fn wait_requests(
        &self,
        method: &str,
        path_pattern: &str,
        count: usize,
    ) -> Vec<Request> {
        let matching = || -> Vec<Request> {
            self.requests()
                .into_iter()
                .filter(|request| {
                    (method == "*" || request.method.eq_ignore_ascii_case(method))
                        && request.path.contains(path_pattern)
                        && request.status.is_some()
                })
                .collect()
        };
        for _ in 0..1500 {
            let found = matching();
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {count} answered {method} requests on *{path_pattern}*, got {}: {:#?}",
            matching().len(),
            self.requests()
        );
    }
}

/// The decoded `key=value` pairs of a query string or form body.
pub(super) fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (
                percent_decode(key, true).unwrap_or_else(|| key.to_owned()),
                percent_decode(value, true).unwrap_or_else(|| value.to_owned()),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); `None` when the result is
/// not UTF-8 or an escape is malformed.
pub(super) fn percent_decode(raw: &str, plus_is_space: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                let hex = raw.get(at + 1..at + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                at += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                at += 1;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(super) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Seconds since the Unix epoch.
pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}
