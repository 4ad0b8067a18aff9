//! The GitHub REST calls for one allowed result.
//!
//! | action | when | call |
//! |---|---|---|
//! | `comment` | `comment.body`, or `output` when there is no comment, non-blank; a number | `POST /repos/{o}/{r}/issues/{n}/comments` `{"body"}` |
//! | `status` | `status` and `head_sha` | `POST /repos/{o}/{r}/statuses/{sha}` `{"state","description","context":"mecha"}` |
//! | `label.add` | a number; one call per label | `POST /repos/{o}/{r}/issues/{n}/labels` `{"labels":[l]}` |
//! | `label.remove` | a number; one call per label | `DELETE /repos/{o}/{r}/issues/{n}/labels/{l}` (404: already absent) |
//! | `commit` | a non-blank diff and a number | a comment `**Suggested commit:** …` with the diff fenced |
//!
//! Comments end with the task's marker line and are skipped when one carrying it exists (see
//! [`responder::post_once`]); labels and statuses are idempotent by nature. An event without
//! `repo_owner` and `repo_name` (another provider's, or one about no repository) has nowhere to
//! write: the receipt is empty. Without a `number` (a push) only the status can be set.

use mecha_plugin_sdk::responder::{
    self, Failure, Posted, Receipt, Report, RespondError, StatusState, StoredEvent, Target,
    TaskResult,
    http::{Http, Method, Request, Response},
    percent_encode,
};

/// Headers on every request; `Content-Type: application/json` is added to those with a body.
/// No `Authorization`: the host adds it.
pub const HEADERS: [(&str, &str); 3] = [
    ("Accept", "application/vnd.github+json"),
    ("User-Agent", "mecha"),
    ("X-GitHub-Api-Version", "2022-11-28"),
];

/// The `context` of the statuses mecha sets, so a new status replaces the previous one.
const STATUS_CONTEXT: &str = "mecha";

/// Writes `allowed` back to the pull request or issue of `event`, through `api` (the API base
/// without a trailing `/`). Every action is attempted; see [`Report::finish`] for the error.
pub fn write_back(
    http: &mut dyn Http,
    api: &str,
    event: &StoredEvent,
    allowed: &TaskResult,
    marker: &str,
) -> Result<Receipt, RespondError> {
    let mut report = Report::new();
    let Some(target) = Target::of(&event.event) else {
        return report.finish();
    };
    let repo = format!(
        "{api}/repos/{}/{}",
        percent_encode(&target.owner),
        percent_encode(&target.name)
    );
    let issue = target
        .number
        .map(|number| format!("{repo}/issues/{number}"));

    if let (Some(issue), Some(body)) = (&issue, responder::comment_text(allowed)) {
        let result = post_comment(http, issue, "comment", &responder::cut(body), marker);
        report.record("comment", result);
    }

    if let (Some(status), Some(sha)) = (&allowed.status, &target.head_sha) {
        let result = StatusState::parse(&status.state).and_then(|state| {
            let request = Request::new(
                Method::Post,
                format!("{repo}/statuses/{}", percent_encode(sha)),
            )
            .headers(&HEADERS)
            .json(&serde_json::json!({
                "state": state.as_str(),
                "description": status.description,
                "context": STATUS_CONTEXT,
            }));
            responder::send_expecting_success(http, "status", request)?;
            Ok(state.as_str().to_owned())
        });
        report.record("status", result);
    }

    if let (Some(issue), Some(labels)) = (&issue, &allowed.labels) {
        for label in labels.add.iter().filter(|label| !label.trim().is_empty()) {
            let request = Request::new(Method::Post, format!("{issue}/labels"))
                .headers(&HEADERS)
                .json(&serde_json::json!({ "labels": [label] }));
            let result = responder::send_expecting_success(http, "label.add", request);
            report.record("label.add", result.map(|_| label.clone()));
        }
        for label in labels
            .remove
            .iter()
            .filter(|label| !label.trim().is_empty())
        {
            let result = remove_label(http, issue, label);
            report.record("label.remove", result.map(|()| label.clone()));
        }
    }

    if let (Some(issue), Some(commit)) = (&issue, &allowed.commit)
        && !commit.diff.trim().is_empty()
    {
        let body = responder::commit_suggestion(&commit.message, &commit.diff);
        let result = post_comment(http, issue, "commit", &body, marker);
        report.record("commit", result);
    }

    report.finish()
}

/// Posts a comment on `issue` unless the task already did; the reference is its `html_url`.
fn post_comment(
    http: &mut dyn Http,
    issue: &str,
    action: &str,
    body: &str,
    marker: &str,
) -> Result<String, Failure> {
    let comments = format!("{issue}/comments");
    Ok(
        match responder::post_once(http, &comments, &HEADERS, action, body, marker)? {
            Posted::Already => "already posted".to_owned(),
            Posted::New(reply) => match (&reply["html_url"], &reply["id"]) {
                (serde_json::Value::String(url), _) => url.clone(),
                (_, serde_json::Value::Number(id)) => id.to_string(),
                _ => "posted".to_owned(),
            },
        },
    )
}

/// Removes `label`; GitHub's 404 means it was not there, which is the state asked for.
fn remove_label(http: &mut dyn Http, issue: &str, label: &str) -> Result<(), Failure> {
    let request = Request::new(
        Method::Delete,
        format!("{issue}/labels/{}", percent_encode(label)),
    )
    .headers(&HEADERS);
    let absent_or_removed = |response: &Response| response.status < 300 || response.status == 404;
    responder::send_expecting(http, "label.remove", request, absent_or_removed).map(|_| ())
}

#[cfg(test)]
mod tests;
