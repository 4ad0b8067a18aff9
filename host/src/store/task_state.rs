//! [`TaskState`]: where a task is between its creation and its end.
//!
//! Stored as snake_case text through one conversion pair ([`TaskState::as_str`] and
//! [`FromStr`]), like [`super::EventState`]. Unlike events and workers, the moves a task may
//! make are few and fixed (reference 6.1), so the store itself allows only those (see
//! `task_lifecycle.rs`).

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use super::Error;
use super::error::quote;

/// The state of a stored task.
///
/// `pending` → `dispatched` → `completed`; `pending` or `dispatched` → `failed`; `dispatched` →
/// `pending` when a retry is scheduled; `failed` → `pending` when an operator retries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting to be sent to its worker (first time, or again once `next_retry_at` has passed).
    Pending,
    /// Sent to its worker; no answer yet.
    Dispatched,
    /// The worker answered; the result is stored. Terminal.
    Completed,
    /// Given up on (the row's `error` says why). Terminal unless an operator retries it.
    Failed,
}

impl TaskState {
    /// Every state, in the order of the type's definition.
    pub const ALL: [TaskState; 4] = [
        TaskState::Pending,
        TaskState::Dispatched,
        TaskState::Completed,
        TaskState::Failed,
    ];

    /// The states a task ends in, unless an operator retries it.
    pub const TERMINAL: [TaskState; 2] = [TaskState::Completed, TaskState::Failed];

    /// The stored and serialised name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Dispatched => "dispatched",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
        }
    }

    /// Whether the task has ended: completed or failed.
    pub fn is_terminal(self) -> bool {
        TaskState::TERMINAL.contains(&self)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = Error;

    fn from_str(value: &str) -> Result<TaskState, Error> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| Error::UnknownTaskState {
                value: quote(value),
            })
    }
}

impl ToSql for TaskState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

impl FromSql for TaskState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<TaskState> {
        value
            .as_str()?
            .parse()
            .map_err(|error: Error| FromSqlError::Other(Box::new(error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_text_and_serde() {
        for state in TaskState::ALL {
            assert_eq!(state.as_str().parse::<TaskState>().unwrap(), state);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<TaskState>(&json).unwrap(), state);
        }
        let terminal: Vec<_> = TaskState::ALL
            .into_iter()
            .filter(|state| state.is_terminal())
            .collect();
        assert_eq!(terminal, TaskState::TERMINAL);
        assert!(matches!(
            "done".parse::<TaskState>(),
            Err(Error::UnknownTaskState { .. })
        ));
    }
}
