//! A stand-in for the GitHub REST API (`https://api.github.com`, API version 2022-11-28): the
//! calls mecha's GitHub write-back makes, answered the way api.github.com answers them.
//!
//! Routes (`{owner}/{repo}` may also be addressed as `/repositories/{id}`, the form GitHub uses
//! in its `Link` headers; owner and repository names match case-insensitively):
//!
//! * `POST /repos/{owner}/{repo}/issues/{number}/comments` `{"body"}` → 201 with the comment
//!   (`id`, `node_id`, `url`, `issue_url`, `body`, `user.login` = `mecha-bot`, `created_at`, …,
//!   and `html_url` = `https://github.com/{o}/{r}/issues/{n}#issuecomment-{id}`) and a
//!   `Location` header.
//!   No `body` → 422 `Invalid request. "body" wasn't supplied.`; a blank one → 422
//!   `Validation Failed` with `{"resource":"IssueComment","code":"missing_field","field":"body"}`;
//!   over 65,536 characters → 422 `body is too long (maximum is 65536 characters)`.
//! * `GET …/issues/{number}/comments?per_page=&page=` → 200, oldest first; `per_page` defaults
//!   to 30 and is capped at 100; a `Link` header with `rel="prev"`, `"next"`, `"last"`,
//!   `"first"` (as applicable) pointing at `/repositories/{id}/…` like GitHub's.
//! * `GET …/issues/{number}/labels` → 200, the issue's labels.
//! * `POST …/issues/{number}/labels` with `{"labels":["a",…]}`, `{"labels":[{"name":"a"}]}` or
//!   `["a",…]` → 200 with every label now on the issue (`id`, `node_id`, `url`, `name`,
//!   `color`, `default: false`, `description`), sorted by name; labels the repository lacks
//!   are created (color `ededed`); names match case-insensitively. A body without labels, or
//!   with a label that is not a string → 422 `Invalid request. …`; an empty name or one over
//!   50 characters → 422 `Validation Failed`.
//! * `DELETE …/issues/{number}/labels/{name}` (name percent-decoded) → 200 with the remaining
//!   labels, or 404 `{"message":"Label does not exist",…}`.
//! * pull requests' diffs and files, compared or listed: see [`pulls`].
//! * `POST /repos/{owner}/{repo}/statuses/{sha}` `{"state","target_url","description","context"}`
//!   → 201 with the status (`context` defaults to `default`). No state, or one outside
//!   `error|failure|pending|success` → 422 `Invalid request. …`; a description over 140
//!   characters → 422 `Validation Failed`; a sha that is not 40 hex digits → 422
//!   `No commit found for SHA: …`.
//!
//! Checks, in GitHub's order: no `User-Agent` → 403 with GitHub's plain-text "Request forbidden
//! by administrative rules" message; an `Authorization` header (`Bearer <token>` or
//! `token <token>`) with another token → 401 `{"message":"Bad credentials",
//! "documentation_url":"https://docs.github.com/rest","status":"401"}`; an unknown route,
//! method, issue number or repository → 404 `{"message":"Not Found",…}`; no `Authorization`
//! at all → 401 `{"message":"Requires authentication",…}`; a write whose `Content-Type` is not
//! JSON → 415 `Unsupported Media Type` (stricter than GitHub, which guesses); a body that does
//! not parse → 400 `Problems parsing JSON`. Error bodies carry `message`, `documentation_url`
//! and `status` (a string), as GitHub's do. The `Accept` header is only recorded.
//!
//! Every answer carries `content-type: application/json; charset=utf-8` (except the plain-text
//! 403), `x-github-request-id`, `x-github-api-version-selected`, `x-github-media-type` and the
//! rate-limit headers `x-ratelimit-limit: 5000`, `x-ratelimit-remaining` (one less per
//! authenticated request), `x-ratelimit-used`, `x-ratelimit-reset` (epoch seconds) and
//! `x-ratelimit-resource: core`.

mod pulls;

pub use pulls::Pull;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::{
    Call, Core, Fault, Reply, Request, Running, StandIn, Window, bind, is_full_sha, iso8601, now,
    percent_decode, percent_encode, reason, serve, with_page,
};

const DOCS: &str = "https://docs.github.com/rest";
const DOC_CREATE_COMMENT: &str =
    "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
const DOC_LIST_COMMENTS: &str = "https://docs.github.com/rest/issues/comments#list-issue-comments";
const DOC_LIST_LABELS: &str = "https://docs.github.com/rest/issues/labels#list-labels-for-an-issue";
const DOC_ADD_LABELS: &str = "https://docs.github.com/rest/issues/labels#add-labels-to-an-issue";
const DOC_REMOVE_LABEL: &str =
    "https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue";
const DOC_CREATE_STATUS: &str =
    "https://docs.github.com/rest/commits/statuses#create-a-commit-status";
const DOC_COMPARE: &str = "https://docs.github.com/rest/commits/commits#compare-two-commits";
const DOC_GET_PULL: &str = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request";
const DOC_PULL_FILES: &str = "https://docs.github.com/rest/pulls/pulls#list-pull-requests-files";
const DOC_RATE_LIMITS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";

const RATE_LIMIT: u64 = 5000;
const BOT_LOGIN: &str = "mecha-bot";
const BOT_ID: u64 = 1000;
/// Who wrote seeded comments, unless told otherwise.
const SEED_LOGIN: &str = "octocat";

const NO_USER_AGENT: &str = "Request forbidden by administrative rules. Please make sure your \
request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
Check https://developer.github.com for other possible causes.\n";

/// A running GitHub stand-in; stops when dropped.
pub struct GitHub {
    /// `http://127.0.0.1:PORT`, to use where mecha would use `https://api.github.com`.
    pub base: String,
    hub: Arc<Hub>,
    _running: Running,
}

struct Hub {
    token: String,
    base: String,
    /// When the rate-limit window resets (epoch seconds).
    reset: u64,
    core: Core,
    world: Mutex<World>,
}

#[derive(Default)]
struct World {
    repos: Vec<Repo>,
    /// `owner/repo`, lower-cased, when only these exist.
    only: Option<BTreeSet<String>>,
    last_id: u64,
    remaining: u64,
}

struct Repo {
    id: u64,
    owner: String,
    name: String,
    labels: Vec<Label>,
    issues: BTreeMap<u64, Issue>,
    /// By lower-cased sha, oldest first.
    statuses: BTreeMap<String, Vec<Value>>,
    pulls: BTreeMap<u64, Pull>,
}

#[derive(Clone)]
struct Label {
    id: u64,
    name: String,
    color: String,
}

#[derive(Default)]
struct Issue {
    comments: Vec<Value>,
    /// Ids of the repository labels on the issue.
    labels: Vec<u64>,
}

enum Target {
    Named(String, String),
    Id(u64),
}

enum Endpoint {
    ListComments(u64),
    CreateComment(u64),
    ListLabels(u64),
    AddLabels(u64),
    RemoveLabel(u64, String),
    CreateStatus(String),
    Compare(String),
    Pull(u64),
    PullFiles(u64),
}

impl GitHub {
    /// Starts a stand-in that accepts `token`.
    pub async fn start(token: &str) -> GitHub {
        let (listener, base) = bind().await;
        let hub = Arc::new(Hub {
            token: token.to_owned(),
            base: base.clone(),
            reset: now() + 3600,
            core: Core::default(),
            world: Mutex::new(World {
                last_id: 1_296_268,
                remaining: RATE_LIMIT,
                ..World::default()
            }),
        });
        let running = serve(listener, hub.clone());
        GitHub {
            base,
            hub,
            _running: running,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// From now on only these repositories (`"owner/repo"`) exist; others answer 404.
    pub fn only_repos(&self, repos: &[&str]) {
        let only = repos.iter().map(|repo| repo.to_ascii_lowercase()).collect();
        self.hub.world.lock().expect("lock").only = Some(only);
    }

    /// The numeric id of a repository, as in `/repositories/{id}/…`.
    pub fn repo_id(&self, owner: &str, repo: &str) -> u64 {
        self.with_repo(owner, repo, |world, index| world.repos[index].id)
    }

    /// Answers the next `times` requests whose method is `method` (`"*"`: any) and whose raw
    /// path contains `path_pattern` with `fault`, after the faults queued before.
    pub fn fail_next(&self, method: &str, path_pattern: &str, fault: Fault, times: usize) {
        self.hub.core.fail_next(method, path_pattern, fault, times);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.hub.core.requests()
    }

    /// Waits (up to 30 s) until `count` answered requests match `method` (`"*"`: any) and
    /// `path_pattern`; returns them.
    pub async fn wait_requests(
        &self,
        method: &str,
        path_pattern: &str,
        count: usize,
    ) -> Vec<Request> {
        self.hub
            .core
            .wait_requests(method, path_pattern, count)
            .await
    }

    /// The bodies of the comments on an issue or pull request, oldest first.
    pub fn comments(&self, owner: &str, repo: &str, number: u64) -> Vec<String> {
        self.with_repo(owner, repo, |world, index| {
            world.repos[index]
                .issues
                .get(&number)
                .map(|issue| {
                    issue
                        .comments
                        .iter()
                        .map(|comment| comment["body"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Adds a comment written by `octocat`; returns its id.
    pub fn seed_comment(&self, owner: &str, repo: &str, number: u64, body: &str) -> u64 {
        self.seed_comment_as(owner, repo, number, SEED_LOGIN, body)
    }

    /// Adds a comment written by `login` (`mecha-bot` is mecha's own); returns its id.
    pub fn seed_comment_as(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
        login: &str,
        body: &str,
    ) -> u64 {
        let base = self.base.clone();
        self.with_repo(owner, repo, |world, index| {
            world.add_comment(&base, index, number, login, body)["id"]
                .as_u64()
                .expect("id")
        })
    }

    /// The names of the labels on an issue or pull request, sorted like GitHub sorts them.
    pub fn labels(&self, owner: &str, repo: &str, number: u64) -> Vec<String> {
        self.with_repo(owner, repo, |world, index| {
            world.repos[index]
                .issue_labels(number)
                .into_iter()
                .map(|label| label.name)
                .collect()
        })
    }

    /// Puts a label on an issue or pull request.
    pub fn seed_label(&self, owner: &str, repo: &str, number: u64, name: &str) {
        self.with_repo(owner, repo, |world, index| {
            world.add_label(index, number, name);
        });
    }

    /// The statuses created for a commit, oldest first, as the API returned them.
    pub fn statuses(&self, owner: &str, repo: &str, sha: &str) -> Vec<Value> {
        self.with_repo(owner, repo, |world, index| {
            world.repos[index]
                .statuses
                .get(&sha.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default()
        })
    }

    fn with_repo<T>(
        &self,
        owner: &str,
        repo: &str,
        then: impl FnOnce(&mut World, usize) -> T,
    ) -> T {
        let mut world = self.hub.world.lock().expect("lock");
        let target = Target::Named(owner.to_owned(), repo.to_owned());
        let index = world
            .find(&target)
            .unwrap_or_else(|| panic!("{owner}/{repo} is not one of the stand-in's repositories"));
        then(&mut world, index)
    }
}

impl World {
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// The repository addressed, created on first use unless `only` leaves it out.
    fn find(&mut self, target: &Target) -> Option<usize> {
        match target {
            Target::Id(id) => self.repos.iter().position(|repo| repo.id == *id),
            Target::Named(owner, name) => {
                if owner.is_empty() || name.is_empty() {
                    return None;
                }
                let key = format!("{owner}/{name}").to_ascii_lowercase();
                if let Some(only) = &self.only
                    && !only.contains(&key)
                {
                    return None;
                }
                let known = self.repos.iter().position(|repo| {
                    repo.owner.eq_ignore_ascii_case(owner) && repo.name.eq_ignore_ascii_case(name)
                });
                if known.is_some() {
                    return known;
                }
                let id = self.next_id();
                self.repos.push(Repo {
                    id,
                    owner: owner.clone(),
                    name: name.clone(),
                    labels: Vec::new(),
                    issues: BTreeMap::new(),
                    statuses: BTreeMap::new(),
                    pulls: BTreeMap::new(),
                });
                Some(self.repos.len() - 1)
            }
        }
    }

    fn add_comment(
        &mut self,
        base: &str,
        index: usize,
        number: u64,
        login: &str,
        body: &str,
    ) -> Value {
        let id = self.next_id();
        let repo = &mut self.repos[index];
        let (owner, name) = (&repo.owner, &repo.name);
        let at = iso8601(now());
        let comment = json!({
            "id": id,
            "node_id": format!("IC_kwDO{id:08X}"),
            "url": format!("{base}/repos/{owner}/{name}/issues/comments/{id}"),
            "html_url": format!("https://github.com/{owner}/{name}/issues/{number}#issuecomment-{id}"),
            "issue_url": format!("{base}/repos/{owner}/{name}/issues/{number}"),
            "body": body,
            "user": user(base, login),
            "created_at": at,
            "updated_at": at,
            "author_association": if login == BOT_LOGIN { "NONE" } else { "OWNER" },
            "performed_via_github_app": null,
        });
        repo.issues
            .entry(number)
            .or_default()
            .comments
            .push(comment.clone());
        comment
    }

    /// Puts the label `name` (matched case-insensitively, created when the repository lacks
    /// it) on the issue.
    fn add_label(&mut self, index: usize, number: u64, name: &str) {
        let existing = self.repos[index]
            .labels
            .iter()
            .find(|label| label.name.eq_ignore_ascii_case(name))
            .map(|label| label.id);
        let id = match existing {
            Some(id) => id,
            None => {
                let id = self.next_id();
                self.repos[index].labels.push(Label {
                    id,
                    name: name.to_owned(),
                    color: "ededed".to_owned(),
                });
                id
            }
        };
        let issue = self.repos[index].issues.entry(number).or_default();
        if !issue.labels.contains(&id) {
            issue.labels.push(id);
        }
    }
}

impl Repo {
    /// The labels on an issue, sorted by name without regard to case.
    fn issue_labels(&self, number: u64) -> Vec<Label> {
        let on = self
            .issues
            .get(&number)
            .map(|issue| issue.labels.clone())
            .unwrap_or_default();
        let mut labels: Vec<Label> = self
            .labels
            .iter()
            .filter(|label| on.contains(&label.id))
            .cloned()
            .collect();
        labels.sort_by_key(|label| label.name.to_lowercase());
        labels
    }

    fn labels_json(&self, base: &str, number: u64) -> Value {
        let labels = self
            .issue_labels(number)
            .iter()
            .map(|label| {
                json!({
                    "id": label.id,
                    "node_id": format!("LA_kwDO{:08X}", label.id),
                    "url": format!(
                        "{base}/repos/{}/{}/labels/{}",
                        self.owner,
                        self.name,
                        percent_encode(&label.name)
                    ),
                    "name": label.name,
                    "color": label.color,
                    "default": false,
                    "description": null,
                })
            })
            .collect();
        Value::Array(labels)
    }
}

fn user(base: &str, login: &str) -> Value {
    let (id, kind) = if login == BOT_LOGIN {
        (BOT_ID, "Bot")
    } else {
        (583_231, "User")
    };
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_kgDO{id:06X}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "url": format!("{base}/users/{login}"),
        "html_url": format!("https://github.com/{login}"),
        "type": kind,
        "site_admin": false,
    })
}

/// GitHub's error body: `{"message","documentation_url","status"}`.
fn error(status: u16, message: &str, documentation_url: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "message": message,
            "documentation_url": documentation_url,
            "status": status.to_string(),
        }),
    )
}

/// What GitHub answers when a body breaks the endpoint's schema.
fn invalid(detail: &str, documentation_url: &str) -> Reply {
    error(
        422,
        &format!("Invalid request.\n\n{detail}"),
        documentation_url,
    )
}

/// What GitHub answers when a model's validation fails.
fn validation_failed(errors: Value, documentation_url: &str) -> Reply {
    Reply::json(
        422,
        json!({
            "message": "Validation Failed",
            "errors": errors,
            "documentation_url": documentation_url,
            "status": "422",
        }),
    )
}

fn not_found() -> Reply {
    error(404, "Not Found", DOCS)
}

/// The route a raw path names, or `None` (GitHub: 404).
fn route(method: &str, path: &str) -> Option<(Target, Endpoint)> {
    let segments = path
        .strip_prefix('/')?
        .split('/')
        .map(|segment| percent_decode(segment, false))
        .collect::<Option<Vec<String>>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (target, rest) = match segments.as_slice() {
        ["repos", owner, repo, rest @ ..] => {
            (Target::Named((*owner).to_owned(), (*repo).to_owned()), rest)
        }
        ["repositories", id, rest @ ..] => (Target::Id(id.parse().ok()?), rest),
        _ => return None,
    };
    let number = |text: &str| text.parse::<u64>().ok().filter(|&number| number > 0);
    let endpoint = match (method, rest) {
        ("GET", ["issues", n, "comments"]) => Endpoint::ListComments(number(n)?),
        ("POST", ["issues", n, "comments"]) => Endpoint::CreateComment(number(n)?),
        ("GET", ["issues", n, "labels"]) => Endpoint::ListLabels(number(n)?),
        ("POST", ["issues", n, "labels"]) => Endpoint::AddLabels(number(n)?),
        ("DELETE", ["issues", n, "labels", name]) if !name.is_empty() => {
            Endpoint::RemoveLabel(number(n)?, (*name).to_owned())
        }
        ("POST", ["statuses", sha]) if !sha.is_empty() => Endpoint::CreateStatus((*sha).to_owned()),
        ("GET", ["compare", range]) => Endpoint::Compare((*range).to_owned()),
        ("GET", ["pulls", n]) => Endpoint::Pull(number(n)?),
        ("GET", ["pulls", n, "files"]) => Endpoint::PullFiles(number(n)?),
        _ => return None,
    };
    Some((target, endpoint))
}

impl Endpoint {
    fn documentation_url(&self) -> &'static str {
        match self {
            Endpoint::ListComments(_) => DOC_LIST_COMMENTS,
            Endpoint::CreateComment(_) => DOC_CREATE_COMMENT,
            Endpoint::ListLabels(_) => DOC_LIST_LABELS,
            Endpoint::AddLabels(_) => DOC_ADD_LABELS,
            Endpoint::RemoveLabel(..) => DOC_REMOVE_LABEL,
            Endpoint::CreateStatus(_) => DOC_CREATE_STATUS,
            Endpoint::Compare(_) => DOC_COMPARE,
            Endpoint::Pull(_) => DOC_GET_PULL,
            Endpoint::PullFiles(_) => DOC_PULL_FILES,
        }
    }
}

/// The JSON body of a write: 415 unless the content type is JSON, 400 unless it parses. An
/// empty body is an empty object.
fn json_body(call: &Call, documentation_url: &str) -> Result<Value, Reply> {
    let is_json = call
        .content_type()
        .is_some_and(|kind| kind == "application/json" || kind.ends_with("+json"));
    if !is_json {
        return Err(error(415, "Unsupported Media Type", documentation_url));
    }
    if call.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&call.body)
        .map_err(|_| error(400, "Problems parsing JSON", documentation_url))
}

/// A `string or null` property: `Ok(None)` when absent or null.
fn optional_string(
    fields: &Map<String, Value>,
    name: &str,
    doc: &str,
) -> Result<Option<String>, Reply> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(invalid(
            &format!("For 'properties/{name}', {other} is not a string or null."),
            doc,
        )),
    }
}

fn request_id(call: &Call) -> String {
    let seq = call.seq;
    format!(
        "C0DE:{:05X}:{:06X}:{:07X}:{:08X}",
        (seq * 7919) & 0xF_FFFF,
        seq & 0xFF_FFFF,
        (seq * 104_729) & 0xFFF_FFFF,
        0x6500_0000 + seq
    )
}

impl Hub {
    fn list_comments(&self, world: &World, index: usize, number: u64, call: &Call) -> Reply {
        let repo = &world.repos[index];
        let comments = repo
            .issues
            .get(&number)
            .map(|issue| issue.comments.clone())
            .unwrap_or_default();
        self.page(
            &comments,
            call,
            &format!("/repositories/{}/issues/{number}/comments", repo.id),
        )
    }

    /// One page of `items` as `per_page` and `page` ask (30 and 1 by default, at most 100 per
    /// page), with a `Link` header whose URLs are `link_path` on this stand-in, like GitHub's.
    fn page(&self, items: &[Value], call: &Call, link_path: &str) -> Reply {
        let per_page = call
            .query_param("per_page")
            .and_then(|value| value.parse::<usize>().ok())
            .filter(|&value| value > 0)
            .unwrap_or(30)
            .min(100);
        let page = call
            .query_param("page")
            .and_then(|value| value.parse::<usize>().ok())
            .filter(|&value| value > 0)
            .unwrap_or(1);
        let window = Window::new(items.len(), page, per_page);
        let reply = Reply::json(200, Value::Array(window.slice(items)));
        let link = |page: usize, rel: &str| {
            format!(
                "<{}{link_path}?{}>; rel=\"{rel}\"",
                self.base,
                with_page(&call.query, page)
            )
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(link(page - 1, "prev"));
        }
        if page < window.last_page {
            links.push(link(page + 1, "next"));
            links.push(link(window.last_page, "last"));
        }
        if page > 1 {
            links.push(link(1, "first"));
        }
        if links.is_empty() {
            reply
        } else {
            reply.header("link", links.join(", "))
        }
    }

    fn create_comment(&self, world: &mut World, index: usize, number: u64, call: &Call) -> Reply {
        let doc = DOC_CREATE_COMMENT;
        let body = match json_body(call, doc) {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let Value::Object(fields) = body else {
            return invalid("Invalid input: object is expected.", doc);
        };
        let text = match fields.get("body") {
            None => return invalid("\"body\" wasn't supplied.", doc),
            Some(Value::String(text)) => text,
            Some(other) => {
                return invalid(
                    &format!("For 'properties/body', {other} is not a string."),
                    doc,
                );
            }
        };
        if text.trim().is_empty() {
            return validation_failed(
                json!([{ "resource": "IssueComment", "code": "missing_field", "field": "body" }]),
                doc,
            );
        }
        if text.chars().count() > 65_536 {
            return validation_failed(
                json!([{
                    "resource": "IssueComment",
                    "code": "custom",
                    "field": "body",
                    "message": "body is too long (maximum is 65536 characters)",
                }]),
                doc,
            );
        }
        let comment = world.add_comment(&self.base, index, number, BOT_LOGIN, text);
        let location = comment["url"].as_str().unwrap_or_default().to_owned();
        Reply::json(201, comment).header("location", location)
    }

    fn add_labels(&self, world: &mut World, index: usize, number: u64, call: &Call) -> Reply {
        let doc = DOC_ADD_LABELS;
        let body = match json_body(call, doc) {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let items = match &body {
            Value::Array(items) => items,
            Value::Object(fields) => match fields.get("labels") {
                Some(Value::Array(items)) => items,
                Some(other) => {
                    return invalid(
                        &format!("For 'properties/labels', {other} is not an array."),
                        doc,
                    );
                }
                None => return invalid("\"labels\" wasn't supplied.", doc),
            },
            other => return invalid(&format!("{other} is not an object or an array."), doc),
        };
        let mut names = Vec::new();
        for (at, item) in items.iter().enumerate() {
            let name = match item {
                Value::String(name) => name,
                Value::Object(label) => match label.get("name") {
                    Some(Value::String(name)) => name,
                    _ => {
                        return invalid(&format!("For 'items/{at}', {item} is not a string."), doc);
                    }
                },
                _ => return invalid(&format!("For 'items/{at}', {item} is not a string."), doc),
            };
            if name.trim().is_empty() {
                return validation_failed(
                    json!([{ "resource": "Label", "code": "missing_field", "field": "name" }]),
                    doc,
                );
            }
            if name.chars().count() > 50 {
                return validation_failed(
                    json!([{
                        "resource": "Label",
                        "code": "custom",
                        "field": "name",
                        "message": "name is too long (maximum is 50 characters)",
                    }]),
                    doc,
                );
            }
            names.push(name.clone());
        }
        for name in names {
            world.add_label(index, number, &name);
        }
        Reply::json(200, world.repos[index].labels_json(&self.base, number))
    }

    fn remove_label(&self, world: &mut World, index: usize, number: u64, name: &str) -> Reply {
        let repo = &mut world.repos[index];
        let id = repo
            .issue_labels(number)
            .into_iter()
            .find(|label| label.name.eq_ignore_ascii_case(name))
            .map(|label| label.id);
        let Some(id) = id else {
            return error(404, "Label does not exist", DOC_REMOVE_LABEL);
        };
        if let Some(issue) = repo.issues.get_mut(&number) {
            issue.labels.retain(|&on| on != id);
        }
        Reply::json(200, repo.labels_json(&self.base, number))
    }

    fn create_status(&self, world: &mut World, index: usize, sha: &str, call: &Call) -> Reply {
        let doc = DOC_CREATE_STATUS;
        let body = match json_body(call, doc) {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let Value::Object(fields) = body else {
            return invalid("Invalid input: object is expected.", doc);
        };
        let state = match fields.get("state") {
            None => return invalid("\"state\" wasn't supplied.", doc),
            Some(Value::String(state))
                if matches!(state.as_str(), "error" | "failure" | "pending" | "success") =>
            {
                state.clone()
            }
            Some(other) => {
                return invalid(
                    &format!(
                        "For 'properties/state', {other} is not one of [\"error\", \"failure\", \"pending\", \"success\"]."
                    ),
                    doc,
                );
            }
        };
        let (target_url, description, context) = match (
            optional_string(&fields, "target_url", doc),
            optional_string(&fields, "description", doc),
            optional_string(&fields, "context", doc),
        ) {
            (Ok(target_url), Ok(description), Ok(context)) => (target_url, description, context),
            (Err(reply), _, _) | (_, Err(reply), _) | (_, _, Err(reply)) => return reply,
        };
        if description
            .as_deref()
            .is_some_and(|text| text.chars().count() > 140)
        {
            return validation_failed(
                json!([{
                    "resource": "Status",
                    "code": "custom",
                    "field": "description",
                    "message": "description is too long (maximum is 140 characters)",
                }]),
                doc,
            );
        }
        if !is_full_sha(sha) {
            return error(422, &format!("No commit found for SHA: {sha}"), doc);
        }
        let sha = sha.to_ascii_lowercase();
        let id = world.next_id();
        let repo = &mut world.repos[index];
        let at = iso8601(now());
        let status = json!({
            "url": format!("{}/repos/{}/{}/statuses/{sha}", self.base, repo.owner, repo.name),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{BOT_ID}?v=4"),
            "id": id,
            "node_id": format!("SC_kwDO{id:08X}"),
            "state": state,
            "description": description,
            "target_url": target_url,
            "context": context.unwrap_or_else(|| "default".to_owned()),
            "created_at": at,
            "updated_at": at,
            "creator": user(&self.base, BOT_LOGIN),
        });
        repo.statuses.entry(sha).or_default().push(status.clone());
        Reply::json(201, status)
    }
}

impl StandIn for Hub {
    fn core(&self) -> &Core {
        &self.core
    }

    fn answer(&self, call: &Call) -> Reply {
        if call
            .header("user-agent")
            .is_none_or(|agent| agent.trim().is_empty())
        {
            return Reply::text(403, "text/plain; charset=utf-8", NO_USER_AGENT);
        }
        let authenticated = match call.header("authorization") {
            None => false,
            Some(value) => {
                let presented = value
                    .trim()
                    .split_once(' ')
                    .filter(|(scheme, _)| {
                        scheme.eq_ignore_ascii_case("bearer")
                            || scheme.eq_ignore_ascii_case("token")
                    })
                    .map(|(_, token)| token.trim());
                if presented != Some(self.token.as_str()) {
                    return error(401, "Bad credentials", DOCS);
                }
                true
            }
        };
        let mut world = self.world.lock().expect("lock");
        if authenticated {
            world.remaining = world.remaining.saturating_sub(1);
        }
        let Some((target, endpoint)) = route(call.method.as_str(), &call.path) else {
            return not_found();
        };
        let Some(index) = world.find(&target) else {
            return not_found();
        };
        if !authenticated {
            return error(401, "Requires authentication", endpoint.documentation_url());
        }
        match endpoint {
            Endpoint::ListComments(number) => self.list_comments(&world, index, number, call),
            Endpoint::CreateComment(number) => self.create_comment(&mut world, index, number, call),
            Endpoint::ListLabels(number) => {
                Reply::json(200, world.repos[index].labels_json(&self.base, number))
            }
            Endpoint::AddLabels(number) => self.add_labels(&mut world, index, number, call),
            Endpoint::RemoveLabel(number, name) => {
                self.remove_label(&mut world, index, number, &name)
            }
            Endpoint::CreateStatus(sha) => self.create_status(&mut world, index, &sha, call),
            Endpoint::Compare(range) => self.compare(&world, index, &range, call),
            Endpoint::Pull(number) => self.pull(&world, index, number, call),
            Endpoint::PullFiles(number) => self.pull_files(&world, index, number, call),
        }
    }

    fn fault(&self, call: &Call, fault: &Fault) -> Reply {
        let id = request_id(call);
        let at = iso8601(now()).replace('T', " ").replace('Z', " UTC");
        match fault {
            Fault::RateLimited => error(
                403,
                &format!(
                    "API rate limit exceeded for user ID {BOT_ID}. If you reach out to GitHub \
                     Support for help, please include the request ID {id} and timestamp {at}."
                ),
                DOC_RATE_LIMITS,
            )
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-used", RATE_LIMIT.to_string())
            .header("x-ratelimit-reset", (now() + 1).to_string()),
            Fault::SecondaryRateLimit => error(
                429,
                &format!(
                    "You have exceeded a secondary rate limit. Please wait a few minutes before \
                     you try again. If you reach out to GitHub Support for help, please include \
                     the request ID {id}."
                ),
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            )
            .header("retry-after", "1"),
            Fault::Status(422) => validation_failed(json!([]), DOCS),
            Fault::Status(code) => {
                let message = match code {
                    401 => "Bad credentials",
                    403 => "Resource not accessible by integration",
                    404 => "Not Found",
                    500 | 502 => "Server Error",
                    other => reason(*other),
                };
                error(*code, message, DOCS)
            }
            Fault::Hang(_) | Fault::Held(_) => self.answer(call),
        }
    }

    fn finish(&self, call: &Call, reply: &mut Reply) {
        let remaining = self.world.lock().expect("lock").remaining;
        reply.default_header("content-type", "application/json; charset=utf-8");
        reply.default_header("x-github-api-version-selected", "2022-11-28");
        reply.default_header("x-github-media-type", "github.v3; format=json");
        reply.default_header("x-github-request-id", request_id(call));
        reply.default_header("x-ratelimit-limit", RATE_LIMIT.to_string());
        reply.default_header("x-ratelimit-remaining", remaining.to_string());
        reply.default_header("x-ratelimit-used", (RATE_LIMIT - remaining).to_string());
        reply.default_header("x-ratelimit-reset", self.reset.to_string());
        reply.default_header("x-ratelimit-resource", "core");
    }
}
