//! `events:`: the rules that turn an event into a task for this worker (reference 5.1, with
//! globs in `on`, richer filters and the loop guard's `allow_bots`).
//!
//! ```yaml
//! events:
//!   - source: github
//!     on: [pull_request.opened, "pull_request.synchronize"]   # exact types or globs
//!     filter:
//!       repo: acme/*
//!       author: "!dependabot*"
//!     prompt: |
//!       Review PR #{{ number }} in {{ repo }}: {{ title }}
//!     auto: true            # false: the rule never creates tasks by itself
//!     allow_bots: false     # true: also for events by bots and by mecha itself
//! ```
//!
//! How a rule is applied is `pipeline::matching`'s business; how its prompt is rendered,
//! `crate::template`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::filter::Filter;
use super::glob;
use super::problem::{FieldPath, Problem};
use crate::template::check_template;

/// When a worker gets a task, and what it is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    /// The source instance the event came through (`github`), compared exactly.
    pub source: String,
    /// Event types; each entry is exact text or a glob (`pull_request.*`). Must not be empty.
    pub on: Vec<String>,
    /// Conditions on the event's attrs, all of which must hold (see `filter.rs` for the forms).
    #[serde(default)]
    pub filter: BTreeMap<String, Filter>,
    /// The task's prompt: a minijinja template over the event (Go `{{.x}}` forms accepted).
    /// Never interpolated: `{{ }}` belongs to the template and `${...}` stays literal.
    pub prompt: String,
    /// Whether a matching event creates a task by itself.
    #[serde(default = "default_auto")]
    pub auto: bool,
    /// Whether events by bots and by mecha's own identities may match (the loop guard).
    #[serde(default)]
    pub allow_bots: bool,
}

fn default_auto() -> bool {
    true
}

impl EventRule {
    /// The checks that need only the rule; `at` is where it sits (`events[0]`).
    pub(super) fn check(&self, at: &FieldPath, problems: &mut Vec<Problem>) {
        if self.source.trim().is_empty() {
            problems.push(Problem::new(
                &at.key("source"),
                "is empty; name the event source",
            ));
        }
        if self.on.is_empty() {
            problems.push(Problem::new(
                &at.key("on"),
                "is empty; list the event types this rule is for, like [pull_request.opened]",
            ));
        }
        for (index, entry) in self.on.iter().enumerate() {
            let field = at.key("on").index(index);
            if entry.is_empty() {
                problems.push(Problem::new(
                    &field,
                    "is empty; write an event type or a glob",
                ));
            } else if let Err(message) = glob::check(entry) {
                problems.push(Problem::new(&field, message));
            }
        }
        for (attr, filter) in &self.filter {
            let field = at.key("filter").key(attr);
            if attr.is_empty() {
                problems.push(Problem::new(&field, "the attr name is empty"));
            }
            for pattern in filter.patterns() {
                if let Err(message) = glob::check(pattern) {
                    problems.push(Problem::new(&field, message));
                }
            }
        }
        if let Err(err) = check_template(&self.prompt) {
            problems.push(Problem::new(
                &at.key("prompt"),
                format!("does not compile: {err}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let rule: EventRule = serde_yaml::from_str(yaml).expect(yaml);
        let mut problems = Vec::new();
        rule.check(&FieldPath::root().key("events").index(0), &mut problems);
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_auto_true_allow_bots_false() {
        let rule: EventRule =
            serde_yaml::from_str("source: github\non: [push]\nprompt: go\n").expect("valid");
        assert!(rule.auto);
        assert!(!rule.allow_bots);
        assert!(rule.filter.is_empty());
    }

    #[test]
    fn on_must_list_valid_types_or_globs() {
        assert!(problems("source: github\non: ['pull_request.*']\nprompt: x\n").is_empty());
        assert_eq!(
            problems("source: github\non: []\nprompt: x\n"),
            [
                "events[0].on: is empty; list the event types this rule is for, like [pull_request.opened]"
            ]
        );
        let found = problems("source: ''\non: ['', 'a[']\nprompt: x\n");
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("events[0].source: is empty"));
        assert!(found[1].starts_with("events[0].on[0]: is empty"));
        assert!(found[2].starts_with("events[0].on[1]: `a[` has a `[` that is never closed"));
    }

    #[test]
    fn filter_globs_and_prompt_are_checked() {
        let found = problems("source: s\non: [t]\nfilter:\n  repo: '[z-a]'\nprompt: '{{ title'\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("events[0].filter.repo: the range `z-a`"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("events[0].prompt: does not compile: line 1:"),
            "{found:?}"
        );
    }
}
