//! [`TaskState`]: where a task is between its creation and its end.
//!
//! Stored as snake_case text through one conversion pair ([`TaskState::as_str`] and
//! [`FromStr`]), like [`super::EventState`]. Unlike events and workers, the moves a task may
//! make are few and fixed (reference 6.1), so the store itself allows only those (see
//! `task_lifecycle.rs`).

use serde::{Deserialize, Serialize};

use super::stored_text::stored_as_text;

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

stored_as_text!(TaskState, UnknownTaskState);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Error;

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
