//! [`WorkerState`]: whether a worker can take a task right now.
//!
//! Stored as snake_case text through one conversion pair ([`WorkerState::as_str`] and
//! [`FromStr`]), like [`super::EventState`]. Which moves are allowed is the worker registry's
//! business (reference 2.4); the store applies each move as a guarded update, so that two callers
//! cannot both move the same worker out of one state.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use super::Error;
use super::error::quote;

/// The state of a registered worker.
///
/// Added `offline`; started → `online`; `online` ↔ `busy` around each task; any state → `error`
/// when it fails, `error` → `online` when it recovers; stopped → `offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Not running, or not known to be; the only state in which a worker may be removed.
    Offline,
    /// Running and free to take a task.
    Online,
    /// Running a task.
    Busy,
    /// Failing (the row's `error` says why); not given tasks until it recovers.
    Error,
}

impl WorkerState {
    /// Every state, in the order of the type's definition; pass it as the `from` of a move
    /// allowed from any state.
    pub const ALL: [WorkerState; 4] = [
        WorkerState::Offline,
        WorkerState::Online,
        WorkerState::Busy,
        WorkerState::Error,
    ];

    /// The stored and serialised name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Offline => "offline",
            WorkerState::Online => "online",
            WorkerState::Busy => "busy",
            WorkerState::Error => "error",
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkerState {
    type Err = Error;

    fn from_str(value: &str) -> Result<WorkerState, Error> {
        WorkerState::ALL
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| Error::UnknownWorkerState {
                value: quote(value),
            })
    }
}

impl ToSql for WorkerState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

impl FromSql for WorkerState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<WorkerState> {
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
