//! What answers a task: the agent command, or the built-in echo used for smoke tests.
//!
//! A backend turns a [`Task`] into a result object or an [`Error`] and knows nothing of HTTP.
//! Each one enforces the task timeout itself, because only the command backend knows how to stop
//! what it started before it answers.
//!
//! - `command`: runs the agent program once per task;
//! - `echo`: answers with the prompt, running nothing.

mod command;
mod echo;

use std::io;
use std::time::Duration;

use serde_json::{Map, Value};

pub use command::CommandBackend;

use crate::task::Task;

/// Where tasks go.
#[derive(Debug)]
pub enum Backend {
    Command(CommandBackend),
    Echo,
}

impl Backend {
    /// The name reported in `metadata.backend` and in dry runs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Command(_) => "command",
            Self::Echo => "echo",
        }
    }

    /// Runs `task`, giving up after `timeout`.
    pub async fn run(&self, task: &Task, timeout: Duration) -> Result<Map<String, Value>, Error> {
        match self {
            Self::Command(command) => command.run(task, timeout).await,
            Self::Echo => echo::run(task, timeout).await,
        }
    }
}

/// Why a task has no result. Every variant is a 500 to mecha, which records the message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("lost track of {program}: {source}")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("agent exited with status {code}")]
    Exited { code: i32, stderr: String },
    #[error("agent was killed by {signal}")]
    Signalled { signal: String, stderr: String },
    /// The agent ran and said it failed; the message is its own words.
    #[error("{message}")]
    Reported { message: String },
    #[error("task timed out after {}", seconds(*after))]
    TimedOut { after: Duration },
}

impl Error {
    /// The end of the agent's standard error, when it failed on its own.
    pub fn stderr(&self) -> Option<&str> {
        match self {
            Self::Exited { stderr, .. } | Self::Signalled { stderr, .. } => Some(stderr),
            _ => None,
        }
    }

    /// The agent's exit code, when it exited on its own.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Self::Exited { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A short label for the log line.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Spawn { .. } => "not started",
            Self::Wait { .. } => "lost",
            Self::Exited { .. } => "exited with an error",
            Self::Signalled { .. } => "killed by a signal",
            Self::Reported { .. } => "agent reported an error",
            Self::TimedOut { .. } => "timed out",
        }
    }
}

/// `600s`, or `250ms` for a timeout that is not whole seconds.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_in_seconds() {
        let after = |millis| Error::TimedOut {
            after: Duration::from_millis(millis),
        };
        assert_eq!(after(600_000).to_string(), "task timed out after 600s");
        assert_eq!(after(250).to_string(), "task timed out after 250ms");
    }
}
