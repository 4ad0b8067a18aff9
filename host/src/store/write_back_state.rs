//! [`WriteBackState`]: where writing a completed task's result back to its provider stands.
//!
//! Stored as text through one conversion pair, like [`super::TaskState`].

use serde::{Deserialize, Serialize};

use super::stored_text::stored_as_text;

/// The write-back of a task. Only completed event tasks have one; `none` otherwise.
///
/// `pending` → `done`; `pending` → `pending` (a retry, later); `pending` → `failed` once retries
/// are spent or the error is one a retry cannot fix; `failed` → `pending` when an operator
/// retries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteBackState {
    /// Nothing to write back: the task has no event, or has not completed.
    None,
    /// To be written (first time, or again once `write_back_next_at` has passed).
    Pending,
    /// Written, or nothing the policies allowed needed writing.
    Done,
    /// Given up on; the row's `write_back_error` says why.
    Failed,
}

impl WriteBackState {
    /// Every state, in the order of the type's definition.
    pub const ALL: [WriteBackState; 4] = [
        WriteBackState::None,
        WriteBackState::Pending,
        WriteBackState::Done,
        WriteBackState::Failed,
    ];

    /// The stored and serialised name of the state; `none` is stored as the empty text.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteBackState::None => "",
            WriteBackState::Pending => "pending",
            WriteBackState::Done => "done",
            WriteBackState::Failed => "failed",
        }
    }
}

stored_as_text!(WriteBackState, UnknownWriteBackState);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_text() {
        for state in WriteBackState::ALL {
            assert_eq!(state.as_str().parse::<WriteBackState>().unwrap(), state);
        }
        assert!("later".parse::<WriteBackState>().is_err());
    }
}
