//! [`WorkerState`]: whether a worker can take a task right now.
//!
//! Stored as snake_case text through one conversion pair ([`WorkerState::as_str`] and
//! [`FromStr`]), like [`super::EventState`]. Which moves are allowed is the worker registry's
//! business (reference 2.4); the store applies each move as a guarded update, so that two callers
//! cannot both move the same worker out of one state.

use serde::{Deserialize, Serialize};

use super::stored_text::stored_as_text;

/// The state of a registered worker.
///
/// Added `offline`; started → `online`; any state → `error` when it fails, `error` → `online`
/// when it recovers; stopped → `offline`. A worker that is working is still `online`: how many
/// tasks it may take at once is its `concurrency`, and a worker that answers "busy" defers the
/// task (see `pipeline::dispatch`), so there is no state for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Not running, or not known to be; the only state in which a worker may be removed.
    Offline,
    /// Running and taking tasks.
    Online,
    /// Failing (the row's `error` says why); not given tasks until it recovers.
    Error,
}

impl WorkerState {
    /// Every state, in the order of the type's definition; pass it as the `from` of a move
    /// allowed from any state.
    pub const ALL: [WorkerState; 3] = [
        WorkerState::Offline,
        WorkerState::Online,
        WorkerState::Error,
    ];

    /// The stored and serialised name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Offline => "offline",
            WorkerState::Online => "online",
            WorkerState::Error => "error",
        }
    }
}

stored_as_text!(WorkerState, UnknownWorkerState);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Error;

    #[test]
    fn every_state_round_trips_through_text_and_serde() {
        for state in WorkerState::ALL {
            assert_eq!(state.as_str().parse::<WorkerState>().unwrap(), state);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<WorkerState>(&json).unwrap(), state);
        }
        assert!(matches!(
            "Online".parse::<WorkerState>(),
            Err(Error::UnknownWorkerState { .. })
        ));
    }
}
