//! Matching: which workers an event is for (reference 5.2, with 13 items 1 and 2 fixed).
//!
//! Every worker whose rules accept the event gets it (fan-out), so one event never starves
//! another worker; within a worker, its first accepting rule is the one used. Workers are taken
//! in name order, their rules in written order. A rule accepts an event when:
//!
//! * its `source` equals the event's;
//! * the event type matches one of its `on` entries, exactly or as a glob (`pull_request.*`);
//! * every filter holds (`config::worker::Filter`: exact text, globs, lists, negation; an absent
//!   attr fails a positive filter and passes a negated one).
//!
//! A rule that accepts an event may still not create a task: with `auto: false` it never does
//! by itself, and the loop guard stops events by mecha's own identities and by bots unless the
//! rule has `allow_bots: true`. Such a worker then tries its next rules; if none creates a task
//! it is reported as skipped, with the reason of its first stopped rule, so the audit trail can
//! say why nothing happened.
//!
//! Worker state is not looked at here: whether a matched worker can take the task now is the
//! dispatcher's concern, which queues and retries instead of dropping.

use crate::config::worker::{EventRule, WorkerDef, glob};
use crate::store::EventRecord;

/// Ignores events caused by mecha itself or by bots, so that a worker's own comment does not
/// start another task (and another comment, and so on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopGuard {
    /// The actors mecha writes as (its GitHub App or token user, ...), compared without regard to
    /// ASCII case, as GitHub compares logins.
    pub identities: Vec<String>,
}

/// The suffix GitHub gives app accounts (`dependabot[bot]`).
const BOT_SUFFIX: &str = "[bot]";

impl LoopGuard {
    /// Whether the event's actor is one of mecha's identities or a bot (its name ends in
    /// `[bot]`, or its `is_bot` attr is `true`).
    pub fn stops(&self, event: &EventRecord) -> bool {
        let actor = event.actor.as_str();
        self.identities
            .iter()
            .any(|identity| identity.eq_ignore_ascii_case(actor))
            || actor.ends_with(BOT_SUFFIX)
            || event.attrs.get("is_bot").is_some_and(|value| {
                value.as_bool() == Some(true) || value.as_str() == Some("true")
            })
    }
}

/// A worker that gets a task for the event, and the rule that gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleMatch<'a> {
    pub worker: &'a WorkerDef,
    pub rule: &'a EventRule,
    /// The rule's position in the worker's `events`.
    pub rule_index: usize,
}

/// Why a rule accepted the event but created no task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The rule has `auto: false`.
    AutoFalse,
    /// The actor is mecha itself or a bot, and the rule does not have `allow_bots: true`.
    LoopGuard,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::AutoFalse => "the rule has auto: false",
            SkipReason::LoopGuard => {
                "the event is by mecha or a bot and the rule does not allow bots"
            }
        })
    }
}

/// A worker whose rules accepted the event without creating a task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Skip<'a> {
    pub worker: &'a WorkerDef,
    /// The first rule that accepted the event, and why it created no task.
    pub rule_index: usize,
    pub reason: SkipReason,
}

/// The outcome of matching one event: each worker appears at most once, in one of the lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchReport<'a> {
    /// One per worker that gets a task, in name order.
    pub matches: Vec<RuleMatch<'a>>,
    /// Workers that would have matched but for `auto: false` or the loop guard, in name order.
    pub skipped: Vec<Skip<'a>>,
}

/// Finds every worker the event is for; see the module docs for the rules.
pub fn match_event<'a>(
    workers: impl IntoIterator<Item = &'a WorkerDef>,
    event: &EventRecord,
    guard: &LoopGuard,
) -> MatchReport<'a> {
    let mut ordered: Vec<&WorkerDef> = workers.into_iter().collect();
    ordered.sort_by(|a, b| a.name.cmp(&b.name));
    let guarded = guard.stops(event);
    let mut report = MatchReport::default();
    for worker in ordered {
        let mut first_skip = None;
        let mut matched = None;
        for (rule_index, rule) in worker.events.iter().enumerate() {
            if !accepts(rule, event) {
                continue;
            }
            let reason = if !rule.auto {
                Some(SkipReason::AutoFalse)
            } else if guarded && !rule.allow_bots {
                Some(SkipReason::LoopGuard)
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    first_skip.get_or_insert((rule_index, reason));
                }
                None => {
                    matched = Some(RuleMatch {
                        worker,
                        rule,
                        rule_index,
                    });
                    break;
                }
            }
        }
        if let Some(found) = matched {
            report.matches.push(found);
        } else if let Some((rule_index, reason)) = first_skip {
            report.skipped.push(Skip {
                worker,
                rule_index,
                reason,
            });
        }
    }
    report
}

/// Whether `rule` accepts the event: source, type and every filter.
fn accepts(rule: &EventRule, event: &EventRecord) -> bool {
    rule.source == event.source
        && rule
            .on
            .iter()
            .any(|pattern| glob::matches(pattern, &event.event_type))
        && rule
            .filter
            .iter()
            .all(|(attr, filter)| filter.matches(event.attrs.get(attr)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::EventState;

    fn event(event_type: &str, actor: &str, attrs: serde_json::Value) -> EventRecord {
        let serde_json::Value::Object(attrs) = attrs else {
            panic!("attrs must be an object");
        };
        EventRecord {
            id: "0123456789abcdef0123456789abcdef".parse().expect("id"),
            delivery_id: String::new(),
            dedup_key: String::new(),
            source: "github".into(),
            event_type: event_type.into(),
            actor: actor.into(),
            subject: "acme/widgets".into(),
            attrs,
            raw: Vec::new(),
            state: EventState::Received,
            worker_name: String::new(),
            task_id: String::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn worker(name: &str, events_yaml: &str) -> WorkerDef {
        let yaml = format!("name: {name}\nendpoint: http://127.0.0.1:9000\nevents:\n{events_yaml}");
        serde_yaml::from_str(&yaml).expect(&yaml)
    }

    fn names<'a>(report: &MatchReport<'a>) -> Vec<(&'a str, usize)> {
        report
            .matches
            .iter()
            .map(|found| (found.worker.name.as_str(), found.rule_index))
            .collect()
    }

    const PR_RULE: &str = "  - {source: github, on: [pull_request.opened], prompt: p}\n";

    #[test]
    fn every_matching_worker_gets_the_event_in_name_order() {
        let workers = [
            worker("zeta", PR_RULE),
            worker("alpha", PR_RULE),
            worker(
                "other",
                "  - {source: gitlab, on: [pull_request.opened], prompt: p}\n",
            ),
        ];
        let report = match_event(
            &workers,
            &event("pull_request.opened", "alice", json!({})),
            &LoopGuard::default(),
        );
        assert_eq!(names(&report), [("alpha", 0), ("zeta", 0)]);
        assert!(report.skipped.is_empty());
    }

    #[test]
    fn a_worker_uses_its_first_matching_rule_only() {
        let workers = [worker(
            "w",
            concat!(
                "  - {source: github, on: [issues.opened], prompt: a}\n",
                "  - {source: github, on: ['pull_request.*'], prompt: b}\n",
                "  - {source: github, on: [pull_request.opened], prompt: c}\n",
            ),
        )];
        let report = match_event(
            &workers,
            &event("pull_request.opened", "alice", json!({})),
            &LoopGuard::default(),
        );
        assert_eq!(names(&report), [("w", 1)]);
        assert_eq!(report.matches[0].rule.prompt, "b");
    }

    #[test]
    fn type_globs_and_exact_types() {
        let workers = [worker(
            "w",
            "  - {source: github, on: ['pull_request.*', push], prompt: p}\n",
        )];
        let guard = LoopGuard::default();
        for (event_type, expected) in [
            ("pull_request.closed", true),
            ("push", true),
            ("pull_request", false),
            ("push.tag", false),
        ] {
            let report = match_event(&workers, &event(event_type, "alice", json!({})), &guard);
            assert_eq!(report.matches.len() == 1, expected, "{event_type}");
        }
    }

    #[test]
    fn filters_must_all_hold() {
        let workers = [worker(
            "w",
            "  - source: github\n    on: [pull_request.opened]\n    prompt: p\n    filter:\n      repo: 'acme/*'\n      draft: false\n      label: [bug, ui]\n      author: '!dependabot*'\n",
        )];
        let guard = LoopGuard::default();
        let matched = |attrs: serde_json::Value| {
            !match_event(
                &workers,
                &event("pull_request.opened", "alice", attrs),
                &guard,
            )
            .matches
            .is_empty()
        };
        assert!(matched(
            json!({"repo": "acme/w", "draft": false, "label": "ui", "author": "alice"})
        ));
        // A negated filter passes when the attr is absent.
        assert!(matched(
            json!({"repo": "acme/w", "draft": false, "label": "bug"})
        ));
        assert!(!matched(
            json!({"repo": "other/w", "draft": false, "label": "ui"})
        ));
        assert!(!matched(
            json!({"repo": "acme/w", "draft": true, "label": "ui"})
        ));
        assert!(!matched(
            json!({"repo": "acme/w", "draft": false, "label": "docs"})
        ));
        assert!(!matched(
            json!({"repo": "acme/w", "draft": false, "label": "ui", "author": "dependabot[bot]"})
        ));
        // A positive filter fails when the attr is absent.
        assert!(!matched(json!({"repo": "acme/w", "label": "ui"})));
    }

    #[test]
    fn auto_false_skips_and_later_rules_still_apply() {
        let only_manual = worker(
            "manual",
            "  - {source: github, on: [pull_request.opened], prompt: p, auto: false}\n",
        );
        let then_auto = worker(
            "mixed",
            concat!(
                "  - {source: github, on: [pull_request.opened], prompt: a, auto: false}\n",
                "  - {source: github, on: ['pull_request.*'], prompt: b}\n",
            ),
        );
        let workers = [only_manual, then_auto];
        let report = match_event(
            &workers,
            &event("pull_request.opened", "alice", json!({})),
            &LoopGuard::default(),
        );
        assert_eq!(names(&report), [("mixed", 1)]);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].worker.name, "manual");
        assert_eq!(report.skipped[0].reason, SkipReason::AutoFalse);
    }

    #[test]
    fn loop_guard_stops_own_identities_and_bots_unless_allowed() {
        let strict = worker("strict", PR_RULE);
        let lenient = worker(
            "lenient",
            "  - {source: github, on: [pull_request.opened], prompt: p, allow_bots: true}\n",
        );
        let workers = [strict, lenient];
        let guard = LoopGuard {
            identities: vec!["mecha-app".into()],
        };
        for (actor, attrs) in [
            ("Mecha-App", json!({})),
            ("dependabot[bot]", json!({})),
            ("ci-user", json!({"is_bot": true})),
            ("ci-user", json!({"is_bot": "true"})),
        ] {
            let report = match_event(
                &workers,
                &event("pull_request.opened", actor, attrs),
                &guard,
            );
            assert_eq!(names(&report), [("lenient", 0)], "{actor}");
            assert_eq!(report.skipped.len(), 1, "{actor}");
            assert_eq!(report.skipped[0].worker.name, "strict");
            assert_eq!(report.skipped[0].reason, SkipReason::LoopGuard);
        }
        let report = match_event(
            &workers,
            &event("pull_request.opened", "alice", json!({"is_bot": false})),
            &guard,
        );
        assert_eq!(names(&report), [("lenient", 0), ("strict", 0)]);
    }

    #[test]
    fn nothing_matches_nothing_skipped() {
        let workers = [worker("w", PR_RULE)];
        let report = match_event(
            &workers,
            &event("issues.opened", "alice", json!({})),
            &LoopGuard::default(),
        );
        assert_eq!(report, MatchReport::default());
        assert_eq!(
            match_event(&[], &event("x", "a", json!({})), &LoopGuard::default()),
            MatchReport::default()
        );
    }
}
