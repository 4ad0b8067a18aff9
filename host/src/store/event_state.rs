//! [`EventState`]: where an event is on its way from receipt to its end.
//!
//! The state is stored as snake_case text through exactly one conversion pair
//! ([`EventState::as_str`] and `FromStr`); SQL, serde and logs all go through it, so a state
//! can never be spelled two ways. Which moves between states are allowed is the pipeline's
//! business; the store only guards each move against a concurrent one.

use serde::{Deserialize, Serialize};

use super::stored_text::stored_as_text;

/// The state of a stored event.
///
/// `received` → `matched` → `dispatched` → `completed`; `received` → `skipped` when no worker
/// wants it; any unfinished state → `failed`; `dispatched` → `write_back_failed` →
/// `completed` once a write-back retry succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Stored and acknowledged; not yet matched against the workers' rules.
    Received,
    /// A worker's rule matched (the record's `worker_name` says which).
    Matched,
    /// A task was created for the worker (the record's `task_id` says which).
    Dispatched,
    /// The task finished and its result was written back. Terminal.
    Completed,
    /// No rule matched. Terminal.
    Skipped,
    /// Processing gave up. Terminal.
    Failed,
    /// The task finished but writing its result back failed; it will be retried.
    WriteBackFailed,
}

impl EventState {
    /// Every state, in the order of the type's definition.
    pub const ALL: [EventState; 7] = [
        EventState::Received,
        EventState::Matched,
        EventState::Dispatched,
        EventState::Completed,
        EventState::Skipped,
        EventState::Failed,
        EventState::WriteBackFailed,
    ];

    /// The states an event never leaves. A dedup key is free again once its event is in one.
    pub const TERMINAL: [EventState; 3] = [
        EventState::Completed,
        EventState::Failed,
        EventState::Skipped,
    ];

    /// The stored and serialised name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Received => "received",
            EventState::Matched => "matched",
            EventState::Dispatched => "dispatched",
            EventState::Completed => "completed",
            EventState::Skipped => "skipped",
            EventState::Failed => "failed",
            EventState::WriteBackFailed => "write_back_failed",
        }
    }

    /// Whether the event is finished: completed, failed or skipped.
    pub fn is_terminal(self) -> bool {
        EventState::TERMINAL.contains(&self)
    }
}

stored_as_text!(EventState, UnknownState);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Error;

    #[test]
    fn every_state_round_trips_through_text_and_serde() {
        for state in EventState::ALL {
            assert_eq!(state.as_str().parse::<EventState>().unwrap(), state);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<EventState>(&json).unwrap(), state);
        }
        assert_eq!(EventState::WriteBackFailed.as_str(), "write_back_failed");
    }

    #[test]
    fn unknown_state_is_an_error() {
        assert!(matches!(
            "Received".parse::<EventState>(),
            Err(Error::UnknownState { .. })
        ));
    }

    #[test]
    fn terminal_states_are_completed_failed_skipped() {
        let terminal: Vec<_> = EventState::ALL
            .into_iter()
            .filter(|state| state.is_terminal())
            .map(EventState::as_str)
            .collect();
        assert_eq!(terminal, ["completed", "skipped", "failed"]);
    }
}
