//! The audit log's row types: [`AuditEntry`] going in, [`AuditRecord`] coming out.
//!
//! An entry says that one stage of the pipeline happened to one event or task (reference 12.2):
//! `event.received`, `task.sent`, `writeback.fail`, ... with an [`AuditOutcome`]. The action names
//! belong to the pipeline; the store only keeps them, so a new stage needs no change here.
//! Entries are built with a small builder, since most stages fill in only a few fields:
//!
//! ```
//! use mecha::store::{AuditEntry, AuditOutcome};
//!
//! let entry = AuditEntry::new("0123456789abcdef0123456789abcdef", "task.retry")
//!     .outcome(AuditOutcome::Retry)
//!     .worker("reviewer")
//!     .attempt(2)
//!     .error("worker returned 503");
//! assert_eq!(entry.worker.as_deref(), Some("reviewer"));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use super::stored_text::stored_as_text;
use super::timestamp::serialize_rfc3339_ms;

/// How a stage ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It did what it was for.
    #[default]
    Ok,
    /// It failed.
    Fail,
    /// It decided there was nothing to do (no rule matched, a duplicate).
    Skip,
    /// It failed and will be tried again.
    Retry,
    /// A policy refused it.
    Deny,
}

impl AuditOutcome {
    /// Every outcome, in the order of the type's definition.
    pub const ALL: [AuditOutcome; 5] = [
        AuditOutcome::Ok,
        AuditOutcome::Fail,
        AuditOutcome::Skip,
        AuditOutcome::Retry,
        AuditOutcome::Deny,
    ];

    /// The stored and serialised name of the outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Fail => "fail",
            AuditOutcome::Skip => "skip",
            AuditOutcome::Retry => "retry",
            AuditOutcome::Deny => "deny",
        }
    }
}

stored_as_text!(AuditOutcome, UnknownAuditOutcome);

/// A stage to record. Error texts must already be redacted: the store keeps what it is given.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Ties together every entry about one event and its tasks (the event's id).
    pub trace_id: String,
    /// What happened, as `<subject>.<verb>`: `event.received`, `task.sent`, ...
    pub action: String,
    pub outcome: AuditOutcome,
    pub event_id: Option<String>,
    pub task_id: Option<String>,
    pub worker: Option<String>,
    /// Which try of a task this was; 0 when not about a try.
    pub attempt: u32,
    pub error: Option<String>,
    /// Anything else worth keeping, as a JSON object.
    pub detail: serde_json::Value,
}

impl AuditEntry {
    /// An entry for `action` in trace `trace_id`, outcome `ok`, with nothing else set.
    pub fn new(trace_id: impl fmt::Display, action: impl Into<String>) -> AuditEntry {
        AuditEntry {
            trace_id: trace_id.to_string(),
            action: action.into(),
            outcome: AuditOutcome::Ok,
            event_id: None,
            task_id: None,
            worker: None,
            attempt: 0,
            error: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets how the stage ended.
    #[must_use]
    pub fn outcome(self, outcome: AuditOutcome) -> AuditEntry {
        AuditEntry { outcome, ..self }
    }

    /// Sets the event the stage was about.
    #[must_use]
    pub fn event(self, event_id: impl fmt::Display) -> AuditEntry {
        AuditEntry {
            event_id: Some(event_id.to_string()),
            ..self
        }
    }

    /// Sets the task the stage was about.
    #[must_use]
    pub fn task(self, task_id: impl fmt::Display) -> AuditEntry {
        AuditEntry {
            task_id: Some(task_id.to_string()),
            ..self
        }
    }

    /// Sets the worker involved.
    #[must_use]
    pub fn worker(self, worker: impl fmt::Display) -> AuditEntry {
        AuditEntry {
            worker: Some(worker.to_string()),
            ..self
        }
    }

    /// Sets which try of the task this was.
    #[must_use]
    pub fn attempt(self, attempt: u32) -> AuditEntry {
        AuditEntry { attempt, ..self }
    }

    /// Sets what went wrong (redacted by the caller).
    #[must_use]
    pub fn error(self, error: impl fmt::Display) -> AuditEntry {
        AuditEntry {
            error: Some(error.to_string()),
            ..self
        }
    }

    /// Sets the details (a JSON object).
    #[must_use]
    pub fn detail(self, detail: serde_json::Value) -> AuditEntry {
        AuditEntry { detail, ..self }
    }
}

/// A stored entry, as read back and as shown by the API and `mecha logs`. Absent ids and errors
/// are empty strings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Increases with every entry: the true order of entries, and the cursor of `--follow`.
    pub id: i64,
    pub trace_id: String,
    /// Unix milliseconds; RFC 3339 with milliseconds in JSON.
    #[serde(serialize_with = "serialize_rfc3339_ms")]
    pub ts: i64,
    pub action: String,
    pub outcome: AuditOutcome,
    pub event_id: String,
    pub task_id: String,
    pub worker: String,
    pub attempt: u32,
    pub error: String,
    /// As stored; a stored text that is not JSON is shown as a string.
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::Error;

    #[test]
    fn every_outcome_round_trips_through_text_and_serde() {
        for outcome in AuditOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<AuditOutcome>().unwrap(), outcome);
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
            assert_eq!(
                serde_json::from_str::<AuditOutcome>(&json).unwrap(),
                outcome
            );
        }
        assert!(matches!(
            "OK".parse::<AuditOutcome>(),
            Err(Error::UnknownAuditOutcome { .. })
        ));
    }

    #[test]
    fn the_builder_sets_only_what_it_is_given() {
        let bare = AuditEntry::new("t-1", "event.received");
        assert_eq!(bare.outcome, AuditOutcome::Ok);
        assert_eq!(
            (&bare.event_id, &bare.task_id, &bare.worker, &bare.error),
            (&None, &None, &None, &None)
        );
        assert_eq!(bare.detail, json!({}));

        let full = AuditEntry::new("t-1", "task.dead_letter")
            .outcome(AuditOutcome::Fail)
            .event("e-1")
            .task("k-1")
            .worker("reviewer")
            .attempt(3)
            .error(std::io::Error::other("connection reset"))
            .detail(json!({"delay_s": 60}));
        assert_eq!(full.trace_id, "t-1");
        assert_eq!(full.action, "task.dead_letter");
        assert_eq!(full.outcome, AuditOutcome::Fail);
        assert_eq!(full.event_id.as_deref(), Some("e-1"));
        assert_eq!(full.task_id.as_deref(), Some("k-1"));
        assert_eq!(full.worker.as_deref(), Some("reviewer"));
        assert_eq!(full.attempt, 3);
        assert_eq!(full.error.as_deref(), Some("connection reset"));
        assert_eq!(full.detail, json!({"delay_s": 60}));
    }
}
