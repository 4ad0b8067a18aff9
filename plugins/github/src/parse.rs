//! GitHub payloads to events, in plain Rust so that it runs (and is benchmarked) natively.
//!
//! Only the fields mecha uses are deserialized; serde skips the rest of the (often 30 KB) payload
//! without building it. Every field is optional: GitHub adds event types and fields over time, and
//! a payload this parser does not know still becomes an event with whatever attrs it can find.

use mecha_plugin_sdk::source::{self, Error, Event};
use serde::Deserialize;

/// Parses one delivery of the event `event_name` (the `X-GitHub-Event` header).
///
/// The type is `<event>.<action>` when the payload has an action; the actor is the sender's login
/// and the subject the repository's full name.
pub fn parse(event_name: &str, delivery: Option<&str>, body: &[u8]) -> Result<Event, Error> {
    if event_name.is_empty() {
        return Err(Error::BadRequest("X-GitHub-Event is empty".into()));
    }
    let payload: Payload = serde_json::from_slice(body).map_err(|err| {
        Error::BadRequest(format!(
            "{event_name} payload is not a valid GitHub event: {err}"
        ))
    })?;
    let event_type = match &payload.action {
        Some(action) => format!("{event_name}.{action}"),
        None => event_name.to_owned(),
    };
    let actor = payload
        .sender
        .as_ref()
        .map(|user| user.login.clone())
        .unwrap_or_default();
    let mut event = source::event(event_type).actor(actor.clone());
    if let Some(delivery) = delivery.filter(|delivery| !delivery.is_empty()) {
        event = event.delivery_id(delivery);
    }
    if !actor.is_empty() {
        event.set_attr("sender", actor);
    }
    if let Some(repository) = &payload.repository {
        event.subject = repository.full_name.clone();
        if let Some((owner, name)) = repository.full_name.split_once('/') {
            event.set_attr("repo_owner", owner);
            event.set_attr("repo_name", name);
        }
    }
    if let Some(installation) = &payload.installation {
        event.set_attr("installation_id", installation.id);
    }
    // Generic parts first, the event's own object last, so that e.g. a review's `url` wins over
    // its pull request's.
    if let Some(issue) = &payload.issue {
        issue.add_to(&mut event);
    }
    if let Some(pull_request) = &payload.pull_request {
        pull_request.add_to(&mut event);
    }
    if let Some(number) = payload.number {
        event.set_attr("number", number);
    }
    if let Some(label) = &payload.label {
        event.set_attr("label", label.name.as_str());
    }
    if let Some(comment) = &payload.comment {
        comment.add_to(&mut event);
    }
    if let Some(review) = &payload.review {
        review.add_to(&mut event);
    }
    if let Some(release) = &payload.release {
        release.add_to(&mut event);
    }
    if let Some(run) = &payload.workflow_run {
        run.add_to(&mut event);
    }
    if let Some(run) = &payload.check_run {
        run.add_to(&mut event);
    }
    if event_name == "push" {
        payload.add_push_to(&mut event);
    }
    if let Some(zen) = &payload.zen {
        event.set_attr("zen", zen.as_str());
    }
    Ok(event)
}

#[derive(Deserialize)]
struct Payload {
    action: Option<String>,
    number: Option<i64>,
    sender: Option<User>,
    repository: Option<Repository>,
    installation: Option<Installation>,
    pull_request: Option<PullRequest>,
    issue: Option<Issue>,
    comment: Option<Comment>,
    review: Option<Review>,
    label: Option<Label>,
    release: Option<Release>,
    workflow_run: Option<WorkflowRun>,
    check_run: Option<CheckRun>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    before: Option<String>,
    after: Option<String>,
    compare: Option<String>,
    forced: Option<bool>,
    commits: Option<Vec<PushCommit>>,
    zen: Option<String>,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Installation {
    id: i64,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
struct GitRef {
    #[serde(rename = "ref")]
    branch: Option<String>,
    sha: Option<String>,
}

#[derive(Deserialize)]
struct PullRequest {
    number: Option<i64>,
    title: Option<String>,
    body: Option<String>,
    state: Option<String>,
    html_url: Option<String>,
    draft: Option<bool>,
    merged: Option<bool>,
    user: Option<User>,
    head: Option<GitRef>,
    base: Option<GitRef>,
    #[serde(default)]
    labels: Vec<Label>,
}

impl PullRequest {
    fn add_to(&self, event: &mut Event) {
        set_opt(event, "number", self.number);
        set_text(event, "title", &self.title);
        set_text(event, "body", &self.body);
        set_text(event, "state", &self.state);
        set_text(event, "url", &self.html_url);
        set_opt(event, "draft", self.draft);
        set_opt(event, "merged", self.merged);
        if let Some(user) = &self.user {
            event.set_attr("author", user.login.as_str());
        }
        if let Some(head) = &self.head {
            set_text(event, "head_branch", &head.branch);
            set_text(event, "head_sha", &head.sha);
            set_text(event, "ref", &head.sha);
        }
        if let Some(base) = &self.base {
            set_text(event, "base_branch", &base.branch);
            set_text(event, "base_sha", &base.sha);
        }
        event.set_attr("labels", join_labels(&self.labels));
    }
}

#[derive(Deserialize)]
struct Issue {
    number: Option<i64>,
    title: Option<String>,
    body: Option<String>,
    state: Option<String>,
    html_url: Option<String>,
    user: Option<User>,
    #[serde(default)]
    labels: Vec<Label>,
    pull_request: Option<serde::de::IgnoredAny>,
}

impl Issue {
    fn add_to(&self, event: &mut Event) {
        set_opt(event, "number", self.number);
        set_text(event, "title", &self.title);
        set_text(event, "body", &self.body);
        set_text(event, "state", &self.state);
        set_text(event, "url", &self.html_url);
        if let Some(user) = &self.user {
            event.set_attr("author", user.login.as_str());
        }
        event.set_attr("labels", join_labels(&self.labels));
        event.set_attr("is_pull_request", self.pull_request.is_some());
    }
}

#[derive(Deserialize)]
struct Comment {
    id: Option<i64>,
    body: Option<String>,
    html_url: Option<String>,
    path: Option<String>,
    line: Option<i64>,
}

impl Comment {
    fn add_to(&self, event: &mut Event) {
        set_text(event, "comment", &self.body);
        set_opt(event, "comment_id", self.id);
        set_text(event, "url", &self.html_url);
        set_text(event, "path", &self.path);
        set_opt(event, "line", self.line);
    }
}

#[derive(Deserialize)]
struct Review {
    id: Option<i64>,
    body: Option<String>,
    state: Option<String>,
    html_url: Option<String>,
    commit_id: Option<String>,
}

impl Review {
    fn add_to(&self, event: &mut Event) {
        set_opt(event, "review_id", self.id);
        set_text(event, "review", &self.body);
        set_text(event, "review_state", &self.state);
        set_text(event, "url", &self.html_url);
        set_text(event, "head_sha", &self.commit_id);
    }
}

#[derive(Deserialize)]
struct Release {
    tag_name: Option<String>,
    name: Option<String>,
    body: Option<String>,
    html_url: Option<String>,
    draft: Option<bool>,
    prerelease: Option<bool>,
    target_commitish: Option<String>,
}

impl Release {
    fn add_to(&self, event: &mut Event) {
        set_text(event, "tag", &self.tag_name);
        set_text(event, "title", &self.name);
        set_text(event, "body", &self.body);
        set_text(event, "url", &self.html_url);
        set_opt(event, "draft", self.draft);
        set_opt(event, "prerelease", self.prerelease);
        set_text(event, "ref", &self.target_commitish);
    }
}

#[derive(Deserialize)]
struct WorkflowRun {
    id: Option<i64>,
    name: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    head_sha: Option<String>,
    head_branch: Option<String>,
    html_url: Option<String>,
    event: Option<String>,
    run_attempt: Option<i64>,
}

impl WorkflowRun {
    fn add_to(&self, event: &mut Event) {
        set_opt(event, "run_id", self.id);
        set_text(event, "workflow", &self.name);
        set_text(event, "status", &self.status);
        set_text(event, "conclusion", &self.conclusion);
        set_text(event, "head_sha", &self.head_sha);
        set_text(event, "ref", &self.head_sha);
        set_text(event, "head_branch", &self.head_branch);
        set_text(event, "url", &self.html_url);
        set_text(event, "trigger", &self.event);
        set_opt(event, "run_attempt", self.run_attempt);
    }
}

#[derive(Deserialize)]
struct CheckRun {
    id: Option<i64>,
    name: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    head_sha: Option<String>,
    html_url: Option<String>,
    #[serde(default)]
    pull_requests: Vec<CheckRunPullRequest>,
}

#[derive(Deserialize)]
struct CheckRunPullRequest {
    number: Option<i64>,
}

impl CheckRun {
    fn add_to(&self, event: &mut Event) {
        set_opt(event, "check_run_id", self.id);
        set_text(event, "check_name", &self.name);
        set_text(event, "status", &self.status);
        set_text(event, "conclusion", &self.conclusion);
        set_text(event, "head_sha", &self.head_sha);
        set_text(event, "ref", &self.head_sha);
        set_text(event, "url", &self.html_url);
        if let Some(number) = self.pull_requests.first().and_then(|pr| pr.number) {
            event.set_attr("number", number);
        }
    }
}

#[derive(Deserialize)]
struct PushCommit {
    id: Option<String>,
    message: Option<String>,
}

impl Payload {
    /// `ref`, `head_sha` (= `after`), `compare_url`, and one line per commit: the first eight
    /// characters of its id, a space and its message.
    fn add_push_to(&self, event: &mut Event) {
        set_text(event, "ref", &self.git_ref);
        set_text(event, "head_sha", &self.after);
        set_text(event, "before", &self.before);
        set_text(event, "compare_url", &self.compare);
        set_opt(event, "forced", self.forced);
        let commits: Vec<String> = self
            .commits
            .iter()
            .flatten()
            .map(|commit| {
                let id = commit.id.as_deref().unwrap_or("");
                let short = id.get(..8).unwrap_or(id);
                format!("{short} {}", commit.message.as_deref().unwrap_or(""))
            })
            .collect();
        event.set_attr("commits", commits.join("\n"));
    }
}

fn set_text(event: &mut Event, name: &str, value: &Option<String>) {
    if let Some(value) = value {
        event.set_attr(name, value.as_str());
    }
}

fn set_opt<T: Into<source::Value>>(event: &mut Event, name: &str, value: Option<T>) {
    if let Some(value) = value {
        event.set_attr(name, value);
    }
}

fn join_labels(labels: &[Label]) -> String {
    labels
        .iter()
        .map(|label| label.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_lists_one_line_per_commit() {
        let body = br#"{"ref":"refs/heads/main","after":"abc","compare":"https://x",
            "commits":[{"id":"0123456789abcdef","message":"fix: a"},{"id":"short","message":"b"}],
            "repository":{"full_name":"o/r"},"sender":{"login":"octo"}}"#;
        let event = parse("push", Some("d"), body).expect("valid push");
        assert_eq!(event.event_type, "push");
        assert_eq!(event.text_attr("commits"), Some("01234567 fix: a\nshort b"));
        assert_eq!(event.text_attr("head_sha"), Some("abc"));
        assert_eq!(event.subject, "o/r");
    }

    #[test]
    fn unknown_events_still_get_what_can_be_found() {
        let body = br#"{"action":"created","discussion":{"number":7},"sender":{"login":"a"}}"#;
        let event = parse("discussion", None, body).expect("valid");
        assert_eq!(event.event_type, "discussion.created");
        assert_eq!(event.actor, "a");
        assert_eq!(event.subject, "");
        assert!(event.delivery_id.is_none());
    }

    #[test]
    fn malformed_bodies_are_bad_requests_never_panics() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"{\"sender\":5}",
            b"{\"number\":\"seven\"}",
            b"{\"pull_request\":{\"head\":[]}}",
            &[0xff, 0xfe, 0x00][..],
        ] {
            assert!(
                matches!(parse("push", None, body), Err(Error::BadRequest(_))),
                "{body:?}"
            );
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse("push", None, deep.as_bytes()).is_err());
        assert!(matches!(parse("", None, b"{}"), Err(Error::BadRequest(_))));
    }
}
