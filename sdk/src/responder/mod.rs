//! Responder plugins: write a worker's allowed result back to the event's provider.
//!
//! A responder receives the stored event, the part of the worker's result that its policies let
//! through, and a `marker` unique to the task. It calls the provider's API through [`http`], the
//! host's outgoing HTTP. The host adds the authorization header for the hosts the operator
//! granted and refuses every other host, so a responder never holds, sends or logs a token.
//!
//! What every provider's responder shares lives here rather than in each plugin:
//!
//! - [`Target`]: where on the provider the event happened (repository, number, head commit);
//! - [`Report`] and [`Failure`]: every action is attempted, failures are collected, and the call
//!   is retryable only when every failure was (rate limits, 5xx, network errors);
//! - [`post_once`]: the marker line that makes a retried task find its own earlier comment
//!   instead of posting it twice;
//! - [`commit_suggestion`], [`cut`] and [`percent_encode`]: bodies and paths as providers expect;
//! - [`chat`]: Markdown rendered for chat apps and cut into messages that fit their limits.
//!
//! Keep the write-back itself a plain function over `&mut dyn Http`: it then runs natively
//! against [`http::Recording`] in unit tests, and against [`http::HostClient`] in the component.
//!
//! ```ignore
//! use mecha_plugin_sdk::responder::{self, PluginInfo, Receipt, RespondError, Responder, StoredEvent, TaskResult};
//!
//! struct Hello;
//!
//! impl Responder for Hello {
//!     fn describe() -> PluginInfo {
//!         responder::info("hello", env!("CARGO_PKG_VERSION"), "Says hello")
//!             .with_hosts(["https://hello.example"])
//!     }
//!
//!     fn respond(event: StoredEvent, allowed: TaskResult, marker: String) -> Result<Receipt, RespondError> {
//!         let mut report = responder::Report::new();
//!         // ... one `report.record(action, result)` per action ...
//!         report.finish()
//!     }
//! }
//!
//! mecha_plugin_sdk::export_responder!(Hello);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "responder",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_responder_world",
        default_bindings_module: "mecha_plugin_sdk::responder::bindings",
        // One set of types for every world, so their builders are written once.
        with: {
            "mecha:plugin/types@0.1.0": crate::source::bindings::mecha::plugin::types,
            // The same wasi:http (and the interfaces it uses) as the source world.
            "wasi:http/types@0.2.12": crate::source::bindings::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": crate::source::bindings::wasi::http::outgoing_handler,
            "wasi:io/error@0.2.12": crate::source::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::source::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": crate::source::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": crate::source::bindings::wasi::clocks::monotonic_clock,
        },
    });
}

pub use crate::source::bindings::mecha::plugin::types::{
    Attr, Comment, Commit, Event, Labels, PluginInfo, Status, StoredEvent, TaskResult, Value,
};
pub use crate::source::{event, info};
pub use bindings::exports::mecha::plugin::responder_api::{ActionReceipt, Receipt, RespondError};
pub use bindings::mecha::plugin::log::Level;

use bindings::mecha::plugin::{config, log};
use http::{Http, HttpError, Method, Request, Response};

/// A responder plugin: implement this on a type and export it with
/// [`export_responder!`](crate::export_responder).
pub trait Responder {
    /// Name, version and the secrets, settings and hosts the plugin uses.
    fn describe() -> PluginInfo;

    /// Writes `allowed` back to the provider of `event`. Comments carry `marker` (see
    /// [`post_once`]) so that a retried call never posts twice.
    fn respond(
        event: StoredEvent,
        allowed: TaskResult,
        marker: String,
    ) -> Result<Receipt, RespondError>;
}

/// Exports a type implementing [`Responder`] as the component's `responder-api`.
///
/// The export exists only in wasm builds: natively (tests, benchmarks) the plugin is a plain
/// library, and symbol names like `mecha:plugin/responder-api@0.1.0#respond` would not link.
#[macro_export]
macro_rules! export_responder {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Exports;
            impl $crate::responder::bindings::exports::mecha::plugin::responder_api::Guest
                for Exports
            {
                fn describe() -> $crate::responder::PluginInfo {
                    <$ty as $crate::responder::Responder>::describe()
                }
                fn respond(
                    event: $crate::responder::StoredEvent,
                    allowed: $crate::responder::TaskResult,
                    marker: String,
                ) -> Result<$crate::responder::Receipt, $crate::responder::RespondError> {
                    <$ty as $crate::responder::Responder>::respond(event, allowed, marker)
                }
            }
            $crate::responder::bindings::__export_responder_world!(Exports with_types_in $crate::responder::bindings);
        };
        // Natively the plugin is a library; this keeps its exported type from looking unused.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::responder::Responder>::respond;
        };
    };
}

/// The operator's setting `key` for this plugin instance.
pub fn setting(key: &str) -> Option<String> {
    config::get(key)
}

/// Writes a line to the daemon's log, tagged with this plugin and the current trace id.
pub fn log(level: Level, message: &str) {
    log::emit(level, message, &[]);
}

/// The setting `key` as an API base URL without a trailing `/`, or `default` when it is unset
/// or blank.
pub fn api_base(key: &str, default: &str) -> String {
    http::base_url(setting(key).as_deref(), default)
}

impl StoredEvent {
    /// `event` as the host would store it from the source `source`, with placeholder ids.
    pub fn new(source: &str, event: Event) -> StoredEvent {
        StoredEvent {
            id: "0".repeat(32),
            source: source.to_owned(),
            trace_id: "0".repeat(32),
            event,
        }
    }
}

impl TaskResult {
    /// A result proposing nothing; set the fields to propose something.
    pub fn empty() -> TaskResult {
        TaskResult {
            output: None,
            comment: None,
            labels: None,
            status: None,
            commit: None,
            metadata: None,
        }
    }
}

/// Where on the provider an event happened, read from the attributes every source sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `repo_owner`: a user, organisation, or GitLab group path (which may contain `/`).
    pub owner: String,
    /// `repo_name`.
    pub name: String,
    /// `number`: the pull request, merge request or issue; `None` when absent or not positive,
    /// e.g. for a push, which has no thread to comment on.
    pub number: Option<u64>,
    /// `head_sha`: the commit a status is set on.
    pub head_sha: Option<String>,
}

impl Target {
    /// The target of `event`, or `None` when it names no repository: an event from another
    /// provider, or one about no repository, has nowhere to write.
    pub fn of(event: &Event) -> Option<Target> {
        Some(Target {
            owner: non_blank(event, "repo_owner")?.to_owned(),
            name: non_blank(event, "repo_name")?.to_owned(),
            number: whole_number(event, "number")
                .and_then(|number| u64::try_from(number).ok())
                .filter(|number| *number > 0),
            head_sha: non_blank(event, "head_sha").map(str::to_owned),
        })
    }
}

/// The attribute `name` when it is non-blank text, trimmed.
fn non_blank<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event
        .text_attr(name)
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// The attribute `name` as a whole number: an integer, an integral float or numeric text, as
/// sources that pass numbers through from JSON or text may hold it.
fn whole_number(event: &Event, name: &str) -> Option<i64> {
    match event.get_attr(name)? {
        Value::Integer(number) => Some(*number),
        Value::Text(text) => text.trim().parse().ok(),
        Value::Float(number) if number.fract() == 0.0 && number.abs() < 9.0e15 => {
            Some(*number as i64)
        }
        _ => None,
    }
}

/// A commit status state, as the result contract allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Error,
    Failure,
    Pending,
    Success,
}

impl StatusState {
    /// Parses `error`, `failure`, `pending` or `success`; anything else is a non-retryable
    /// [`Failure`] of the action `status`.
    pub fn parse(state: &str) -> Result<StatusState, Failure> {
        match state.trim() {
            "error" => Ok(StatusState::Error),
            "failure" => Ok(StatusState::Failure),
            "pending" => Ok(StatusState::Pending),
            "success" => Ok(StatusState::Success),
            other => Err(Failure::invalid(
                "status",
                format!("state `{other}` is not one of error, failure, pending, success"),
            )),
        }
    }

    /// The state as the result contract (and GitHub) spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Error => "error",
            StatusState::Failure => "failure",
            StatusState::Pending => "pending",
            StatusState::Success => "success",
        }
    }
}

/// The body to post as the `comment` action: the comment's body when the result has a comment,
/// otherwise its free-text output. `None` when that text is blank.
pub fn comment_text(allowed: &TaskResult) -> Option<&str> {
    let text = match &allowed.comment {
        Some(comment) => comment.body.as_str(),
        None => allowed.output.as_deref()?,
    };
    (!text.trim().is_empty()).then_some(text)
}

/// One action that did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The action, e.g. `comment` or `label.add`.
    pub action: String,
    /// What happened, without any header value.
    pub message: String,
    /// True when the same call may succeed later.
    pub retryable: bool,
}

/// How many bytes of a provider's error body a message quotes: enough for GitHub's and
/// GitLab's JSON error objects, little enough for a log line.
pub const ERROR_BODY_EXCERPT: usize = 300;

impl Failure {
    /// A failure that retrying cannot fix, e.g. an invalid status state.
    pub fn invalid(action: &str, message: impl Into<String>) -> Failure {
        Failure {
            action: action.to_owned(),
            message: message.into(),
            retryable: false,
        }
    }

    /// The request could not be sent or its reply not read.
    pub fn transport(action: &str, request: &Request, error: HttpError) -> Failure {
        Failure {
            action: action.to_owned(),
            message: format!("{} {}: {}", request.method, request.path(), error.message),
            retryable: error.retryable,
        }
    }

    /// The provider answered `response.status`, which the caller treats as an error. The message
    /// names the request's method and path, the status and the start of the body; never a
    /// header value.
    pub fn status(action: &str, request: &Request, response: &Response) -> Failure {
        let body = String::from_utf8_lossy(&response.body);
        let excerpt = cut_at(body.trim(), ERROR_BODY_EXCERPT);
        let excerpt = excerpt.replace(['\r', '\n'], " ");
        Failure {
            action: action.to_owned(),
            message: format!(
                "{} {} returned {}: {excerpt}",
                request.method,
                request.path(),
                response.status
            ),
            retryable: is_retryable(response),
        }
    }
}

/// Whether an error reply may succeed later: 408, 429, any 5xx, and a 403 that is a rate limit
/// (GitHub's secondary limits answer 403 with `x-ratelimit-remaining: 0` or `retry-after`).
/// 401, 404, 422 and other 4xx are not: the same request would fail the same way.
pub fn is_retryable(response: &Response) -> bool {
    match response.status {
        408 | 429 | 500..=599 => true,
        403 => {
            response.header("x-ratelimit-remaining").map(str::trim) == Some("0")
                || response.header("retry-after").is_some()
        }
        _ => false,
    }
}

/// Sends `request`, turning a transport error or a status of 300 or more into a [`Failure`] of
/// `action`.
pub fn send_expecting_success(
    http: &mut dyn Http,
    action: &str,
    request: Request,
) -> Result<Response, Failure> {
    send_expecting(http, action, request, |response| response.status < 300)
}

/// Sends `request`, turning a transport error or a response that `accept` refuses into a
/// [`Failure`] of `action`. For calls where an error status means the wanted state already
/// holds, e.g. GitHub's 404 for removing a label that is not there.
pub fn send_expecting(
    http: &mut dyn Http,
    action: &str,
    request: Request,
    accept: impl Fn(&Response) -> bool,
) -> Result<Response, Failure> {
    // Method and URL only: the request's headers and body stay out of messages.
    let summary = Request::new(request.method, request.url.clone());
    match http.send(request) {
        Ok(response) if accept(&response) => Ok(response),
        Ok(response) => Err(Failure::status(action, &summary, &response)),
        Err(error) => Err(Failure::transport(action, &summary, error)),
    }
}

/// The outcome of a responder call, built one action at a time.
#[derive(Debug, Default)]
pub struct Report {
    actions: Vec<ActionReceipt>,
    failures: Vec<Failure>,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    /// Records that `action` was done; `reference` says where (a URL, an id, a label).
    pub fn done(&mut self, action: &str, reference: impl Into<String>) {
        self.actions.push(ActionReceipt {
            action: action.to_owned(),
            reference: reference.into(),
        });
    }

    /// Records that an action failed.
    pub fn failed(&mut self, failure: Failure) {
        self.failures.push(failure);
    }

    /// Records the result of `action`: done with a reference, or failed.
    pub fn record(&mut self, action: &str, result: Result<String, Failure>) {
        match result {
            Ok(reference) => self.done(action, reference),
            Err(failure) => self.failed(failure),
        }
    }

    /// The actions done so far.
    pub fn actions(&self) -> &[ActionReceipt] {
        &self.actions
    }

    /// The receipt when every action went through. Otherwise an error naming each failure,
    /// retryable only when every failure was: retrying a task whose comment was refused for
    /// good would fail again, while actions already done are idempotent or marked.
    pub fn finish(self) -> Result<Receipt, RespondError> {
        if self.failures.is_empty() {
            return Ok(Receipt {
                actions: self.actions,
            });
        }
        let retryable = self.failures.iter().all(|failure| failure.retryable);
        let details: Vec<String> = self
            .failures
            .iter()
            .map(|failure| format!("{}: {}", failure.action, failure.message))
            .collect();
        let done = if self.actions.is_empty() {
            String::new()
        } else {
            let done: Vec<&str> = self.actions.iter().map(|a| a.action.as_str()).collect();
            format!(" (done: {})", done.join(", "))
        };
        Err(RespondError {
            message: format!(
                "{} of {} actions failed{done}: {}",
                self.failures.len(),
                self.failures.len() + self.actions.len(),
                details.join("; ")
            ),
            retryable,
        })
    }
}

/// The hidden line that ends every comment a responder posts for the task `marker` and the
/// action `action`, e.g. `<!-- mecha:1f0c…:comment -->`. Markdown renderers hide it.
pub fn marker_line(marker: &str, action: &str) -> String {
    // `--` would end the HTML comment early and show the rest; task ids never contain it.
    let marker = marker.replace("--", "-");
    format!("<!-- mecha:{marker}:{action} -->")
}

/// `body` followed by a blank line and the marker line.
pub fn with_marker(body: &str, marker: &str, action: &str) -> String {
    format!("{}\n\n{}", body.trim_end(), marker_line(marker, action))
}

/// How far [`post_once`] looks for an earlier comment: 10 pages of 100 (the most GitHub and
/// GitLab return per page). A thread longer than that may get a second copy after a retry.
pub const MARKER_SEARCH_PAGES: u32 = 10;

/// Comments per page when searching for a marker: the most both providers allow.
pub const MARKER_SEARCH_PAGE_SIZE: usize = 100;

/// What [`post_once`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Posted {
    /// A comment carrying the marker line exists already; nothing was posted.
    Already,
    /// A new comment was posted; the provider's JSON reply.
    New(serde_json::Value),
}

/// Posts `body` with the marker line of (`marker`, `action`) to the comment collection at
/// `collection_url` (GitHub's `…/issues/{n}/comments`, GitLab's `…/notes`), unless a comment in
/// it already carries that line: a retry after a crash between posting and recording the
/// receipt then finds its own comment instead of posting a copy.
///
/// Both providers list a collection with `GET {collection_url}?per_page=100&page=k` as a JSON
/// array of objects with a `body`, and create with `POST {collection_url}` `{"body": …}`.
/// `headers` go on both requests.
pub fn post_once(
    http: &mut dyn Http,
    collection_url: &str,
    headers: &[(&str, &str)],
    action: &str,
    body: &str,
    marker: &str,
) -> Result<Posted, Failure> {
    let line = marker_line(marker, action);
    for page in 1..=MARKER_SEARCH_PAGES {
        let url = format!("{collection_url}?per_page={MARKER_SEARCH_PAGE_SIZE}&page={page}");
        let request = Request::new(Method::Get, url).headers(headers);
        let response = send_expecting_success(http, action, request)?;
        let Some(serde_json::Value::Array(comments)) = response.json() else {
            return Err(Failure {
                action: action.to_owned(),
                message: format!("listing {collection_url} did not return a JSON array"),
                retryable: true,
            });
        };
        let found = comments.iter().any(|comment| {
            comment["body"]
                .as_str()
                .is_some_and(|text| text.contains(&line))
        });
        if found {
            return Ok(Posted::Already);
        }
        if comments.len() < MARKER_SEARCH_PAGE_SIZE {
            break;
        }
    }
    let request = Request::new(Method::Post, collection_url)
        .headers(headers)
        .json(&serde_json::json!({ "body": with_marker(body, marker, action) }));
    let response = send_expecting_success(http, action, request)?;
    Ok(Posted::New(
        response.json().unwrap_or(serde_json::Value::Null),
    ))
}

/// The longest comment body a responder posts, in bytes, before its marker line: GitHub refuses
/// comments over 65536 characters, and this leaves room for the marker and the notice.
pub const MAX_BODY_BYTES: usize = 60_000;

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn cut_at(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `body` unchanged when it fits in [`MAX_BODY_BYTES`]; otherwise cut on a character boundary
/// and ended with a notice, the whole still within the limit.
pub fn cut(body: &str) -> String {
    if body.len() <= MAX_BODY_BYTES {
        return body.to_owned();
    }
    let notice = format!("\n\n*(truncated: {} bytes in total)*", body.len());
    format!("{}{notice}", cut_at(body, MAX_BODY_BYTES - notice.len()))
}

/// The comment proposing a commit: `**Suggested commit:** <message>`, a blank line and the diff
/// in a fenced `diff` block. A long diff is cut so the whole stays within [`MAX_BODY_BYTES`],
/// with the fence still closed and a notice after it.
pub fn commit_suggestion(message: &str, diff: &str) -> String {
    // A fence longer than any run of backticks in the diff, so the diff cannot close it.
    let longest_run = diff.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let diff = diff.trim_end_matches('\n');
    let head = format!("**Suggested commit:** {}\n\n{fence}diff\n", message.trim());
    let tail = format!("\n{fence}");
    let whole = format!("{head}{diff}{tail}");
    if whole.len() <= MAX_BODY_BYTES {
        return whole;
    }
    let notice = format!("\n\n*(diff truncated: {} bytes in total)*", diff.len());
    let room = MAX_BODY_BYTES.saturating_sub(head.len() + tail.len() + notice.len());
    let shown = cut_at(diff, room);
    // End on a whole line when one fits, so the last diff line shown is not half a line.
    let shown = match shown.rfind('\n') {
        Some(end) if end > 0 => &shown[..end],
        _ => shown,
    };
    format!("{head}{shown}{tail}{notice}")
}

pub mod chat;

pub use crate::http;
pub use crate::http::percent_encode;

#[cfg(test)]
mod tests {
    use super::http::Recording;
    use super::*;

    #[test]
    fn target_reads_number_from_integers_and_numeric_text() {
        let repo = || {
            event("pull_request.opened")
                .attr("repo_owner", "octo")
                .attr("repo_name", "hello")
        };
        let target = Target::of(&repo().attr("number", " 42 ").attr("head_sha", "abc")).unwrap();
        assert_eq!(target.number, Some(42));
        assert_eq!(target.head_sha.as_deref(), Some("abc"));
        assert_eq!(
            Target::of(&repo().attr("number", 7)).unwrap().number,
            Some(7)
        );
        assert_eq!(Target::of(&repo().attr("number", 0)).unwrap().number, None);
        assert_eq!(
            Target::of(&repo().attr("number", "x")).unwrap().number,
            None
        );
        let no_name = event("push").attr("repo_owner", "octo").attr("number", 1);
        assert!(Target::of(&no_name).is_none());
    }

    #[test]
    fn cut_keeps_char_boundaries_and_the_limit() {
        assert_eq!(cut_at("héllo", 2), "h");
        let long = "é".repeat(MAX_BODY_BYTES);
        let cut = cut(&long);
        assert!(cut.len() <= MAX_BODY_BYTES);
        assert!(cut.ends_with("bytes in total)*"));
    }

    #[test]
    fn finish_is_retryable_only_when_every_failure_is() {
        let mut report = Report::new();
        report.done("comment", "url");
        report.failed(Failure {
            action: "status".into(),
            message: "500".into(),
            retryable: true,
        });
        let error = Report {
            actions: report.actions.clone(),
            failures: report.failures.clone(),
        }
        .finish()
        .unwrap_err();
        assert!(error.retryable);
        assert!(
            error
                .message
                .contains("1 of 2 actions failed (done: comment)")
        );
        report.failed(Failure::invalid("label.add", "422"));
        assert!(!report.finish().unwrap_err().retryable);
    }

    #[test]
    fn post_once_stops_at_a_short_page() {
        let mut http = Recording::accepting();
        let posted = post_once(&mut http, "https://x.test/c", &[], "comment", "hi", "m1").unwrap();
        assert_eq!(posted, Posted::New(serde_json::json!({})));
        assert_eq!(http.requests.len(), 2);
        assert_eq!(http.requests[0].url, "https://x.test/c?per_page=100&page=1");
        let body = http.requests[1].body_json().unwrap();
        assert_eq!(body["body"], "hi\n\n<!-- mecha:m1:comment -->");
    }

    #[test]
    fn request_path_drops_scheme_and_host() {
        let request = Request::new(Method::Get, "https://h.test:8443/a/b?c=1");
        assert_eq!(request.path(), "/a/b?c=1");
        assert_eq!(Request::new(Method::Get, "https://h.test").path(), "/");
    }

    #[test]
    fn commit_suggestion_fences_backticks_in_the_diff() {
        let body = commit_suggestion("msg", "+```rust\n");
        assert!(body.starts_with("**Suggested commit:** msg\n\n````diff\n+```rust\n````"));
    }
}
