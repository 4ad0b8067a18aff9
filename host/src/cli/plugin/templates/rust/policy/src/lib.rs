//! {{name}}: a mecha policy plugin. It decides which of a worker's proposed actions go out.
//!
//! The rules are the worker's policy configuration, as JSON (see `fixtures/rules.json`):
//!
//! ```json
//! {"max_length": 2000, "allowed_labels": ["bug", "enhancement"]}
//! ```
//!
//! A comment longer than `max_length` characters is denied; a label (added or removed) that
//! `allowed_labels` does not list is denied, the others go through. A rule left out allows
//! everything it would judge. `status`, `commit` and `metadata` pass unjudged, and `output` is
//! free text, not an action: it always passes. Rules that are not valid deny every action.
//!
//! A policy must decide the same way every time: it has no network, its clock is stopped at the
//! Unix epoch and its randomness is seeded. The logic is in a plain function ([`evaluate`]) that
//! `cargo test` runs natively.

wit_bindgen::generate!({
    world: "policy",
    path: "wit",
    generate_all,
});

use exports::mecha::plugin::policy_api::Guest;
use mecha::plugin::types::{
    Comment, Decision, Labels, PluginInfo, StoredEvent, TaskResult, Verdict,
};

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "{{name}}".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            summary: "Limits comment length and the labels a worker may set".to_owned(),
            secrets: Vec::new(),
            settings: Vec::new(),
            hosts: Vec::new(),
        }
    }

    fn evaluate(
        _event: StoredEvent,
        proposed: TaskResult,
        rules: String,
    ) -> (TaskResult, Decision) {
        evaluate(proposed, &rules)
    }
}

// The export exists only in the component: natively (`cargo test`) this is a plain library.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

/// What the worker's policy configuration says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rules {
    /// The longest comment allowed, in characters.
    pub max_length: Option<usize>,
    /// The only labels that may be added or removed (compared case-insensitively).
    pub allowed_labels: Option<Vec<String>>,
}

/// Reads the rules; `null` (a worker that gave no configuration) is no rules.
pub fn parse_rules(rules: &str) -> Result<Rules, String> {
    let value: serde_json::Value =
        serde_json::from_str(rules).map_err(|err| format!("the rules are not JSON: {err}"))?;
    let object = match &value {
        serde_json::Value::Null => return Ok(Rules::default()),
        serde_json::Value::Object(object) => object,
        _ => return Err("the rules must be a JSON object".to_owned()),
    };
    let max_length = match object.get("max_length") {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|max| usize::try_from(max).ok())
                .ok_or("max_length must be a whole number")?,
        ),
    };
    let allowed_labels = match object.get("allowed_labels") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Array(labels)) => Some(
            labels
                .iter()
                .map(|label| label.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("allowed_labels must be a list of strings")?,
        ),
        Some(_) => return Err("allowed_labels must be a list of strings".to_owned()),
    };
    Ok(Rules {
        max_length,
        allowed_labels,
    })
}

/// `proposed` with the denied actions removed, and the verdicts saying why.
pub fn evaluate(proposed: TaskResult, rules: &str) -> (TaskResult, Decision) {
    let mut decision = Decision {
        allowed: Vec::new(),
        denied: Vec::new(),
    };
    let rules = match parse_rules(rules) {
        Ok(rules) => rules,
        Err(why) => return (deny_all(proposed, &why, &mut decision), decision),
    };
    let result = TaskResult {
        output: proposed.output,
        comment: proposed
            .comment
            .and_then(|comment| judge_comment(comment, rules.max_length, &mut decision)),
        labels: proposed.labels.and_then(|labels| {
            judge_labels(labels, rules.allowed_labels.as_deref(), &mut decision)
        }),
        status: unjudged("status", proposed.status, &mut decision),
        commit: unjudged("commit", proposed.commit, &mut decision),
        metadata: unjudged("metadata", proposed.metadata, &mut decision),
    };
    (result, decision)
}

fn verdict(action: &str, reason: String) -> Verdict {
    Verdict {
        action: action.to_owned(),
        reason,
    }
}

/// Invalid rules: only `output` passes, every action proposed is denied with the reason.
fn deny_all(proposed: TaskResult, why: &str, decision: &mut Decision) -> TaskResult {
    let present = [
        ("comment", proposed.comment.is_some()),
        ("labels", proposed.labels.is_some()),
        ("status", proposed.status.is_some()),
        ("commit", proposed.commit.is_some()),
        ("metadata", proposed.metadata.is_some()),
    ];
    for (action, _) in present.iter().filter(|(_, present)| *present) {
        decision.denied.push(verdict(
            action,
            format!("{action}: denied, invalid rules: {why}"),
        ));
    }
    TaskResult {
        output: proposed.output,
        comment: None,
        labels: None,
        status: None,
        commit: None,
        metadata: None,
    }
}

fn judge_comment(
    comment: Comment,
    max_length: Option<usize>,
    decision: &mut Decision,
) -> Option<Comment> {
    let Some(max_length) = max_length else {
        decision
            .allowed
            .push(verdict("comment", "comment: no max_length rule".to_owned()));
        return Some(comment);
    };
    let length = comment.body.chars().count();
    if length > max_length {
        decision.denied.push(verdict(
            "comment",
            format!("comment: {length} characters, over max_length {max_length}"),
        ));
        return None;
    }
    decision.allowed.push(verdict(
        "comment",
        format!("comment: {length} characters, within max_length {max_length}"),
    ));
    Some(comment)
}

fn judge_labels(
    labels: Labels,
    allowed_labels: Option<&[String]>,
    decision: &mut Decision,
) -> Option<Labels> {
    let Some(allowed_labels) = allowed_labels else {
        decision.allowed.push(verdict(
            "labels",
            "labels: no allowed_labels rule".to_owned(),
        ));
        return Some(labels);
    };
    let mut keep = |change: &str, label: &String| {
        if allowed_labels
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(label))
        {
            decision.allowed.push(verdict(
                "labels",
                format!("labels: {change} {label:?} (in allowed_labels)"),
            ));
            true
        } else {
            decision.denied.push(verdict(
                "labels",
                format!("labels: {change} {label:?} denied, not in allowed_labels"),
            ));
            false
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
    Some(Labels { add, remove })
}

/// An action this policy has no rule for: it passes.
fn unjudged<T>(action: &str, proposed: Option<T>, decision: &mut Decision) -> Option<T> {
    if proposed.is_some() {
        decision.allowed.push(verdict(
            action,
            format!("{action}: not judged by this policy"),
        ));
    }
    proposed
}

#[cfg(test)]
mod tests {
    use super::*;
    use mecha::plugin::types::{Commit, Status};

    const RULES: &str = include_str!("../fixtures/rules.json");

    /// A worker result as JSON (the format of `fixtures/result.json`) as the host passes it.
    fn task_result(json: &str) -> TaskResult {
        let value: serde_json::Value = serde_json::from_str(json).expect("a JSON result");
        let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
        let list = |value: &serde_json::Value| -> Vec<String> {
            value
                .as_array()
                .map(|items| items.iter().map(text).collect())
                .unwrap_or_default()
        };
        TaskResult {
            output: value.get("output").map(text),
            comment: value.get("comment").map(|comment| Comment {
                body: text(&comment["body"]),
            }),
            labels: value.get("labels").map(|labels| Labels {
                add: list(&labels["add"]),
                remove: list(&labels["remove"]),
            }),
            status: value.get("status").map(|status| Status {
                state: text(&status["state"]),
                description: text(&status["description"]),
            }),
            commit: value.get("commit").map(|commit| Commit {
                message: text(&commit["message"]),
                diff: text(&commit["diff"]),
            }),
            metadata: value.get("metadata").map(ToString::to_string),
        }
    }

    fn reasons(verdicts: &[Verdict]) -> Vec<&str> {
        verdicts
            .iter()
            .map(|verdict| verdict.reason.as_str())
            .collect()
    }

    #[test]
    fn describes_itself() {
        assert_eq!(Plugin::describe().name, "{{name}}");
    }

    #[test]
    fn the_fixture_keeps_the_comment_and_the_allowed_label() {
        let proposed = task_result(include_str!("../fixtures/result.json"));
        let (allowed, decision) = evaluate(proposed.clone(), RULES);
        assert_eq!(allowed.output, proposed.output);
        assert_eq!(
            allowed.comment.map(|comment| comment.body),
            proposed.comment.map(|comment| comment.body)
        );
        let labels = allowed.labels.expect("bug is allowed");
        assert_eq!(labels.add, ["bug"]);
        assert!(labels.remove.is_empty());
        assert_eq!(
            reasons(&decision.allowed),
            [
                "comment: 59 characters, within max_length 2000",
                "labels: add \"bug\" (in allowed_labels)",
            ]
        );
        assert_eq!(
            reasons(&decision.denied),
            ["labels: add \"wontfix\" denied, not in allowed_labels"]
        );
    }

    #[test]
    fn a_long_comment_is_denied() {
        let proposed = task_result(r#"{"comment": {"body": "far too long"}}"#);
        let (allowed, decision) = evaluate(proposed, r#"{"max_length": 5}"#);
        assert!(allowed.comment.is_none());
        assert_eq!(
            reasons(&decision.denied),
            ["comment: 12 characters, over max_length 5"]
        );
    }

    #[test]
    fn without_rules_everything_passes() {
        let proposed = task_result(include_str!("../fixtures/result.json"));
        for rules in ["{}", "null"] {
            let (allowed, decision) = evaluate(proposed.clone(), rules);
            assert!(allowed.comment.is_some());
            assert_eq!(allowed.labels.expect("labels").add, ["bug", "wontfix"]);
            assert!(decision.denied.is_empty());
        }
    }

    #[test]
    fn invalid_rules_deny_every_action_but_keep_the_output() {
        let proposed = task_result(include_str!("../fixtures/result.json"));
        for rules in [
            "[]",
            "not json",
            r#"{"max_length": "ten"}"#,
            r#"{"allowed_labels": [1]}"#,
        ] {
            let (allowed, decision) = evaluate(proposed.clone(), rules);
            assert!(
                allowed.comment.is_none() && allowed.labels.is_none(),
                "{rules}"
            );
            assert_eq!(allowed.output, proposed.output);
            assert!(decision.allowed.is_empty());
            assert_eq!(decision.denied.len(), 2, "{rules}");
        }
    }

    #[test]
    fn other_actions_pass_unjudged() {
        let proposed = task_result(
            r#"{"status": {"state": "success", "description": "ok"},
                "commit": {"message": "fix", "diff": ""}, "metadata": {"model": "m"}}"#,
        );
        let (allowed, decision) = evaluate(proposed, RULES);
        assert!(allowed.status.is_some() && allowed.commit.is_some());
        assert_eq!(allowed.metadata.as_deref(), Some(r#"{"model":"m"}"#));
        assert_eq!(decision.allowed.len(), 3);
    }
}
