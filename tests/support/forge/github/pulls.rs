//! The stand-in's pull-request reads, as the github source's hydration makes them:
//!
//! * `GET /repos/{owner}/{repo}/compare/{base}...{head}`: with
//!   `Accept: application/vnd.github.diff` → 200 `text/plain` with the diff of the pull request
//!   whose base and head these are; otherwise → 200 JSON with `status`, `ahead_by`,
//!   `total_commits`, `commits: []` and `files` (`sha`, `filename`, `status`, `additions`,
//!   `deletions`, `changes`), at most 300 files like GitHub's. Unknown SHAs → 404
//!   `{"message":"Not Found"}`.
//! * `GET /repos/{owner}/{repo}/pulls/{number}`: the diff with the diff media type, else the
//!   pull request (`number`, `state`, `title`, `head.sha`, `base.sha`, `changed_files`).
//! * `GET /repos/{owner}/{repo}/pulls/{number}/files?per_page=&page=`: the files, 30 per page by
//!   default and at most 100, with a `Link` header like the comments'.
//!
//! Pull requests exist only once seeded with [`GitHub::seed_pull`].

use serde_json::{Value, json};

use super::super::{Call, Reply};
use super::{DOCS, GitHub, Hub, World, error, not_found};

const DIFF_MEDIA_TYPE: &str = "application/vnd.github.diff";
/// GitHub lists at most this many files in a comparison.
const COMPARE_FILE_CAP: usize = 300;

/// A seeded pull request.
#[derive(Clone, Default)]
pub struct Pull {
    pub base_sha: String,
    pub head_sha: String,
    /// The unified diff GitHub would render.
    pub diff: String,
    /// Changed file names, in GitHub's order.
    pub files: Vec<String>,
}

impl GitHub {
    /// Adds pull request `number` to `owner/repo`.
    pub fn seed_pull(&self, owner: &str, repo: &str, number: u64, pull: Pull) {
        self.with_repo(owner, repo, |world, index| {
            world.repos[index].pulls.insert(number, pull);
        });
    }
}

fn wants_diff(call: &Call) -> bool {
    call.header("accept")
        .is_some_and(|accept| accept.contains(DIFF_MEDIA_TYPE))
}

fn diff_reply(diff: &str) -> Reply {
    Reply::text(200, "text/plain; charset=utf-8", diff)
        .header("x-github-media-type", "github.v3; format=diff")
}

fn file_json(index: usize, name: &str) -> Value {
    json!({
        "sha": format!("{:040x}", index + 1),
        "filename": name,
        "status": "modified",
        "additions": 1,
        "deletions": 1,
        "changes": 2,
    })
}

impl Hub {
    pub(super) fn compare(&self, world: &World, index: usize, range: &str, call: &Call) -> Reply {
        let Some((base, head)) = range.split_once("...") else {
            return not_found();
        };
        let repo = &world.repos[index];
        let Some(pull) = repo.pulls.values().find(|pull| {
            pull.base_sha.eq_ignore_ascii_case(base) && pull.head_sha.eq_ignore_ascii_case(head)
        }) else {
            return not_found();
        };
        if wants_diff(call) {
            return diff_reply(&pull.diff);
        }
        let files: Vec<Value> = pull
            .files
            .iter()
            .take(COMPARE_FILE_CAP)
            .enumerate()
            .map(|(at, name)| file_json(at, name))
            .collect();
        Reply::json(
            200,
            json!({
                "url": format!("{}/repos/{}/{}/compare/{range}", self.base, repo.owner, repo.name),
                "status": "ahead",
                "ahead_by": 1,
                "behind_by": 0,
                "total_commits": 1,
                "commits": [],
                "files": files,
            }),
        )
    }

    pub(super) fn pull(&self, world: &World, index: usize, number: u64, call: &Call) -> Reply {
        let Some(pull) = world.repos[index].pulls.get(&number) else {
            return not_found();
        };
        if wants_diff(call) {
            return diff_reply(&pull.diff);
        }
        Reply::json(
            200,
            json!({
                "number": number,
                "state": "open",
                "title": format!("Pull request {number}"),
                "head": { "sha": pull.head_sha },
                "base": { "sha": pull.base_sha },
                "changed_files": pull.files.len(),
            }),
        )
    }

    pub(super) fn pull_files(
        &self,
        world: &World,
        index: usize,
        number: u64,
        call: &Call,
    ) -> Reply {
        let repo = &world.repos[index];
        let Some(pull) = repo.pulls.get(&number) else {
            return error(404, "Not Found", DOCS);
        };
        let files: Vec<Value> = pull
            .files
            .iter()
            .enumerate()
            .map(|(at, name)| file_json(at, name))
            .collect();
        self.page(
            &files,
            call,
            &format!("/repositories/{}/pulls/{number}/files", repo.id),
        )
    }
}
