//! A stand-in for the GitLab REST API v4 (`https://gitlab.com/api/v4`): the calls mecha's
//! GitLab write-back makes, answered the way GitLab (Rails + Grape) answers them. Its `base` ends
//! in `/api/v4`, like the API base mecha is configured with.
//!
//! Projects are addressed by URL-encoded path (`group%2Fproject`, `a%2Fb%2Fc`; any case of
//! `%2F`; matched case-insensitively) or by the numeric id the stand-in assigns
//! ([`GitLab::project_id`]). The stand-in routes on the raw request path, so a `%2F` stays
//! inside its segment; an unencoded `group/project` does not match any route, as on GitLab.
//!
//! Routes (`{kind}` is `merge_requests` or `issues`; merge request and issue iids are separate):
//!
//! * `POST /api/v4/projects/{id}/{kind}/{iid}/notes` with `body` → 201 with the note (`id`,
//!   `body`, `author.username` = `mecha-bot`, `noteable_type` = `MergeRequest` | `Issue`,
//!   `noteable_iid`, `project_id`, `system: false`, …). No `body` → 400
//!   `{"error":"body is missing"}`; a blank one → 400
//!   `{"message":"400 Bad request - Note can't be blank"}` (what current GitLab answers); over
//!   1,000,000 characters → 400 `… Note is too long (maximum is 1000000 characters)`.
//! * `GET …/{kind}/{iid}/notes?per_page=&page=&sort=&order_by=` → 200, **newest first** unless
//!   `sort=asc` (GitLab's default is `created_at desc`); `per_page` defaults to 20, capped at
//!   100; headers `x-page`, `x-per-page`, `x-total`, `x-total-pages`, `x-next-page`,
//!   `x-prev-page` (empty when there is none) and `link` (`prev`, `next`, `first`, `last`).
//!   A non-integer `page`/`per_page` → 400 `{"error":"per_page is invalid"}`.
//! * `PUT /api/v4/projects/{id}/{kind}/{iid}` with `add_labels` / `remove_labels` / `labels`
//!   (comma-separated strings or arrays) → 200 with the merge request or issue, whose `labels`
//!   is the sorted array of names. None of the updatable parameters → 400
//!   `{"error":"… are missing, at least one parameter must be provided"}`. `GET` answers the
//!   same object.
//! * `POST /api/v4/projects/{id}/statuses/{sha}` with `state`, `name` (or `context`, default
//!   `default`), `ref`, `target_url`, `description` → 201 with the status. No state → 400
//!   `{"error":"state is missing"}`; a state outside `pending|running|success|failed|canceled|
//!   skipped` → 400 `{"error":"state does not have a valid value"}`; a sha that is not 40 hex
//!   digits → 404 `{"message":"404 Commit Not Found"}`. Like GitLab, a status still pending or
//!   running for the same sha, name and ref is moved to the new state instead of a new one being
//!   made, and GitLab's state machine refuses pending → pending and running → running (or →
//!   pending) with 400 `{"message":"Cannot transition status via :enqueue from :pending
//!   (Reason(s): Status cannot transition via \"enqueue\")"}`.
//! * `GET /api/v4/projects/{id}` → 200 with `id`, `path_with_namespace`, `web_url`.
//!
//! Parameters come from the query string and from a JSON or form-encoded body (GitLab merges
//! them); another body content type → 415 `{"error":"The provided content-type '…' is not
//! supported."}`.
//!
//! Checks, in GitLab's order: no route → 404 `{"error":"404 Not Found"}`, a route with another
//! method → 405 `{"error":"405 Not Allowed"}` with `allow`; a missing or wrong token
//! (`PRIVATE-TOKEN: <token>`, `Authorization: Bearer <token>` or `?private_token=`) → 401
//! `{"message":"401 Unauthorized"}`; an unknown project → 404
//! `{"message":"404 Project Not Found"}`; an iid that is not an integer → 400
//! `{"error":"merge_request_iid is invalid"}` (`issue_iid`, `noteable_id` on notes); then the
//! parameters.
//!
//! Every answer carries `content-type: application/json`, `x-request-id`, `x-gitlab-meta`,
//! `cache-control` and GitLab.com's `ratelimit-limit`, `ratelimit-observed`,
//! `ratelimit-remaining`, `ratelimit-reset`, `ratelimit-resettime`, `ratelimit-name` headers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::{
    Call, Core, Fault, Reply, Request, Running, StandIn, Window, bind, http_date, is_full_sha,
    iso8601_millis, now, percent_decode, query_pairs, reason, serve, with_page,
};

const WEB: &str = "https://gitlab.example.com";
const RATE_LIMIT: u64 = 2000;
const BOT_USERNAME: &str = "mecha-bot";
const BOT_ID: u64 = 1000;
/// Who wrote seeded notes, unless told otherwise.
const SEED_USERNAME: &str = "root";
const STATES: [&str; 6] = [
    "pending", "running", "success", "failed", "canceled", "skipped",
];
const MERGE_REQUEST_PARAMS: [&str; 16] = [
    "assignee_id",
    "assignee_ids",
    "reviewer_ids",
    "description",
    "labels",
    "add_labels",
    "remove_labels",
    "milestone_id",
    "remove_source_branch",
    "allow_collaboration",
    "allow_maintainer_to_push",
    "squash",
    "discussion_locked",
    "state_event",
    "target_branch",
    "title",
];
const ISSUE_PARAMS: [&str; 14] = [
    "assignee_id",
    "assignee_ids",
    "confidential",
    "created_at",
    "description",
    "discussion_locked",
    "due_date",
    "labels",
    "add_labels",
    "remove_labels",
    "milestone_id",
    "state_event",
    "title",
    "issue_type",
];

/// What a note is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Noteable {
    MergeRequest,
    Issue,
}

impl Noteable {
    fn from_segment(segment: &str) -> Option<Noteable> {
        match segment {
            "merge_requests" => Some(Noteable::MergeRequest),
            "issues" => Some(Noteable::Issue),
            _ => None,
        }
    }

    fn segment(self) -> &'static str {
        match self {
            Noteable::MergeRequest => "merge_requests",
            Noteable::Issue => "issues",
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Noteable::MergeRequest => "MergeRequest",
            Noteable::Issue => "Issue",
        }
    }

    fn iid_param(self) -> &'static str {
        match self {
            Noteable::MergeRequest => "merge_request_iid",
            Noteable::Issue => "issue_iid",
        }
    }

    fn updatable(self) -> &'static [&'static str] {
        match self {
            Noteable::MergeRequest => &MERGE_REQUEST_PARAMS,
            Noteable::Issue => &ISSUE_PARAMS,
        }
    }
}

/// A running GitLab stand-in; stops when dropped.
pub struct GitLab {
    /// `http://127.0.0.1:PORT/api/v4`, to use where mecha would use `https://gitlab.com/api/v4`.
    pub base: String,
    lab: Arc<Lab>,
    _running: Running,
}

struct Lab {
    token: String,
    /// `http://127.0.0.1:PORT`.
    origin: String,
    core: Core,
    world: Mutex<World>,
}

#[derive(Default)]
struct World {
    projects: Vec<Project>,
    /// Lower-cased paths, when only these exist.
    only: Option<BTreeSet<String>>,
    last_project_id: u64,
    last_id: u64,
    observed: u64,
}

struct Project {
    id: u64,
    path: String,
    notes: BTreeMap<(Noteable, u64), Vec<Value>>,
    labels: BTreeMap<(Noteable, u64), BTreeSet<String>>,
    /// By lower-cased sha, oldest first.
    statuses: BTreeMap<String, Vec<Value>>,
}

enum Endpoint {
    Project,
    ListNotes(Noteable, String),
    CreateNote(Noteable, String),
    GetNoteable(Noteable, String),
    UpdateNoteable(Noteable, String),
    CreateStatus(String),
}

impl GitLab {
    /// Starts a stand-in that accepts `token`.
    pub async fn start(token: &str) -> GitLab {
        let (listener, origin) = bind().await;
        let lab = Arc::new(Lab {
            token: token.to_owned(),
            origin: origin.clone(),
            core: Core::default(),
            world: Mutex::new(World {
                last_project_id: 277,
                last_id: 3_000_000,
                ..World::default()
            }),
        });
        let running = serve(listener, lab.clone());
        GitLab {
            base: format!("{origin}/api/v4"),
            lab,
            _running: running,
        }
    }

    /// `base` + `path` (`path` starts after `/api/v4`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The numeric id of a project (`"group/project"`), usable in place of its encoded path.
    pub fn project_id(&self, project: &str) -> u64 {
        self.with_project(project, |project| project.id)
    }

    /// From now on only these projects (`"group/project"`) exist; others answer 404.
    pub fn only_projects(&self, projects: &[&str]) {
        let only = projects.iter().map(|path| path.to_lowercase()).collect();
        self.lab.world.lock().expect("lock").only = Some(only);
    }

    /// Answers the next `times` requests whose method is `method` (`"*"`: any) and whose raw
    /// path contains `path_pattern` with `fault`, after the faults queued before.
    pub fn fail_next(&self, method: &str, path_pattern: &str, fault: Fault, times: usize) {
        self.lab.core.fail_next(method, path_pattern, fault, times);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.lab.core.requests()
    }

    /// Waits (up to 30 s) until `count` answered requests match `method` (`"*"`: any) and
    /// `path_pattern`; returns them.
    pub async fn wait_requests(
        &self,
        method: &str,
        path_pattern: &str,
        count: usize,
    ) -> Vec<Request> {
        self.lab
            .core
            .wait_requests(method, path_pattern, count)
            .await
    }

    /// The bodies of the notes on a merge request or issue, oldest first.
    pub fn notes(&self, project: &str, kind: Noteable, iid: u64) -> Vec<String> {
        self.with_project(project, |project| {
            project
                .notes
                .get(&(kind, iid))
                .map(|notes| {
                    notes
                        .iter()
                        .map(|note| note["body"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Adds a note written by `root`; returns its id.
    pub fn seed_note(&self, project: &str, kind: Noteable, iid: u64, body: &str) -> u64 {
        self.seed_note_as(project, kind, iid, SEED_USERNAME, body)
    }

    /// Adds a note written by `username` (`mecha-bot` is mecha's own); returns its id.
    pub fn seed_note_as(
        &self,
        project: &str,
        kind: Noteable,
        iid: u64,
        username: &str,
        body: &str,
    ) -> u64 {
        let mut world = self.lab.world.lock().expect("lock");
        let index = world
            .find(project)
            .unwrap_or_else(|| panic!("{project} is not one of the stand-in's projects"));
        world.add_note(index, kind, iid, username, body)["id"]
            .as_u64()
            .expect("id")
    }

    /// The labels on a merge request or issue, sorted.
    pub fn labels(&self, project: &str, kind: Noteable, iid: u64) -> Vec<String> {
        self.with_project(project, |project| {
            project
                .labels
                .get(&(kind, iid))
                .map(|labels| labels.iter().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// Puts a label on a merge request or issue.
    pub fn seed_label(&self, project: &str, kind: Noteable, iid: u64, name: &str) {
        self.with_project(project, |project| {
            project
                .labels
                .entry((kind, iid))
                .or_default()
                .insert(name.to_owned());
        });
    }

    /// The statuses of a commit, oldest first, in their latest state, as the API returned them.
    pub fn statuses(&self, project: &str, sha: &str) -> Vec<Value> {
        self.with_project(project, |project| {
            project
                .statuses
                .get(&sha.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default()
        })
    }

    fn with_project<T>(&self, path: &str, then: impl FnOnce(&mut Project) -> T) -> T {
        let mut world = self.lab.world.lock().expect("lock");
        let index = world
            .find(path)
            .unwrap_or_else(|| panic!("{path} is not one of the stand-in's projects"));
        then(&mut world.projects[index])
    }
}

impl World {
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// The project with this path (`group/project`), created on first use unless `only` leaves
    /// it out.
    fn find(&mut self, path: &str) -> Option<usize> {
        if !path.contains('/') || path.split('/').any(str::is_empty) {
            return None;
        }
        let key = path.to_lowercase();
        if let Some(only) = &self.only
            && !only.contains(&key)
        {
            return None;
        }
        let known = self
            .projects
            .iter()
            .position(|project| project.path.to_lowercase() == key);
        if known.is_some() {
            return known;
        }
        self.last_project_id += 1;
        self.projects.push(Project {
            id: self.last_project_id,
            path: path.to_owned(),
            notes: BTreeMap::new(),
            labels: BTreeMap::new(),
            statuses: BTreeMap::new(),
        });
        Some(self.projects.len() - 1)
    }

    /// The project a raw `{id}` segment names: a number, or a URL-encoded path.
    fn resolve(&mut self, raw: &str) -> Option<usize> {
        if !raw.is_empty() && raw.bytes().all(|byte| byte.is_ascii_digit()) {
            let id: u64 = raw.parse().ok()?;
            return self.projects.iter().position(|project| project.id == id);
        }
        let path = percent_decode(raw, false)?;
        self.find(&path)
    }

    fn add_note(
        &mut self,
        index: usize,
        kind: Noteable,
        iid: u64,
        username: &str,
        body: &str,
    ) -> Value {
        let id = self.next_id();
        let project = &mut self.projects[index];
        let at = iso8601_millis(now());
        let note = json!({
            "id": id,
            "type": null,
            "body": body,
            "attachment": null,
            "author": author(username),
            "created_at": at,
            "updated_at": at,
            "system": false,
            "noteable_id": noteable_id(project.id, kind, iid),
            "noteable_type": kind.type_name(),
            "noteable_iid": iid,
            "project_id": project.id,
            "resolvable": false,
            "confidential": false,
            "internal": false,
            "imported": false,
            "imported_from": "none",
        });
        project
            .notes
            .entry((kind, iid))
            .or_default()
            .push(note.clone());
        note
    }
}

impl Project {
    fn noteable_json(&self, kind: Noteable, iid: u64) -> Value {
        let labels: Vec<&String> = self
            .labels
            .get(&(kind, iid))
            .map(|labels| labels.iter().collect())
            .unwrap_or_default();
        let notes = self
            .notes
            .get(&(kind, iid))
            .map(Vec::len)
            .unwrap_or_default();
        let at = iso8601_millis(now());
        let mut object = json!({
            "id": noteable_id(self.id, kind, iid),
            "iid": iid,
            "project_id": self.id,
            "description": null,
            "state": "opened",
            "labels": labels,
            "author": author(SEED_USERNAME),
            "created_at": at,
            "updated_at": at,
            "user_notes_count": notes,
            "web_url": format!("{WEB}/{}/-/{}/{iid}", self.path, kind.segment()),
        });
        let extra = match kind {
            Noteable::MergeRequest => json!({
                "title": format!("Merge request !{iid}"),
                "source_branch": "feature",
                "target_branch": "main",
                "merge_status": "can_be_merged",
                "draft": false,
            }),
            Noteable::Issue => json!({
                "title": format!("Issue #{iid}"),
                "type": "ISSUE",
                "issue_type": "issue",
                "confidential": false,
            }),
        };
        if let (Value::Object(object), Value::Object(extra)) = (&mut object, extra) {
            object.extend(extra);
        }
        object
    }
}

/// The global id of a merge request or issue.
fn noteable_id(project: u64, kind: Noteable, iid: u64) -> u64 {
    let offset = match kind {
        Noteable::MergeRequest => 0,
        Noteable::Issue => 500_000,
    };
    project * 1_000_000 + offset + iid
}

fn author(username: &str) -> Value {
    let id = if username == BOT_USERNAME { BOT_ID } else { 1 };
    json!({
        "id": id,
        "username": username,
        "name": username,
        "state": "active",
        "locked": false,
        "avatar_url": format!("https://secure.gravatar.com/avatar/{id}?s=80&d=identicon"),
        "web_url": format!("{WEB}/{username}"),
    })
}

/// `{"message": …}`: what GitLab's API helpers answer.
fn message(status: u16, message: impl Into<Value>) -> Reply {
    Reply::json(status, json!({ "message": message.into() }))
}

/// `{"error": …}`: what Grape answers for routing and parameter errors.
fn grape_error(status: u16, error: &str) -> Reply {
    Reply::json(status, json!({ "error": error }))
}

/// The route a raw path names, or the 404/405 GitLab answers when there is none.
fn route(call: &Call) -> Result<(String, Endpoint), Reply> {
    let not_found = || grape_error(404, "404 Not Found");
    let Some(rest) = call.path.strip_prefix("/api/v4/") else {
        return Err(not_found());
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let method = call.method.as_str();
    let (id, allowed, endpoint): (&str, &[&str], Option<Endpoint>) = match segments.as_slice() {
        ["projects", id, "statuses", sha] if !id.is_empty() && !sha.is_empty() => (
            id,
            &["POST"],
            Some(Endpoint::CreateStatus((*sha).to_owned())),
        ),
        ["projects", id] if !id.is_empty() => (id, &["GET"], Some(Endpoint::Project)),
        ["projects", id, kind, iid, "notes"] if !id.is_empty() && !iid.is_empty() => {
            let Some(kind) = Noteable::from_segment(kind) else {
                return Err(not_found());
            };
            let iid = (*iid).to_owned();
            let endpoint = match method {
                "GET" => Some(Endpoint::ListNotes(kind, iid)),
                "POST" => Some(Endpoint::CreateNote(kind, iid)),
                _ => None,
            };
            (id, &["GET", "POST"], endpoint)
        }
        ["projects", id, kind, iid] if !id.is_empty() && !iid.is_empty() => {
            let Some(kind) = Noteable::from_segment(kind) else {
                return Err(not_found());
            };
            let iid = (*iid).to_owned();
            let endpoint = match method {
                "GET" => Some(Endpoint::GetNoteable(kind, iid)),
                "PUT" => Some(Endpoint::UpdateNoteable(kind, iid)),
                _ => None,
            };
            (id, &["GET", "PUT"], endpoint)
        }
        _ => return Err(not_found()),
    };
    let endpoint = match endpoint {
        Some(endpoint) if allowed.contains(&method) => endpoint,
        _ => {
            return Err(grape_error(405, "405 Not Allowed").header("allow", allowed.join(", ")));
        }
    };
    Ok(((*id).to_owned(), endpoint))
}

/// The request's parameters: the query string, then the JSON or form body over it.
fn params(call: &Call) -> Result<Map<String, Value>, Reply> {
    let mut params: Map<String, Value> = query_pairs(&call.query)
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    if call.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    match call.content_type().as_deref() {
        Some("application/json") => match serde_json::from_slice::<Value>(&call.body) {
            Ok(Value::Object(fields)) => params.extend(fields),
            Ok(_) => {}
            Err(_) => return Err(message(400, "400 Bad request - the body is not valid JSON")),
        },
        Some("application/x-www-form-urlencoded") => {
            let text = String::from_utf8_lossy(&call.body);
            params.extend(
                query_pairs(&text)
                    .into_iter()
                    .map(|(key, value)| (key, Value::String(value))),
            );
        }
        other => {
            return Err(grape_error(
                415,
                &format!(
                    "The provided content-type '{}' is not supported.",
                    other.unwrap_or_default()
                ),
            ));
        }
    }
    Ok(params)
}

/// A positive integer parameter (page, per_page): `Err` names it as invalid.
fn integer(params: &Map<String, Value>, name: &str) -> Result<Option<u64>, Reply> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .as_u64()
            .map(Some)
            .ok_or_else(|| grape_error(400, &format!("{name} is invalid"))),
        Some(Value::String(text)) => text
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| grape_error(400, &format!("{name} is invalid"))),
        Some(_) => Err(grape_error(400, &format!("{name} is invalid"))),
    }
}

/// A string parameter; numbers and booleans are coerced like Grape does.
fn string(params: &Map<String, Value>, name: &str) -> Result<Option<String>, Reply> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(Value::Bool(flag)) => Ok(Some(flag.to_string())),
        Some(_) => Err(grape_error(400, &format!("{name} is invalid"))),
    }
}

/// A label list: `"a, b"` or `["a","b"]`; `None` when absent.
fn label_list(params: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, Reply> {
    let invalid = || grape_error(400, &format!("{name} is invalid"));
    let parts: Vec<String> = match params.get(name) {
        None => return Ok(None),
        Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.split(',').map(str::to_owned).collect(),
        Some(Value::Array(items)) => {
            let mut parts = Vec::new();
            for item in items {
                let Value::String(text) = item else {
                    return Err(invalid());
                };
                parts.extend(text.split(',').map(str::to_owned));
            }
            parts
        }
        Some(_) => return Err(invalid()),
    };
    Ok(Some(
        parts
            .into_iter()
            .map(|part| part.trim().to_owned())
            .filter(|part| !part.is_empty())
            .collect(),
    ))
}

/// The iid in a path, or Grape's 400 naming the parameter.
fn iid(raw: &str, param: &str) -> Result<u64, Reply> {
    raw.parse::<u64>()
        .map_err(|_| grape_error(400, &format!("{param} is invalid")))
}

/// GitLab's state machine for a commit status still pending or running (`from`), moved to
/// `to`: `Err` with the message GitLab gives when the transition is refused.
fn transition(from: &str, to: &str) -> Result<(), String> {
    let event = match to {
        "pending" => "enqueue",
        "running" => "run",
        "success" => "success",
        "failed" => "drop",
        "canceled" => "cancel",
        _ => "skip",
    };
    let allowed = match (from, to) {
        (_, "pending") => false,
        ("pending", "running" | "skipped") => true,
        (_, "success" | "failed" | "canceled") => true,
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "Cannot transition status via :{event} from :{from} (Reason(s): Status cannot \
             transition via \"{event}\")"
        ))
    }
}

impl Lab {
    fn authorized(&self, call: &Call) -> bool {
        let bearer = call
            .header("authorization")
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        let presented = call
            .header("private-token")
            .map(str::to_owned)
            .or(bearer)
            .or_else(|| call.query_param("private_token"));
        presented.as_deref() == Some(self.token.as_str())
    }

    fn list_notes(
        &self,
        project: &Project,
        kind: Noteable,
        iid: u64,
        call: &Call,
        params: &Map<String, Value>,
    ) -> Reply {
        let page = match integer(params, "page") {
            Ok(page) => page.filter(|&page| page > 0).unwrap_or(1) as usize,
            Err(reply) => return reply,
        };
        let per_page = match integer(params, "per_page") {
            Ok(per_page) => per_page.filter(|&n| n > 0).unwrap_or(20).min(100) as usize,
            Err(reply) => return reply,
        };
        let ascending = match string(params, "sort") {
            Ok(None) => false,
            Ok(Some(sort)) if sort == "asc" => true,
            Ok(Some(sort)) if sort == "desc" => false,
            Ok(Some(_)) => return grape_error(400, "sort does not have a valid value"),
            Err(reply) => return reply,
        };
        match string(params, "order_by") {
            Ok(None) => {}
            Ok(Some(order)) if order == "created_at" || order == "updated_at" => {}
            Ok(Some(_)) => return grape_error(400, "order_by does not have a valid value"),
            Err(reply) => return reply,
        }
        let mut notes = project.notes.get(&(kind, iid)).cloned().unwrap_or_default();
        if !ascending {
            notes.reverse();
        }
        let window = Window::new(notes.len(), page, per_page);
        let link = |page: usize, rel: &str| {
            format!(
                "<{}{}?{}>; rel=\"{rel}\"",
                self.origin,
                call.path,
                with_page(&call.query, page)
            )
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(link(page - 1, "prev"));
        }
        if page < window.last_page {
            links.push(link(page + 1, "next"));
        }
        links.push(link(1, "first"));
        links.push(link(window.last_page, "last"));
        let next = if page < window.last_page {
            (page + 1).to_string()
        } else {
            String::new()
        };
        let prev = if page > 1 {
            (page - 1).to_string()
        } else {
            String::new()
        };
        Reply::json(200, Value::Array(window.slice(&notes)))
            .header("x-page", page.to_string())
            .header("x-per-page", per_page.to_string())
            .header("x-total", notes.len().to_string())
            .header("x-total-pages", window.last_page.to_string())
            .header("x-next-page", next)
            .header("x-prev-page", prev)
            .header("link", links.join(", "))
    }

    fn create_note(
        world: &mut World,
        index: usize,
        kind: Noteable,
        iid: u64,
        params: &Map<String, Value>,
    ) -> Reply {
        let body = match string(params, "body") {
            Ok(Some(body)) => body,
            Ok(None) => return grape_error(400, "body is missing"),
            Err(reply) => return reply,
        };
        if body.trim().is_empty() {
            return message(400, "400 Bad request - Note can't be blank");
        }
        if body.chars().count() > 1_000_000 {
            return message(
                400,
                "400 Bad request - Note is too long (maximum is 1000000 characters)",
            );
        }
        Reply::json(201, world.add_note(index, kind, iid, BOT_USERNAME, &body))
    }

    fn update_noteable(
        project: &mut Project,
        kind: Noteable,
        iid: u64,
        params: &Map<String, Value>,
    ) -> Reply {
        let updatable = kind.updatable();
        if !updatable.iter().any(|name| params.contains_key(*name)) {
            return grape_error(
                400,
                &format!(
                    "{} are missing, at least one parameter must be provided",
                    updatable.join(", ")
                ),
            );
        }
        let (replace, add, remove) = match (
            label_list(params, "labels"),
            label_list(params, "add_labels"),
            label_list(params, "remove_labels"),
        ) {
            (Ok(replace), Ok(add), Ok(remove)) => (replace, add, remove),
            (Err(reply), _, _) | (_, Err(reply), _) | (_, _, Err(reply)) => return reply,
        };
        let labels = project.labels.entry((kind, iid)).or_default();
        if let Some(replace) = replace {
            *labels = replace.into_iter().collect();
        }
        labels.extend(add.unwrap_or_default());
        for label in remove.unwrap_or_default() {
            labels.remove(&label);
        }
        Reply::json(200, project.noteable_json(kind, iid))
    }

    fn create_status(
        world: &mut World,
        index: usize,
        sha: &str,
        params: &Map<String, Value>,
    ) -> Reply {
        let state = match string(params, "state") {
            Ok(Some(state)) if STATES.contains(&state.as_str()) => state,
            Ok(Some(_)) => return grape_error(400, "state does not have a valid value"),
            Ok(None) => return grape_error(400, "state is missing"),
            Err(reply) => return reply,
        };
        let mut fields = Vec::new();
        for name in ["name", "context", "ref", "target_url", "description"] {
            match string(params, name) {
                Ok(value) => fields.push(value),
                Err(reply) => return reply,
            }
        }
        let [name, context, reference, target_url, description]: [Option<String>; 5] =
            fields.try_into().expect("five fields");
        let name = name.or(context).unwrap_or_else(|| "default".to_owned());
        if !is_full_sha(sha) {
            return message(404, "404 Commit Not Found");
        }
        let sha = sha.to_ascii_lowercase();
        let at = iso8601_millis(now());
        let finished = matches!(
            state.as_str(),
            "success" | "failed" | "canceled" | "skipped"
        );
        let id = world.next_id();
        let project = &mut world.projects[index];
        let statuses = project.statuses.entry(sha.clone()).or_default();
        let open = statuses.iter_mut().rev().find(|status| {
            status["name"] == name.as_str()
                && status["ref"] == json!(reference)
                && matches!(status["status"].as_str(), Some("pending" | "running"))
        });
        if let Some(status) = open {
            let from = status["status"].as_str().unwrap_or_default().to_owned();
            if let Err(refused) = transition(&from, &state) {
                return message(400, refused);
            }
            status["status"] = json!(state);
            if target_url.is_some() {
                status["target_url"] = json!(target_url);
            }
            if description.is_some() {
                status["description"] = json!(description);
            }
            if state == "running" {
                status["started_at"] = json!(at);
            }
            if finished {
                status["finished_at"] = json!(at);
            }
            return Reply::json(201, status.clone());
        }
        let status = json!({
            "id": id,
            "sha": sha,
            "ref": reference,
            "status": state,
            "name": name,
            "target_url": target_url,
            "description": description,
            "created_at": at,
            "started_at": if state == "running" { Some(&at) } else { None },
            "finished_at": if finished { Some(&at) } else { None },
            "allow_failure": false,
            "coverage": null,
            "pipeline_id": project.id * 10_000 + 1,
            "author": author(BOT_USERNAME),
        });
        statuses.push(status.clone());
        Reply::json(201, status)
    }
}

impl StandIn for Lab {
    fn core(&self) -> &Core {
        &self.core
    }

    fn answer(&self, call: &Call) -> Reply {
        let (raw_id, endpoint) = match route(call) {
            Ok(route) => route,
            Err(reply) => return reply,
        };
        if !self.authorized(call) {
            return message(401, "401 Unauthorized");
        }
        let mut world = self.world.lock().expect("lock");
        let Some(index) = world.resolve(&raw_id) else {
            return message(404, "404 Project Not Found");
        };
        let params = match params(call) {
            Ok(params) => params,
            Err(reply) => return reply,
        };
        let noteable_iid = |raw: &str, param: &str| -> Result<u64, Reply> {
            let iid = iid(raw, param)?;
            if iid == 0 {
                return Err(message(404, "404 Not found"));
            }
            Ok(iid)
        };
        match endpoint {
            Endpoint::Project => {
                let project = &world.projects[index];
                Reply::json(
                    200,
                    json!({
                        "id": project.id,
                        "path_with_namespace": project.path,
                        "web_url": format!("{WEB}/{}", project.path),
                    }),
                )
            }
            Endpoint::ListNotes(kind, raw) => match noteable_iid(&raw, "noteable_id") {
                Ok(iid) => self.list_notes(&world.projects[index], kind, iid, call, &params),
                Err(reply) => reply,
            },
            Endpoint::CreateNote(kind, raw) => match noteable_iid(&raw, "noteable_id") {
                Ok(iid) => Lab::create_note(&mut world, index, kind, iid, &params),
                Err(reply) => reply,
            },
            Endpoint::GetNoteable(kind, raw) => match noteable_iid(&raw, kind.iid_param()) {
                Ok(iid) => Reply::json(200, world.projects[index].noteable_json(kind, iid)),
                Err(reply) => reply,
            },
            Endpoint::UpdateNoteable(kind, raw) => match noteable_iid(&raw, kind.iid_param()) {
                Ok(iid) => Lab::update_noteable(&mut world.projects[index], kind, iid, &params),
                Err(reply) => reply,
            },
            Endpoint::CreateStatus(sha) => Lab::create_status(&mut world, index, &sha, &params),
        }
    }

    fn fault(&self, call: &Call, fault: &Fault) -> Reply {
        let reset = now() + 1;
        match fault {
            Fault::RateLimited => Reply::text(429, "text/plain", "Retry later\n")
                .header("retry-after", "1")
                .header("ratelimit-observed", (RATE_LIMIT + 1).to_string())
                .header("ratelimit-remaining", "0")
                .header("ratelimit-reset", reset.to_string())
                .header("ratelimit-resettime", http_date(reset)),
            Fault::SecondaryRateLimit => message(
                429,
                json!({ "error": "This endpoint has been requested too many times. Try again later." }),
            )
            .header("retry-after", "1"),
            Fault::Status(code) => {
                let text = match code {
                    400 => "400 Bad request".to_owned(),
                    404 => "404 Not found".to_owned(),
                    other => format!("{other} {}", reason(*other)),
                };
                message(*code, text)
            }
            Fault::Hang(_) | Fault::Held(_) => self.answer(call),
        }
    }

    fn finish(&self, call: &Call, reply: &mut Reply) {
        let observed = {
            let mut world = self.world.lock().expect("lock");
            world.observed += 1;
            world.observed
        };
        let reset = (now() / 60 + 1) * 60;
        let request_id = format!("01JF{:022}", call.seq);
        reply.default_header("content-type", "application/json");
        reply.default_header("cache-control", "max-age=0, private, must-revalidate");
        reply.default_header(
            "x-gitlab-meta",
            json!({ "correlation_id": request_id, "version": "1" }).to_string(),
        );
        reply.default_header("x-request-id", request_id);
        reply.default_header("ratelimit-name", "throttle_authenticated_api");
        reply.default_header("ratelimit-limit", RATE_LIMIT.to_string());
        reply.default_header("ratelimit-observed", observed.to_string());
        reply.default_header(
            "ratelimit-remaining",
            RATE_LIMIT.saturating_sub(observed).to_string(),
        );
        reply.default_header("ratelimit-reset", reset.to_string());
        reply.default_header("ratelimit-resettime", http_date(reset));
    }
}
