//! The payload of each hook kind and the attrs it gives.
//!
//! | hook | attrs |
//! |---|---|
//! | merge request | `number` (iid), `title`, `body` (description), `head_branch` (source), `base_branch` (target), `ref` and `head_sha` (last commit), `state`, `action`, `url`, `labels`, `draft`, `work_in_progress` |
//! | push, tag push | `ref`, `branch` or `tag` (the ref without `refs/heads/` or `refs/tags/`), `head_sha` (`after`), `before`, `compare_url`, `commits`, `total_commits_count` |
//! | note | `comment`, `noteable_type`, `url`; `number` and `title` of the merge request or issue, plus `head_branch`, `base_branch` and `head_sha` of a merge request; `commit_id` of a commit; `snippet_id` and `title` of a snippet |
//! | issue | `number` (iid), `title`, `body`, `state`, `action`, `url`, `labels` |
//! | pipeline | `pipeline_id`, `status`, `ref`, `head_sha`, `source`, `url`, and `number` of its merge request |
//! | job | `job_id`, `job_name`, `stage`, `status`, `ref`, `head_sha`, `pipeline_id` |
//! | release | `tag`, `title` (name), `body` (description), `action`, `url` |
//! | any other | `action`, `url` of `object_attributes` |
//!
//! Each kind has its own structs because GitLab reuses names with other shapes across hooks:
//! `source` is a string in a pipeline and a project in a merge request, `tag` a bool in a job and
//! a name in a release.

use super::HookPayload;
use mecha_plugin_sdk::source::Event;
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct MergeRequestHook {
    object_attributes: Option<MergeRequest>,
}

impl HookPayload for MergeRequestHook {
    fn action(&self) -> Option<&str> {
        self.object_attributes.as_ref()?.action.as_deref()
    }

    fn add_to(&self, event: &mut Event) {
        if let Some(merge_request) = &self.object_attributes {
            merge_request.add_to(event);
        }
    }
}

/// A merge request: the hook's `object_attributes`, or what a note or pipeline is on.
#[derive(Deserialize)]
struct MergeRequest {
    iid: Option<i64>,
    title: Option<String>,
    description: Option<String>,
    source_branch: Option<String>,
    target_branch: Option<String>,
    last_commit: Option<LastCommit>,
    state: Option<String>,
    action: Option<String>,
    url: Option<String>,
    labels: Option<Vec<Label>>,
    draft: Option<bool>,
    work_in_progress: Option<bool>,
}

#[derive(Deserialize)]
struct LastCommit {
    id: Option<String>,
}

impl MergeRequest {
    fn add_to(&self, event: &mut Event) {
        self.add_reference_to(event);
        event.set_attr_some("body", self.description.as_deref());
        event.set_attr_some("ref", self.head_sha());
        event.set_attr_some("state", self.state.as_deref());
        event.set_attr_some("action", self.action.as_deref());
        event.set_attr_some("url", self.url.as_deref());
        event.set_attr_some("labels", self.labels.as_deref().map(join_labels));
        event.set_attr_some("draft", self.draft);
        event.set_attr_some("work_in_progress", self.work_in_progress);
    }

    /// What a note on this merge request needs to answer on it: where, and on which commit.
    fn add_reference_to(&self, event: &mut Event) {
        event.set_attr_some("number", self.iid);
        event.set_attr_some("title", self.title.as_deref());
        event.set_attr_some("head_branch", self.source_branch.as_deref());
        event.set_attr_some("base_branch", self.target_branch.as_deref());
        event.set_attr_some("head_sha", self.head_sha());
    }

    fn head_sha(&self) -> Option<&str> {
        self.last_commit.as_ref()?.id.as_deref()
    }
}

#[derive(Deserialize)]
pub(super) struct IssueHook {
    object_attributes: Option<Issue>,
}

impl HookPayload for IssueHook {
    fn action(&self) -> Option<&str> {
        self.object_attributes.as_ref()?.action.as_deref()
    }

    fn add_to(&self, event: &mut Event) {
        if let Some(issue) = &self.object_attributes {
            issue.add_to(event);
        }
    }
}

/// An issue: the hook's `object_attributes`, or what a note is on.
#[derive(Deserialize)]
struct Issue {
    iid: Option<i64>,
    title: Option<String>,
    description: Option<String>,
    state: Option<String>,
    action: Option<String>,
    url: Option<String>,
    labels: Option<Vec<Label>>,
}

impl Issue {
    fn add_to(&self, event: &mut Event) {
        self.add_reference_to(event);
        event.set_attr_some("body", self.description.as_deref());
        event.set_attr_some("state", self.state.as_deref());
        event.set_attr_some("action", self.action.as_deref());
        event.set_attr_some("url", self.url.as_deref());
        event.set_attr_some("labels", self.labels.as_deref().map(join_labels));
    }

    fn add_reference_to(&self, event: &mut Event) {
        event.set_attr_some("number", self.iid);
        event.set_attr_some("title", self.title.as_deref());
    }
}

#[derive(Deserialize)]
struct Label {
    title: Option<String>,
}

/// Label titles joined with `, `, as the GitHub source writes them.
fn join_labels(labels: &[Label]) -> String {
    labels
        .iter()
        .filter_map(|label| label.title.as_deref())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Push and tag push hooks, which share their shape.
#[derive(Deserialize)]
pub(super) struct PushHook {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    before: Option<String>,
    after: Option<String>,
    commits: Option<Vec<PushCommit>>,
    total_commits_count: Option<i64>,
    project: Option<PushProject>,
}

#[derive(Deserialize)]
struct PushCommit {
    id: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct PushProject {
    web_url: Option<String>,
}

impl HookPayload for PushHook {
    fn add_to(&self, event: &mut Event) {
        if let Some(git_ref) = &self.git_ref {
            event.set_attr("ref", git_ref.as_str());
            event.set_attr_some("branch", git_ref.strip_prefix("refs/heads/"));
            event.set_attr_some("tag", git_ref.strip_prefix("refs/tags/"));
        }
        event.set_attr_some("head_sha", self.after.as_deref());
        event.set_attr_some("before", self.before.as_deref());
        event.set_attr_some("compare_url", self.compare_url());
        if let Some(commits) = &self.commits {
            let lines: Vec<String> = commits.iter().map(PushCommit::summary).collect();
            event.set_attr("commits", lines.join("\n"));
        }
        event.set_attr_some("total_commits_count", self.total_commits_count);
    }
}

impl PushHook {
    /// The project's compare page from `before` to `after`, which GitLab does not send itself.
    ///
    /// None when a side is the all-zero sha GitLab sends for a created or deleted ref: there is
    /// no commit to compare with.
    fn compare_url(&self) -> Option<String> {
        let web_url = self.project.as_ref()?.web_url.as_deref()?;
        let real = |sha: &str| !sha.is_empty() && !sha.bytes().all(|byte| byte == b'0');
        let before = self.before.as_deref().filter(|sha| real(sha))?;
        let after = self.after.as_deref().filter(|sha| real(sha))?;
        Some(format!(
            "{}/-/compare/{before}...{after}",
            web_url.trim_end_matches('/')
        ))
    }
}

impl PushCommit {
    /// `<first 8 characters of the id> <first line of the message>`.
    fn summary(&self) -> String {
        let id: String = self.id.as_deref().unwrap_or("").chars().take(8).collect();
        let title = self
            .message
            .as_deref()
            .and_then(|message| message.lines().next())
            .unwrap_or("");
        format!("{id} {title}")
    }
}

#[derive(Deserialize)]
pub(super) struct NoteHook {
    object_attributes: Option<Note>,
    merge_request: Option<MergeRequest>,
    issue: Option<Issue>,
    commit: Option<NoteCommit>,
    snippet: Option<Snippet>,
}

#[derive(Deserialize)]
struct Note {
    note: Option<String>,
    noteable_type: Option<String>,
    commit_id: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct NoteCommit {
    id: Option<String>,
}

#[derive(Deserialize)]
struct Snippet {
    id: Option<i64>,
    title: Option<String>,
}

impl HookPayload for NoteHook {
    fn add_to(&self, event: &mut Event) {
        if let Some(merge_request) = &self.merge_request {
            merge_request.add_reference_to(event);
        }
        if let Some(issue) = &self.issue {
            issue.add_reference_to(event);
        }
        if let Some(snippet) = &self.snippet {
            event.set_attr_some("snippet_id", snippet.id);
            event.set_attr_some("title", snippet.title.as_deref());
        }
        let Some(note) = &self.object_attributes else {
            return;
        };
        event.set_attr_some("comment", note.note.as_deref());
        event.set_attr_some("noteable_type", note.noteable_type.as_deref());
        event.set_attr_some("url", note.url.as_deref());
        if note.noteable_type.as_deref() == Some("Commit") {
            let commit_id = self.commit.as_ref().and_then(|commit| commit.id.as_deref());
            let commit_id = commit_id.or(note.commit_id.as_deref());
            event.set_attr_some("commit_id", commit_id.filter(|id| !id.is_empty()));
        }
    }
}

#[derive(Deserialize)]
pub(super) struct PipelineHook {
    object_attributes: Option<Pipeline>,
    merge_request: Option<MergeRequest>,
}

#[derive(Deserialize)]
struct Pipeline {
    id: Option<i64>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sha: Option<String>,
    source: Option<String>,
    status: Option<String>,
    url: Option<String>,
}

impl HookPayload for PipelineHook {
    fn add_to(&self, event: &mut Event) {
        if let Some(pipeline) = &self.object_attributes {
            event.set_attr_some("pipeline_id", pipeline.id);
            event.set_attr_some("status", pipeline.status.as_deref());
            event.set_attr_some("ref", pipeline.git_ref.as_deref());
            event.set_attr_some("head_sha", pipeline.sha.as_deref());
            event.set_attr_some("source", pipeline.source.as_deref());
            event.set_attr_some("url", pipeline.url.as_deref());
        }
        if let Some(merge_request) = &self.merge_request {
            event.set_attr_some("number", merge_request.iid);
        }
    }
}

/// A job (GitLab's API still calls them builds); its fields are at the top level.
#[derive(Deserialize)]
pub(super) struct JobHook {
    build_id: Option<i64>,
    build_name: Option<String>,
    build_stage: Option<String>,
    build_status: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sha: Option<String>,
    pipeline_id: Option<i64>,
}

impl HookPayload for JobHook {
    fn add_to(&self, event: &mut Event) {
        event.set_attr_some("job_id", self.build_id);
        event.set_attr_some("job_name", self.build_name.as_deref());
        event.set_attr_some("stage", self.build_stage.as_deref());
        event.set_attr_some("status", self.build_status.as_deref());
        event.set_attr_some("ref", self.git_ref.as_deref());
        event.set_attr_some("head_sha", self.sha.as_deref());
        event.set_attr_some("pipeline_id", self.pipeline_id);
    }
}

/// A release; its fields, action included, are at the top level.
#[derive(Deserialize)]
pub(super) struct ReleaseHook {
    tag: Option<String>,
    name: Option<String>,
    description: Option<String>,
    action: Option<String>,
    url: Option<String>,
}

impl HookPayload for ReleaseHook {
    fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    fn add_to(&self, event: &mut Event) {
        event.set_attr_some("tag", self.tag.as_deref());
        event.set_attr_some("title", self.name.as_deref());
        event.set_attr_some("body", self.description.as_deref());
        event.set_attr_some("action", self.action.as_deref());
        event.set_attr_some("url", self.url.as_deref());
    }
}

/// A hook this parser has no mapping for: only what most hooks' `object_attributes` share.
#[derive(Deserialize)]
pub(super) struct OtherHook {
    object_attributes: Option<ObjectSummary>,
}

#[derive(Deserialize)]
struct ObjectSummary {
    action: Option<String>,
    url: Option<String>,
}

impl HookPayload for OtherHook {
    fn action(&self) -> Option<&str> {
        self.object_attributes.as_ref()?.action.as_deref()
    }

    fn add_to(&self, event: &mut Event) {
        if let Some(object) = &self.object_attributes {
            event.set_attr_some("action", object.action.as_deref());
            event.set_attr_some("url", object.url.as_deref());
        }
    }
}
