//! The GitLab REST calls for one allowed result.
//!
//! The project is addressed by its URL-encoded path (`group/sub/project` →
//! `group%2Fsub%2Fproject`), the thread by its iid:
//!
//! | action | when | call |
//! |---|---|---|
//! | `comment` | `comment.body`, or `output` when there is no comment, non-blank; a number | `POST /projects/{p}/{thread}/{n}/notes` `{"body"}` |
//! | `status` | `status` and `head_sha` | `POST /projects/{p}/statuses/{sha}` `{"state","description","name":"mecha"}` |
//! | `label.add`, `label.remove` | a number; one call for all | `PUT /projects/{p}/{thread}/{n}` `{"add_labels":"a,b","remove_labels":"c"}` |
//! | `commit` | a non-blank diff and a number | a note `**Suggested commit:** …` with the diff fenced |
//!
//! `{thread}` is `merge_requests` when the event is about a merge request — its type starts with
//! `merge_request`, its attribute `noteable_type` is `MergeRequest` (a note on one), or it is a
//! pipeline (whose `number` is that of its merge request) — and `issues` otherwise. The reference Go mecha sent every note event to merge requests, which
//! posted comments on issue notes to the merge request with the same number.
//!
//! Notes end with the task's marker line and are skipped when one carrying it exists (see
//! [`responder::post_once`]); labels and statuses are idempotent by nature. An event without
//! `repo_owner` and `repo_name` has nowhere to write: the receipt is empty.

use mecha_plugin_sdk::responder::{
    self, Failure, Posted, Receipt, Report, RespondError, StatusState, StoredEvent, Target,
    TaskResult,
    http::{Http, Method, Request, Response},
    percent_encode,
};

/// Headers on every request; `Content-Type: application/json` is added to those with a body.
/// No `PRIVATE-TOKEN`: the host adds it.
pub const HEADERS: [(&str, &str); 1] = [("User-Agent", "mecha")];

/// The `name` of the statuses mecha sets, so a new status replaces the previous one.
const STATUS_NAME: &str = "mecha";

/// The commit status states of GitLab that the result contract's states map to.
pub fn gitlab_state(state: StatusState) -> &'static str {
    match state {
        StatusState::Error | StatusState::Failure => "failed",
        StatusState::Pending => "pending",
        StatusState::Success => "success",
    }
}

/// Which kind of thread `event` is about: `merge_requests` or `issues` (see the module docs).
pub fn thread_kind(event: &StoredEvent) -> &'static str {
    let event = &event.event;
    if event.event_type.starts_with("merge_request")
        || event.event_type == "pipeline"
        || event.text_attr("noteable_type") == Some("MergeRequest")
    {
        "merge_requests"
    } else {
        "issues"
    }
}

/// The REST API under `base`: GitLab serves it at `/api/v4`, which a bare instance URL
/// (`https://gitlab.com`, what the host passes when `responders.gitlab.api_url` is unset, or an
/// operator's `https://gitlab.example.com`) gets added; a base with a path is used as given.
pub fn rest_api(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    if after_scheme.contains('/') {
        base.to_owned()
    } else {
        format!("{base}/api/v4")
    }
}

/// Writes `allowed` back to the merge request or issue of `event`, through `api` (the API base,
/// e.g. `https://gitlab.com/api/v4`, without a trailing `/`). Every action is attempted; see
/// [`Report::finish`] for the error.
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
    let project = format!(
        "{api}/projects/{}",
        percent_encode(&format!("{}/{}", target.owner, target.name))
    );
    let thread = target
        .number
        .map(|number| format!("{project}/{}/{number}", thread_kind(event)));

    if let (Some(thread), Some(body)) = (&thread, responder::comment_text(allowed)) {
        let result = post_note(http, thread, "comment", &responder::cut(body), marker);
        report.record("comment", result);
    }

    if let (Some(status), Some(sha)) = (&allowed.status, &target.head_sha) {
        let result = StatusState::parse(&status.state).and_then(|state| {
            set_status(
                http,
                &project,
                sha,
                gitlab_state(state),
                &status.description,
            )
        });
        report.record("status", result);
    }

    if let (Some(thread), Some(labels)) = (&thread, &allowed.labels) {
        update_labels(http, &mut report, thread, &labels.add, &labels.remove);
    }

    if let (Some(thread), Some(commit)) = (&thread, &allowed.commit)
        && !commit.diff.trim().is_empty()
    {
        let body = responder::commit_suggestion(&commit.message, &commit.diff);
        let result = post_note(http, thread, "commit", &body, marker);
        report.record("commit", result);
    }

    report.finish()
}

/// Posts a note on `thread` unless the task already did; the reference is the note's id.
fn post_note(
    http: &mut dyn Http,
    thread: &str,
    action: &str,
    body: &str,
    marker: &str,
) -> Result<String, Failure> {
    let notes = format!("{thread}/notes");
    Ok(
        match responder::post_once(http, &notes, &HEADERS, action, body, marker)? {
            Posted::Already => "already posted".to_owned(),
            Posted::New(reply) => match &reply["id"] {
                serde_json::Value::Number(id) => id.to_string(),
                _ => "posted".to_owned(),
            },
        },
    )
}

/// Sets the `mecha` status of `sha` to `state`. GitLab refuses to move a status to the state it
/// is already in (`400 Cannot transition status via :enqueue from :pending`); that is the state
/// asked for, so it counts as done and a retried task does not fail on its own earlier status.
fn set_status(
    http: &mut dyn Http,
    project: &str,
    sha: &str,
    state: &str,
    description: &str,
) -> Result<String, Failure> {
    let request = Request::new(
        Method::Post,
        format!("{project}/statuses/{}", percent_encode(sha)),
    )
    .headers(&HEADERS)
    .json(&serde_json::json!({
        "state": state,
        "description": description,
        "name": STATUS_NAME,
    }));
    let set_or_already = |response: &Response| response.status < 300 || already_in(response, state);
    responder::send_expecting(http, "status", request, set_or_already)?;
    Ok(state.to_owned())
}

fn already_in(response: &Response, state: &str) -> bool {
    let body = String::from_utf8_lossy(&response.body);
    response.status == 400
        && body.contains("Cannot transition status")
        && body.contains(&format!("from :{state}"))
}

/// Adds and removes labels in one `PUT`. GitLab takes them comma-separated, so a label with a
/// comma would become two: such a request is refused before it is sent.
fn update_labels(
    http: &mut dyn Http,
    report: &mut Report,
    thread: &str,
    add: &[String],
    remove: &[String],
) {
    let add: Vec<&str> = add
        .iter()
        .map(|label| label.trim())
        .filter(|label| !label.is_empty())
        .collect();
    let remove: Vec<&str> = remove
        .iter()
        .map(|label| label.trim())
        .filter(|label| !label.is_empty())
        .collect();
    if add.is_empty() && remove.is_empty() {
        return;
    }
    if let Some(label) = add.iter().chain(&remove).find(|label| label.contains(',')) {
        report.failed(Failure::invalid(
            "labels",
            format!("GitLab label names cannot contain commas: `{label}`"),
        ));
        return;
    }
    let mut body = serde_json::Map::new();
    if !add.is_empty() {
        body.insert("add_labels".into(), add.join(",").into());
    }
    if !remove.is_empty() {
        body.insert("remove_labels".into(), remove.join(",").into());
    }
    let request = Request::new(Method::Put, thread)
        .headers(&HEADERS)
        .json(&serde_json::Value::Object(body));
    match responder::send_expecting_success(http, "labels", request) {
        Ok(_) => {
            for label in add {
                report.done("label.add", label);
            }
            for label in remove {
                report.done("label.remove", label);
            }
        }
        Err(failure) => report.failed(failure),
    }
}

#[cfg(test)]
mod tests;
