//! GitLab hooks to events, in plain Rust so that it runs (and is fuzzed) natively.
//!
//! [`request`] does everything after the host has checked the token: it reads the headers,
//! parses the body and maps it to one event. Bodies are read into serde structs whose fields are
//! all optional, so serde skips what mecha does not use without building it, a field GitLab
//! leaves out is just a missing attr, and a hook this parser does not know still becomes an event.
//!
//! # Event types
//!
//! The type comes from the `X-Gitlab-Event` header:
//!
//! | `X-Gitlab-Event` | type |
//! |---|---|
//! | `Merge Request Hook` | `merge_request.<action>` |
//! | `Push Hook` | `push` |
//! | `Tag Push Hook` | `tag_push` |
//! | `Note Hook`, `Confidential Note Hook` | `note` |
//! | `Issue Hook`, `Confidential Issue Hook` | `issue.<action>` |
//! | `Pipeline Hook` | `pipeline` |
//! | `Job Hook` | `job` |
//! | `Release Hook` | `release.<action>` |
//! | anything else, e.g. `Wiki Page Hook` | `wiki_page.<action>` |
//!
//! `<action>` is `object_attributes.action` (the top-level `action` for releases); without one,
//! the type is the bare name. Pipelines and jobs change status many times per run, so their
//! status is the attr `status` rather than part of the type. Other hooks are named by their
//! header, lower-cased, its words joined by `_` and a trailing `_hook` dropped. Confidential notes
//! and issues get the attr `confidential` = `true` on top of the usual ones, so that rules written
//! for notes and issues see them while still being able to tell them apart.
//!
//! # Common attrs
//!
//! - actor: `user_username`, else `user.username`, else `user_name`; also the attr `sender`.
//! - subject: `project.path_with_namespace`, split at its first `/` into `repo_owner` and
//!   `repo_name` (`group/sub/project` → `group` and `sub/project`).
//! - `project_id`: the top-level `project_id`, else `project.id`.
//! - delivery id: `X-Gitlab-Event-UUID`, else `X-Gitlab-Instance/X-Request-Id` when a request
//!   id is set.
//!
//! The attrs of each hook are listed in the `hooks` module.

mod hooks;

use mecha_plugin_sdk::source::{self, Error, Event, Request};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The header that names the hook, e.g. `Merge Request Hook`.
pub const EVENT_HEADER: &str = "X-Gitlab-Event";

/// The id GitLab gives each delivery (GitLab 15.x and later); kept across redeliveries.
const UUID_HEADER: &str = "X-Gitlab-Event-UUID";

/// The instance URL and request id, which together identify a delivery from older GitLabs.
const INSTANCE_HEADER: &str = "X-Gitlab-Instance";
const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// Parses a delivery whose token the host has already checked into its one event.
///
/// A missing or blank `X-Gitlab-Event`, or a body that is not a JSON object of the expected
/// shape, is a `bad-request` saying which.
pub fn request(request: &Request) -> Result<Vec<Event>, Error> {
    let hook = Hook::from_header(request.required_header(EVENT_HEADER)?)?;
    let body = request.body.as_slice();
    let mut event = match &hook {
        Hook::MergeRequest => hook_event::<hooks::MergeRequestHook>("merge_request", body),
        Hook::Push => hook_event::<hooks::PushHook>("push", body),
        Hook::TagPush => hook_event::<hooks::PushHook>("tag_push", body),
        Hook::Note { .. } => hook_event::<hooks::NoteHook>("note", body),
        Hook::Issue { .. } => hook_event::<hooks::IssueHook>("issue", body),
        Hook::Pipeline => hook_event::<hooks::PipelineHook>("pipeline", body),
        Hook::Job => hook_event::<hooks::JobHook>("job", body),
        Hook::Release => hook_event::<hooks::ReleaseHook>("release", body),
        Hook::Other(name) => hook_event::<hooks::OtherHook>(name, body),
    }?;
    let envelope: Envelope = from_body(body)?;
    envelope.add_to(&mut event);
    if let Hook::Note { confidential: true } | Hook::Issue { confidential: true } = hook {
        event.set_attr("confidential", true);
    }
    event.delivery_id = delivery_id(request);
    Ok(vec![event])
}

/// The hook named by `X-Gitlab-Event`, which decides the type and how the body is read.
#[derive(Debug, PartialEq)]
enum Hook {
    MergeRequest,
    Push,
    TagPush,
    Note {
        confidential: bool,
    },
    Issue {
        confidential: bool,
    },
    Pipeline,
    Job,
    Release,
    /// Any other hook, by the type name derived from its header.
    Other(String),
}

impl Hook {
    fn from_header(header: &str) -> Result<Hook, Error> {
        let header = header.trim();
        if header.is_empty() {
            return Err(Error::BadRequest(format!("{EVENT_HEADER} is empty")));
        }
        Ok(match header {
            "Merge Request Hook" => Hook::MergeRequest,
            "Push Hook" => Hook::Push,
            "Tag Push Hook" => Hook::TagPush,
            "Note Hook" => Hook::Note {
                confidential: false,
            },
            "Confidential Note Hook" => Hook::Note { confidential: true },
            "Issue Hook" => Hook::Issue {
                confidential: false,
            },
            "Confidential Issue Hook" => Hook::Issue { confidential: true },
            "Pipeline Hook" => Hook::Pipeline,
            "Job Hook" => Hook::Job,
            "Release Hook" => Hook::Release,
            other => Hook::Other(type_name(other)),
        })
    }
}

/// `Wiki Page Hook` → `wiki_page`: lower-cased, words joined by `_`, a trailing `_hook` dropped.
fn type_name(header: &str) -> String {
    let name = header
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase();
    match name.strip_suffix("_hook") {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => name,
    }
}

/// The part of one hook's payload that depends on its kind.
trait HookPayload: DeserializeOwned {
    /// The action that suffixes the event type; `None` for hooks typed by name alone.
    fn action(&self) -> Option<&str> {
        None
    }

    /// Adds the hook's own attrs (listed in the `hooks` module).
    fn add_to(&self, event: &mut Event);
}

/// Reads `body` as the payload `P` of the hook whose type is `name` (plus its action).
fn hook_event<P: HookPayload>(name: &str, body: &[u8]) -> Result<Event, Error> {
    let payload: P = from_body(body)?;
    let event_type = match payload.action().filter(|action| !action.is_empty()) {
        Some(action) => format!("{name}.{action}"),
        None => name.to_owned(),
    };
    let mut event = source::event(event_type);
    payload.add_to(&mut event);
    Ok(event)
}

/// Deserializes a body that must be a JSON object into `T`.
///
/// serde lets a struct be written as a JSON array of its fields, so the opening `{` is checked
/// here: a body like `[null, null]` is no GitLab hook.
fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(Error::BadRequest("body must be a JSON object".into()));
    }
    serde_json::from_slice(body)
        .map_err(|err| Error::BadRequest(format!("body is not a valid GitLab hook: {err}")))
}

/// The fields every hook shares: who did it and in which project.
#[derive(Deserialize)]
struct Envelope {
    user_username: Option<String>,
    user_name: Option<String>,
    user: Option<User>,
    project_id: Option<i64>,
    project: Option<Project>,
}

#[derive(Deserialize)]
struct User {
    username: Option<String>,
}

#[derive(Deserialize)]
struct Project {
    id: Option<i64>,
    path_with_namespace: Option<String>,
}

impl Envelope {
    fn add_to(&self, event: &mut Event) {
        // Push hooks name the user at the top level; the others have a `user` object.
        let actor = [
            self.user_username.as_deref(),
            self.user.as_ref().and_then(|user| user.username.as_deref()),
            self.user_name.as_deref(),
        ]
        .into_iter()
        .flatten()
        .find(|name| !name.is_empty());
        if let Some(actor) = actor {
            event.actor = actor.to_owned();
            event.set_attr("sender", actor);
        }
        let project = self.project.as_ref();
        let project_id = self.project_id.or(project.and_then(|project| project.id));
        event.set_attr_some("project_id", project_id);
        if let Some(path) = project.and_then(|project| project.path_with_namespace.as_deref()) {
            event.subject = path.to_owned();
            if let Some((owner, name)) = path.split_once('/') {
                event.set_attr("repo_owner", owner);
                event.set_attr("repo_name", name);
            }
        }
    }
}

/// `X-Gitlab-Event-UUID`, else `<X-Gitlab-Instance>/<X-Request-Id>` when a request id is set.
/// The instance alone names no delivery: every hook of that GitLab would share it and all but
/// the first would be dropped as duplicates.
fn delivery_id(request: &Request) -> Option<String> {
    let header = |name| request.header(name).map(str::trim).unwrap_or("");
    let uuid = header(UUID_HEADER);
    if !uuid.is_empty() {
        return Some(uuid.to_owned());
    }
    let (instance, request_id) = (header(INSTANCE_HEADER), header(REQUEST_ID_HEADER));
    (!request_id.is_empty()).then(|| format!("{instance}/{request_id}"))
}

/// Sets the attr `name` when the payload had a value for it.
#[cfg(test)]
mod tests;
