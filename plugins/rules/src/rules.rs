//! The rules applied to each proposed action, in plain Rust so that they run (and are tested)
//! natively.
//!
//! Each action is judged on its own and ends up allowed, rewritten (a truncated comment, labels
//! with some entries filtered out) or dropped, with a verdict saying which and why. `output` is
//! the worker's free text, not an action, and always passes through unchanged.

use mecha_plugin_sdk::policy::{Action, Comment, Commit, Decision, Labels, Status, TaskResult};

use crate::config::{self, CommentRule, CommitRule, Invalid, LabelsRule, Policy, Rules};

/// Appended to a truncated comment so readers know the text was cut; 27 characters.
const TRUNCATION_SUFFIX: &str = "\n\n... (truncated by policy)";

/// The states a commit status may take, as GitHub and GitLab name them.
const STATUS_STATES: [&str; 4] = ["error", "failure", "pending", "success"];

/// Filters `proposed` under `rules`, the worker's policy config as JSON text.
pub fn evaluate(proposed: TaskResult, rules: &str) -> (TaskResult, Decision) {
    match config::parse(rules) {
        Ok(Policy::AllowAll) => allow_all(proposed),
        Ok(Policy::Rules(rules)) => apply(proposed, &rules),
        Err(invalid) => deny_all(proposed, &invalid),
    }
}

/// No policy: everything passes, and the decision lists every action that was proposed.
fn allow_all(proposed: TaskResult) -> (TaskResult, Decision) {
    let mut decision = Decision::default();
    for action in proposed.actions() {
        decision.allow(action, format!("{action}: no policy"));
    }
    (proposed, decision)
}

/// An invalid config: only `output` passes, and every action proposed is denied with the reason.
fn deny_all(proposed: TaskResult, invalid: &Invalid) -> (TaskResult, Decision) {
    let mut decision = Decision::default();
    for action in proposed.actions() {
        decision.deny(
            action,
            format!("{action}: denied (invalid policy config: {invalid})"),
        );
    }
    (TaskResult::output_only(proposed.output), decision)
}

/// A valid config: each action proposed is judged by its section, or passes when it has none.
fn apply(proposed: TaskResult, rules: &Rules) -> (TaskResult, Decision) {
    let mut decision = Decision::default();
    let TaskResult {
        output,
        comment,
        labels,
        status,
        commit,
        metadata,
    } = proposed;
    let result = TaskResult {
        output,
        comment: comment.and_then(|comment| match &rules.comment {
            Some(rule) => judge_comment(comment, rule, &mut decision),
            None => unruled(Action::Comment, comment, &mut decision),
        }),
        labels: labels.and_then(|labels| match &rules.labels {
            Some(rule) => judge_labels(labels, rule, &mut decision),
            None => unruled(Action::Labels, labels, &mut decision),
        }),
        status: status.and_then(|status| match rules.status {
            Some(allow) => judge_status(status, allow, &mut decision),
            None => unruled(Action::Status, status, &mut decision),
        }),
        commit: commit.and_then(|commit| match &rules.commit {
            Some(rule) => judge_commit(commit, rule, &mut decision),
            None => unruled(Action::Commit, commit, &mut decision),
        }),
        metadata: metadata.and_then(|metadata| match rules.metadata {
            Some(true) => {
                decision.allow(Action::Metadata, "metadata");
                Some(metadata)
            }
            Some(false) => {
                decision.deny(Action::Metadata, "metadata: redacted by policy");
                None
            }
            None => unruled(Action::Metadata, metadata, &mut decision),
        }),
    };
    (result, decision)
}

/// An action whose section the config does not have: it passes unconditionally.
fn unruled<T>(action: Action, proposed: T, decision: &mut Decision) -> Option<T> {
    decision.allow(action, format!("{action}: no rule"));
    Some(proposed)
}

/// Drops `action` because its section says `allow: false` (or has no `allow`).
fn blocked<T>(action: Action, decision: &mut Decision) -> Option<T> {
    decision.deny(action, format!("{action}: blocked by policy"));
    None
}

fn judge_comment(
    mut comment: Comment,
    rule: &CommentRule,
    decision: &mut Decision,
) -> Option<Comment> {
    if !rule.allow {
        return blocked(Action::Comment, decision);
    }
    match truncate(&comment.body, rule.max_length) {
        Some(body) => {
            comment.body = body;
            decision.allow(Action::Comment, "comment (truncated)");
        }
        None => decision.allow(Action::Comment, "comment"),
    }
    Some(comment)
}

/// `body` cut to `max_length` characters (Unicode scalar values, so a character is never split),
/// ending in [`TRUNCATION_SUFFIX`] when there is room for it; `None` when it already fits or
/// `max_length` is 0 (no limit).
fn truncate(body: &str, max_length: usize) -> Option<String> {
    if max_length == 0 || body.chars().count() <= max_length {
        return None;
    }
    let suffix_length = TRUNCATION_SUFFIX.chars().count();
    if max_length <= suffix_length {
        return Some(body.chars().take(max_length).collect());
    }
    let mut cut: String = body.chars().take(max_length - suffix_length).collect();
    cut.push_str(TRUNCATION_SUFFIX);
    Some(cut)
}

fn judge_labels(labels: Labels, rule: &LabelsRule, decision: &mut Decision) -> Option<Labels> {
    if !rule.allow {
        return blocked(Action::Labels, decision);
    }
    let blocked: Vec<String> = rule
        .blocked
        .iter()
        .map(|label| label.to_lowercase())
        .collect();
    let allowed: Vec<String> = rule
        .allowed
        .iter()
        .map(|label| label.to_lowercase())
        .collect();
    let mut keep = |change: &str, label: &String| {
        let folded = label.to_lowercase();
        if blocked.contains(&folded) {
            decision.deny(
                Action::Labels,
                format!("label {change} {label:?}: blocked by policy"),
            );
            false
        } else if !allowed.is_empty() && !allowed.contains(&folded) {
            decision.deny(
                Action::Labels,
                format!("label {change} {label:?}: not in allowlist"),
            );
            false
        } else {
            true
        }
    };
    let add: Vec<String> = labels
        .add
        .into_iter()
        .filter(|label| keep("add", label))
        .collect();
    let remove: Vec<String> = labels
        .remove
        .into_iter()
        .filter(|label| keep("remove", label))
        .collect();
    if add.is_empty() && remove.is_empty() {
        return None;
    }
    decision.allow(Action::Labels, "labels");
    Some(Labels { add, remove })
}

fn judge_status(status: Status, allow: bool, decision: &mut Decision) -> Option<Status> {
    if !allow {
        return blocked(Action::Status, decision);
    }
    if !status.state.is_empty() && !STATUS_STATES.contains(&status.state.as_str()) {
        decision.deny(
            Action::Status,
            format!("status: invalid state {:?}", status.state),
        );
        return None;
    }
    decision.allow(Action::Status, "status");
    Some(status)
}

fn judge_commit(commit: Commit, rule: &CommitRule, decision: &mut Decision) -> Option<Commit> {
    if !rule.allow {
        return blocked(Action::Commit, decision);
    }
    let size = commit.diff.len();
    if rule.max_size > 0 && size > rule.max_size {
        decision.deny(
            Action::Commit,
            format!(
                "commit: diff {size} bytes exceeds max_size {}",
                rule.max_size
            ),
        );
        return None;
    }
    decision.allow(Action::Commit, "commit");
    Some(commit)
}

#[cfg(test)]
mod tests;
