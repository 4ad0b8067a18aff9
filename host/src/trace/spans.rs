//! From audit entries to spans: one span per stage, in the trace of the stage's event.
//!
//! The audit log records when a stage ended, not when it began. A stage begins where the one
//! before it in the same line of work ended: an event's stages follow each other, and so do a
//! task's (created, sent, answered, policies, write-back). [`Timeline`] remembers when each line
//! last moved, in memory and bounded. A stage whose predecessor this daemon did not see (another
//! daemon on a shared database took it, or the daemon restarted in between) is a span of no
//! length at the moment it ended.

use std::collections::HashMap;

use crate::store::{AuditEntry, AuditOutcome};

use super::context::{SpanId, is_trace_id};

/// 100,000 lines of work remembered: far more than are ever in flight at once. Past it, lines
/// idle for longer than [`IDLE_NS`] are forgotten.
const MAX_LINES: usize = 100_000;

/// 15 minutes, in nanoseconds.
const IDLE_NS: u64 = 15 * 60 * 1_000_000_000;

/// What a span stands for, as OTLP's `SpanKind` numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// A stage within mecha.
    Internal = 1,
    /// The event's arrival.
    Server = 2,
    /// A call to a worker or to a provider through a responder.
    Client = 3,
}

/// An attribute's value: the scalar types of a stage's details.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// One finished span, as OTLP carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The event's id (see [`super::context`]).
    pub trace_id: String,
    pub span_id: SpanId,
    /// `None` for the root.
    pub parent: Option<SpanId>,
    /// The stage: `event.received`, `task.sent`, `writeback.done`, ...
    pub name: String,
    pub kind: SpanKind,
    /// Unix nanoseconds.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Set when the stage failed: OTLP's error status, with this message.
    pub error: Option<String>,
    pub attributes: Vec<(String, Value)>,
}

/// When each line of work (an event's, a task's) last moved.
#[derive(Debug, Default)]
pub struct Timeline {
    last: HashMap<String, u64>,
}

impl Timeline {
    /// The span of the stage `entry` records, ended at `now_ns`: `span` when the stage called
    /// out under an id it gave away (a client span), else the root's derived id or a fresh one.
    /// `None` for entries outside an event's trace (a worker's state, a schedule's tick).
    pub fn span(&mut self, entry: &AuditEntry, span: Option<SpanId>, now_ns: u64) -> Option<Span> {
        let trace = entry.trace_id.as_str();
        if !is_trace_id(trace) {
            return None;
        }
        let action = entry.action.as_str();
        let task = entry.task_id.as_deref();
        // The root: the event's arrival, or the creation of a task sent through the API, which
        // has no event.
        let root =
            action == "event.received" || (action == "task.created" && entry.event_id.is_none());
        let (span_id, parent, kind) = match span {
            _ if root => (SpanId::event(trace), None, SpanKind::Server),
            Some(span) => (span, Some(SpanId::event(trace)), SpanKind::Client),
            None => (
                SpanId::random(),
                Some(SpanId::event(trace)),
                SpanKind::Internal,
            ),
        };
        // A task's first stage begins where its event's line left off.
        let start_ns = match task {
            Some(task) => self.last.get(task).or_else(|| self.last.get(trace)),
            None => self.last.get(trace),
        }
        .copied()
        .filter(|start| *start <= now_ns)
        .unwrap_or(now_ns);
        self.moved(task.unwrap_or(trace), now_ns);
        if action == "task.created" {
            self.moved(trace, now_ns);
        }
        Some(Span {
            trace_id: trace.to_owned(),
            span_id,
            parent,
            name: action.to_owned(),
            kind,
            start_ns,
            end_ns: now_ns,
            error: match entry.outcome {
                AuditOutcome::Fail | AuditOutcome::Retry => {
                    Some(entry.error.clone().unwrap_or_else(|| action.to_owned()))
                }
                AuditOutcome::Ok | AuditOutcome::Skip | AuditOutcome::Deny => None,
            },
            attributes: attributes(entry),
        })
    }

    fn moved(&mut self, line: &str, now_ns: u64) {
        if self.last.len() >= MAX_LINES && !self.last.contains_key(line) {
            let horizon = now_ns.saturating_sub(IDLE_NS);
            self.last.retain(|_, at| *at >= horizon);
            if self.last.len() >= MAX_LINES {
                self.last.clear();
            }
        }
        self.last.insert(line.to_owned(), now_ns);
    }
}

/// The entry's ids, worker, try and outcome, and the scalar fields of its details, under
/// `mecha.`: what a trace viewer filters on.
fn attributes(entry: &AuditEntry) -> Vec<(String, Value)> {
    let mut attributes = vec![(
        "mecha.outcome".to_owned(),
        Value::Text(entry.outcome.as_str().to_owned()),
    )];
    let ids = [
        ("mecha.event_id", &entry.event_id),
        ("mecha.task_id", &entry.task_id),
        ("mecha.worker", &entry.worker),
    ];
    for (key, value) in ids {
        if let Some(value) = value {
            attributes.push((key.to_owned(), Value::Text(value.clone())));
        }
    }
    if entry.attempt > 0 {
        attributes.push((
            "mecha.attempt".to_owned(),
            Value::Int(i64::from(entry.attempt)),
        ));
    }
    if let serde_json::Value::Object(detail) = &entry.detail {
        for (key, value) in detail {
            let value = match value {
                serde_json::Value::String(text) => Value::Text(text.clone()),
                serde_json::Value::Bool(flag) => Value::Bool(*flag),
                serde_json::Value::Number(number) => match number.as_i64() {
                    Some(int) => Value::Int(int),
                    None => Value::Text(number.to_string()),
                },
                serde_json::Value::Null
                | serde_json::Value::Array(_)
                | serde_json::Value::Object(_) => continue,
            };
            attributes.push((format!("mecha.{key}"), value));
        }
    }
    attributes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const TASK: &str = "b7ad6b7169203331b7ad6b7169203331";

    fn stage(action: &str) -> AuditEntry {
        AuditEntry::new(TRACE, action).event(TRACE)
    }

    #[test]
    fn each_stage_begins_where_the_one_before_it_in_its_line_ended() {
        let mut timeline = Timeline::default();
        let received = timeline.span(&stage("event.received"), None, 100).unwrap();
        assert_eq!(received.span_id, SpanId::event(TRACE));
        assert_eq!((received.parent, received.kind), (None, SpanKind::Server));
        assert_eq!((received.start_ns, received.end_ns), (100, 100));

        let matched = timeline.span(&stage("event.matched"), None, 150).unwrap();
        assert_eq!((matched.start_ns, matched.end_ns), (100, 150));
        assert_eq!(matched.parent, Some(SpanId::event(TRACE)));

        let created = timeline
            .span(&stage("task.created").task(TASK), None, 180)
            .unwrap();
        assert_eq!(created.start_ns, 150);
        let sent = timeline
            .span(&stage("task.sent").task(TASK).attempt(1), None, 200)
            .unwrap();
        assert_eq!(sent.start_ns, 180);
        let try_span = SpanId::task_try(TASK, 42);
        let answered = timeline
            .span(
                &stage("task.retry")
                    .task(TASK)
                    .attempt(1)
                    .outcome(AuditOutcome::Retry)
                    .error("worker returned 503"),
                Some(try_span),
                900,
            )
            .unwrap();
        assert_eq!((answered.start_ns, answered.end_ns), (200, 900));
        assert_eq!(answered.span_id, try_span);
        assert_eq!(answered.parent, Some(SpanId::event(TRACE)));
        assert_eq!(answered.kind, SpanKind::Client);
        assert_eq!(answered.error.as_deref(), Some("worker returned 503"));

        let done = timeline
            .span(&stage("writeback.done").task(TASK).attempt(1), None, 1_000)
            .unwrap();
        assert_eq!(done.kind, SpanKind::Internal);
        assert_eq!(done.start_ns, 900);
        assert_eq!(done.error, None);
    }

    #[test]
    fn a_stage_whose_predecessor_was_not_seen_has_no_length() {
        let mut timeline = Timeline::default();
        let sent = timeline
            .span(&stage("task.completed").task(TASK).attempt(2), None, 500)
            .unwrap();
        assert_eq!((sent.start_ns, sent.end_ns), (500, 500));
    }

    #[test]
    fn a_task_sent_through_the_api_roots_its_own_trace() {
        let mut timeline = Timeline::default();
        let created = AuditEntry::new(TRACE, "task.created").task(TASK);
        let root = timeline.span(&created, None, 10).unwrap();
        assert_eq!((root.span_id, root.parent), (SpanId::event(TRACE), None));
        let sent = AuditEntry::new(TRACE, "task.sent").task(TASK);
        let sent = timeline.span(&sent, None, 20).unwrap();
        assert_eq!(sent.parent, Some(SpanId::event(TRACE)));
        assert_eq!(sent.start_ns, 10);
    }

    #[test]
    fn entries_outside_an_event_trace_make_no_span() {
        let mut timeline = Timeline::default();
        let worker = AuditEntry::new("worker:reviewer", "worker.state");
        assert_eq!(timeline.span(&worker, None, 1), None);
    }

    #[test]
    fn details_become_attributes() {
        let mut timeline = Timeline::default();
        let entry = stage("task.retry")
            .task(TASK)
            .worker("reviewer")
            .detail(json!({"via": "api", "retry_in_ms": 250, "nested": {"a": 1}}));
        let span = timeline.span(&entry, None, 10).unwrap();
        assert_eq!(span.kind, SpanKind::Internal);
        for expected in [
            ("mecha.worker", Value::Text("reviewer".into())),
            ("mecha.via", Value::Text("api".into())),
            ("mecha.retry_in_ms", Value::Int(250)),
            ("mecha.task_id", Value::Text(TASK.into())),
        ] {
            assert!(
                span.attributes
                    .iter()
                    .any(|(key, value)| key == expected.0 && *value == expected.1),
                "{expected:?} in {:?}",
                span.attributes
            );
        }
        assert!(span.attributes.iter().all(|(key, _)| key != "mecha.nested"));
    }

    #[test]
    fn past_the_bound_idle_lines_are_forgotten() {
        let mut timeline = Timeline::default();
        for line in 0..MAX_LINES {
            timeline.moved(&format!("line-{line}"), 0);
        }
        timeline.moved("late", IDLE_NS + 1);
        assert_eq!(timeline.last.len(), 1);
        assert_eq!(timeline.last.get("late"), Some(&(IDLE_NS + 1)));
    }
}
