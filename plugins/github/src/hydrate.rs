//! Hydration: adds a pull request's diff and changed files to its event, for the worker's
//! prompt (`{{.diff}}`, `{{.file_list}}`).
//!
//! | attr | from |
//! |---|---|
//! | `diff`, `diff_truncated` | `GET /repos/{o}/{r}/compare/{base}...{head}` (`application/vnd.github.diff`), or `/pulls/{n}` when a SHA is missing |
//! | `file_list`, `file_count` | the compare in JSON (`files[].filename`), else `/pulls/{n}/files?per_page=100`, following `Link: rel="next"` |
//! | `diff_error`, `file_list_error` | the failed call, its status and the start of GitHub's reply |
//!
//! The compare of the event's own SHAs is preferred because it describes exactly the commits
//! the event was about, even when the pull request has moved on since.
//!
//! An API failure never fails the hydration: the task is still worth running without a diff,
//! so the failure goes into an `*_error` attr the prompt can mention and the operator can read.
//! The same holds for a slow API: all requests share a time budget ([`BUDGET`]) well inside the
//! host's deadline for the call, so a hydration ends with what it fetched and an error attr for
//! the rest, rather than being stopped by the host with nothing.
//! Everything here is a plain function over [`Http`], so it runs natively against a recording
//! fake; the host grants only the API origin and adds the token itself, so no request here
//! carries credentials.

use std::time::{Duration, Instant};

use mecha_plugin_sdk::http::{self, Http, Method, Request, Response};
use mecha_plugin_sdk::source::{Event, Value};

use crate::link;

/// GitHub.com's API, used when the `api_url` setting is not set.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// 500 KiB of diff at most: enough for a large review, while the prompt stays within what
/// agents take. A longer diff is cut, not dropped, since its start is still worth reviewing.
pub const MAX_DIFF_BYTES: usize = 500 * 1024;

/// Replies are read one KiB past [`MAX_DIFF_BYTES`] and no further: a 20 MB diff costs 501 KiB,
/// and a JSON compare that long (hundreds of files with their patches) is left for the paged
/// file list, whose pages are far smaller.
const MAX_BODY_BYTES: usize = MAX_DIFF_BYTES + 1024;

/// Ends a cut diff, so that neither the agent nor a reader takes it for the whole change.
pub const TRUNCATION_NOTICE: &str = "\n... (truncated)";

/// Enough of an error reply for GitHub's `{"message": …}`, little enough for an attr.
const ERROR_EXCERPT_BYTES: usize = 200;

/// GitHub's largest page of pull request files.
const FILES_PER_PAGE: u32 = 100;

/// 10 pages of 100: GitHub lists at most 3000 files, and a prompt gains little past 1000.
const MAX_FILE_PAGES: usize = 10;

const DIFF_MEDIA_TYPE: &str = "application/vnd.github.diff";
const JSON_MEDIA_TYPE: &str = "application/vnd.github+json";

/// 40 s for every request of one hydration together: the host stops the call at 60 s.
pub const BUDGET: Duration = Duration::from_secs(40);

/// The longest any one request may wait to connect or for a byte, so one stuck request leaves
/// time for the others.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The REST API version the requests are written against.
const API_VERSION: &str = "2022-11-28";

/// Adds the diff and file list of the pull request `event` is about, from the API at `api`
/// (without a trailing `/`). Events that are not about a pull request, or lack its repository
/// or number, come back unchanged without a request.
pub fn hydrate(http: &mut dyn Http, api: &str, event: Event) -> Event {
    hydrate_within(http, api, event, BUDGET)
}

/// [`hydrate`], with `budget` for all its requests: a request that would start after it is
/// spent is not made, and fails with a message saying so.
pub fn hydrate_within(http: &mut dyn Http, api: &str, mut event: Event, budget: Duration) -> Event {
    let Some(pull) = PullRequest::of(&event, api) else {
        return event;
    };
    let mut http = Budgeted {
        http,
        deadline: Instant::now().checked_add(budget),
        budget,
    };
    let http = &mut http;
    match diff(http, &pull) {
        Ok((diff, truncated)) => {
            event.set_attr("diff", diff);
            event.set_attr("diff_truncated", truncated);
        }
        Err(message) => {
            event.set_attr("diff", "");
            event.set_attr("diff_truncated", false);
            event.set_attr("diff_error", message);
        }
    }
    match file_list(http, api, &pull) {
        Ok(files) => {
            event.set_attr("file_list", files.join("\n"));
            event.set_attr("file_count", i64::try_from(files.len()).unwrap_or(i64::MAX));
        }
        Err(message) => {
            event.set_attr("file_list", "");
            event.set_attr("file_count", 0);
            event.set_attr("file_list_error", message);
        }
    }
    event
}

/// The pull request an event is about, as URLs.
struct PullRequest {
    /// `{api}/repos/{owner}/{name}`, escaped.
    repo: String,
    number: i64,
    /// `{base_sha}...{head_sha}`, escaped, when the event has both.
    range: Option<String>,
}

impl PullRequest {
    /// `None` unless the event is a `pull_request*` with a repository and a positive number.
    fn of(event: &Event, api: &str) -> Option<PullRequest> {
        if !event.event_type.starts_with("pull_request") {
            return None;
        }
        let number = match event.get_attr("number")? {
            Value::Integer(number) => *number,
            Value::Text(number) => number.trim().parse().ok()?,
            _ => return None,
        };
        if number <= 0 {
            return None;
        }
        let owner = non_blank(event, "repo_owner")?;
        let name = non_blank(event, "repo_name")?;
        let range = non_blank(event, "base_sha")
            .zip(non_blank(event, "head_sha"))
            .map(|(base, head)| {
                format!(
                    "{}...{}",
                    http::percent_encode(base),
                    http::percent_encode(head)
                )
            });
        Some(PullRequest {
            repo: format!(
                "{api}/repos/{}/{}",
                http::percent_encode(owner),
                http::percent_encode(name)
            ),
            number,
            range,
        })
    }

    fn compare_url(&self) -> Option<String> {
        let range = self.range.as_ref()?;
        Some(format!("{}/compare/{range}", self.repo))
    }

    fn pull_url(&self) -> String {
        format!("{}/pulls/{}", self.repo, self.number)
    }
}

/// A non-blank text attr, trimmed.
fn non_blank<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event
        .text_attr(name)
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// The diff, cut to [`MAX_DIFF_BYTES`], and whether it was cut.
fn diff(http: &mut Budgeted<'_>, pull: &PullRequest) -> Result<(String, bool), String> {
    let url = pull.compare_url().unwrap_or_else(|| pull.pull_url());
    let (_, response) = send(http, get(url, DIFF_MEDIA_TYPE))?;
    Ok(cut_diff(&String::from_utf8_lossy(&response.body)))
}

/// `diff` unchanged when it fits; otherwise its first [`MAX_DIFF_BYTES`] at most, ending on a
/// character boundary, followed by [`TRUNCATION_NOTICE`].
fn cut_diff(diff: &str) -> (String, bool) {
    if diff.len() <= MAX_DIFF_BYTES {
        return (diff.to_owned(), false);
    }
    let end = diff.floor_char_boundary(MAX_DIFF_BYTES);
    (format!("{}{TRUNCATION_NOTICE}", &diff[..end]), true)
}

/// The changed files' names: from the compare when it names any, else from the paged list.
fn file_list(
    http: &mut Budgeted<'_>,
    api: &str,
    pull: &PullRequest,
) -> Result<Vec<String>, String> {
    if let Some(url) = pull.compare_url() {
        // Any failure here only means the paged list is asked instead.
        let compared = send(http, get(url, JSON_MEDIA_TYPE))
            .and_then(|(call, response)| parse_json(&call, &response));
        if let Ok(compare) = compared {
            let files = filenames(&compare["files"]);
            if !files.is_empty() {
                return Ok(files);
            }
        }
    }
    paged_files(http, api, pull)
}

/// `/pulls/{n}/files`, following `Link: rel="next"` for up to [`MAX_FILE_PAGES`] pages, and
/// only to the API's own origin: the host would refuse another, and the link is GitHub's to
/// give, not the plugin's to trust.
fn paged_files(
    http: &mut Budgeted<'_>,
    api: &str,
    pull: &PullRequest,
) -> Result<Vec<String>, String> {
    let mut url = format!("{}/files?per_page={FILES_PER_PAGE}", pull.pull_url());
    let mut files = Vec::new();
    for _ in 0..MAX_FILE_PAGES {
        let (call, response) = send(http, get(url, JSON_MEDIA_TYPE))?;
        let page = parse_json(&call, &response)?;
        if !page.is_array() {
            return Err(format!("{call}: the reply is not a JSON array of files"));
        }
        files.extend(filenames(&page));
        let next = response
            .header("link")
            .and_then(link::next)
            .filter(|next| same_origin(next, api));
        match next {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    Ok(files)
}

/// The `filename` of each object in a JSON array; anything else is skipped.
fn filenames(files: &serde_json::Value) -> Vec<String> {
    let Some(files) = files.as_array() else {
        return Vec::new();
    };
    files
        .iter()
        .filter_map(|file| file["filename"].as_str())
        .map(str::to_owned)
        .collect()
}

fn same_origin(url: &str, api: &str) -> bool {
    match (http::origin(url), http::origin(api)) {
        (Some(url), Some(api)) => url.eq_ignore_ascii_case(api),
        _ => false,
    }
}

/// A `GET` of `url` accepting `media_type`, read up to [`MAX_BODY_BYTES`]. No `Authorization`:
/// the host adds it for the granted origin.
fn get(url: String, media_type: &str) -> Request {
    Request::new(Method::Get, url)
        .headers(&[
            ("Accept", media_type),
            ("User-Agent", "mecha"),
            ("X-GitHub-Api-Version", API_VERSION),
        ])
        .limit(MAX_BODY_BYTES)
}

/// The client with the hydration's time budget.
struct Budgeted<'a> {
    http: &'a mut dyn Http,
    /// `None` when the budget reaches past what the clock can count: no deadline.
    deadline: Option<Instant>,
    budget: Duration,
}

/// Sends `request` within the budget; a `200` reply comes back with the call's name
/// (`GET /path`) for later messages, anything else is an error naming the call and, for a
/// status, quoting its reply.
fn send(http: &mut Budgeted<'_>, request: Request) -> Result<(String, Response), String> {
    let call = format!("{} {}", request.method, request.path());
    let left = match http.deadline {
        Some(deadline) => deadline.saturating_duration_since(Instant::now()),
        None => REQUEST_TIMEOUT,
    };
    if left.is_zero() {
        return Err(format!(
            "{call}: not sent, the hydration's {} s are spent",
            http.budget.as_secs()
        ));
    }
    match http.http.send(request.timeout(left.min(REQUEST_TIMEOUT))) {
        Err(error) => Err(format!("{call}: {error}")),
        Ok(response) if response.status != 200 => Err(format!(
            "{call}: {}: {}",
            response.status_line(),
            excerpt(&response.body)
        )),
        Ok(response) => Ok((call, response)),
    }
}

/// The reply of `call` as JSON; one cut at [`MAX_BODY_BYTES`] is refused rather than misread.
fn parse_json(call: &str, response: &Response) -> Result<serde_json::Value, String> {
    if response.truncated {
        return Err(format!("{call}: the reply is over {MAX_BODY_BYTES} bytes"));
    }
    serde_json::from_slice(&response.body)
        .map_err(|error| format!("{call}: the reply is not JSON: {error}"))
}

/// The start of an error reply: at most [`ERROR_EXCERPT_BYTES`], cut on a character boundary.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    text[..text.floor_char_boundary(ERROR_EXCERPT_BYTES)].to_owned()
}

#[cfg(test)]
mod tests;
