//! Local stand-ins for the two forges mecha writes results back to, served on 127.0.0.1 because
//! the end-to-end tests cannot reach the real services:
//!
//! * [`GitHub`] imitates the GitHub REST API (`https://api.github.com`): issue comments, issue
//!   labels and commit statuses, with GitHub's authentication, validation, error bodies,
//!   pagination (`Link`) and rate-limit headers. See `forge/github.rs`.
//! * [`GitLab`] imitates the GitLab REST API v4 (`https://gitlab.com/api/v4`): notes on merge
//!   requests and issues, label updates and commit statuses, with GitLab's `PRIVATE-TOKEN`
//!   authentication, URL-encoded project paths (`group%2Fproject`), Grape-style error bodies,
//!   `x-total`/`x-next-page` pagination and `ratelimit-*` headers. See `forge/gitlab.rs`.
//!
//! Both share what this module holds:
//!
//! * **Recording.** Every request that reaches a stand-in is kept as a [`Request`] (method, raw
//!   path, raw query, lower-cased headers, JSON body, and the status it was answered with), in
//!   arrival order, including the ones that were refused or failed on purpose.
//! * **Fault injection.** `fail_next(method, path_pattern, fault, times)` queues a [`Fault`]
//!   for the next `times` requests whose method is `method` (`"*"`: any) and whose raw path
//!   contains `path_pattern`. Queued faults are consumed in the order they were queued: a request
//!   takes the first rule that matches it. A [`Fault::Hang`] only delays the answer, which is
//!   then the normal one; the other faults replace the answer with the forge's own shape of that
//!   failure (GitHub's 403 `API rate limit exceeded`, GitLab's 429 `Retry later`, …).
//! * **An open world.** Any repository / project exists, empty, until
//!   `GitHub::only_repos` / `GitLab::only_projects` names the ones that do: the others then
//!   answer 404 like a repository the token cannot see.
//!
//! Each stand-in stops when dropped.

mod github;
mod gitlab;

pub use github::{GitHub, Pull};
pub use gitlab::{GitLab, Noteable};

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
    /// This status, with the forge's error body for it (GitHub: `{"message",
    /// "documentation_url","status"}`; GitLab: `{"message":"<code> <reason>"}`).
    Status(u16),
    /// The primary rate limit is used up. GitHub: 403, `x-ratelimit-remaining: 0`, a reset one
    /// second ahead, `{"message":"API rate limit exceeded for …"}`. GitLab: 429 `Retry later`
    /// with `retry-after: 1` and `ratelimit-remaining: 0`.
    RateLimited,
    /// GitHub's secondary rate limit: 429 with `retry-after: 1` and `{"message":"You have
    /// exceeded a secondary rate limit. …"}`. GitLab: an application rate limit, 429 with
    /// `retry-after: 1` and `{"message":{"error":"This endpoint has been requested too many
    /// times. Try again later."}}`.
    SecondaryRateLimit,
    /// Waits this long, then answers normally.
    Hang(Duration),
}

/// One request received by a stand-in.
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
struct Running {
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
async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("forge stand-in binds");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, origin)
}

/// Serves `forge` on `listener`. Every request goes to one handler, which routes on the raw
/// (still percent-encoded) path itself.
fn serve<F: Forge>(listener: tokio::net::TcpListener, forge: Arc<F>) -> Running {
    let router = Router::new().fallback(handle::<F>).with_state(forge);
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

/// What each forge implements; [`handle`] does the recording and the faults.
trait Forge: Send + Sync + 'static {
    fn core(&self) -> &Core;
    /// The normal answer.
    fn answer(&self, call: &Call) -> Reply;
    /// The answer for an injected fault (never [`Fault::Hang`]).
    fn fault(&self, call: &Call, fault: &Fault) -> Reply;
    /// Adds the headers every answer carries.
    fn finish(&self, call: &Call, reply: &mut Reply);
}

async fn handle<F: Forge>(
    State(forge): State<Arc<F>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let core = forge.core();
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
        Some(fault) => forge.fault(&call, &fault),
        None => forge.answer(&call),
    };
    forge.finish(&call, &mut reply);
    core.answered(index, reply.status);
    reply.into_response()
}

/// One request, as a forge sees it.
struct Call {
    method: Method,
    /// Raw, percent-encoded.
    path: String,
    /// Raw, without `?`.
    query: String,
    headers: HeaderMap,
    body: Bytes,
    /// 1, 2, 3, … per stand-in: for request ids.
    seq: u64,
}

impl Call {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// A query parameter, decoded (`+` is a space).
    fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(&self.query)
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The content type's essence, lower-cased: `application/json` for
    /// `Application/JSON; charset=utf-8`.
    fn content_type(&self) -> Option<String> {
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
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    /// A JSON answer; the forge adds its content type in `finish`.
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn text(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.to_owned(),
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(key, _)| key == name)
    }

    /// Adds the header unless the answer already carries one of that name.
    fn default_header(&mut self, name: &str, value: impl Into<String>) {
        if !self.has_header(name) {
            self.headers.push((name.to_owned(), value.into()));
        }
    }

    fn into_response(self) -> Response {
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

/// The recording and fault queue shared by both stand-ins.
#[derive(Default)]
struct Core {
    rules: Mutex<VecDeque<Rule>>,
    requests: Mutex<Vec<Request>>,
    seq: AtomicU64,
}

impl Core {
    fn fail_next(&self, method: &str, path_pattern: &str, fault: Fault, times: usize) {
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

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }

    /// Waits (up to 30 s) until `count` answered requests match `method` (`"*"`: any) and
    /// contain `path_pattern` in their raw path; returns the matching ones.
    async fn wait_requests(&self, method: &str, path_pattern: &str, count: usize) -> Vec<Request> {
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

/// A page of a list: which items, and the numbers for the pagination headers.
struct Window {
    page: usize,
    per_page: usize,
    /// At least 1, even for an empty list.
    last_page: usize,
}

impl Window {
    fn new(total: usize, page: usize, per_page: usize) -> Window {
        Window {
            page,
            per_page,
            last_page: total.div_ceil(per_page).max(1),
        }
    }

    fn slice<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip((self.page - 1).saturating_mul(self.per_page))
            .take(self.per_page)
            .cloned()
            .collect()
    }
}

/// `raw` with its `page` parameter set to `page` (added last when absent), other parameters
/// kept as sent.
fn with_page(raw: &str, page: usize) -> String {
    let mut parts: Vec<String> = raw
        .split('&')
        .filter(|part| !part.is_empty() && part.split('=').next() != Some("page"))
        .map(str::to_owned)
        .collect();
    parts.push(format!("page={page}"));
    parts.join("&")
}

/// The decoded `key=value` pairs of a query string or form body.
fn query_pairs(raw: &str) -> Vec<(String, String)> {
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
fn percent_decode(raw: &str, plus_is_space: bool) -> Option<String> {
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
fn percent_encode(text: &str) -> String {
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
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// (year, month, day, hour, minute, second, weekday with 0 = Sunday) of a Unix time.
fn civil(secs: u64) -> (i64, u32, u32, u64, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7) as u64;
    (
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        weekday,
    )
}

/// `2026-11-24T08:15:00Z` (GitHub's form).
fn iso8601(secs: u64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `2026-11-24T08:15:00.000Z` (GitLab's form).
fn iso8601_millis(secs: u64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000Z")
}

/// `Tue, 24 Nov 2026 08:15:00 GMT`.
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(secs);
    format!(
        "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} GMT",
        DAYS[wd as usize],
        MONTHS[(mo - 1) as usize]
    )
}

/// A 40-character hexadecimal commit id.
fn is_full_sha(sha: &str) -> bool {
    sha.len() == 40 && sha.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The canonical reason phrase of a status code.
fn reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(iso8601_millis(951_782_400), "2000-02-29T00:00:00.000Z");
    }
}
