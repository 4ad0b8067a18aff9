//! The command backend: one run of the agent program per task.
//!
//! The prompt is written to the program's standard input, which is then closed; its standard
//! output is the answer, read by [`crate::result`]. It runs in the work directory with the
//! worker's environment less `WORKER_API_KEY` (the key guards the worker, and an agent could
//! repeat it in its output), plus `MECHA_TASK_ID` and `MECHA_CONTEXT` (the context as compact
//! JSON) for agents that want the event's facts. Its whole process group is killed when it exits,
//! when the task times out, and when the task is dropped.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, Command};
use tokio::time::Instant;

use super::Error;
use crate::capture::{self, STDERR_TAIL, STDOUT_LIMIT};
use crate::process_group::{ProcessGroup, reap_orphans};
use crate::result::{self, Interpretation};
use crate::task::Task;

/// 1 KiB of standard error in a failure reply: enough for the error, short enough to read in a
/// task's history (the log keeps nothing of it).
const STDERR_IN_REPLY: usize = 1024;

/// The agent program and how it is run; built by [`crate::Config::resolve`].
pub struct CommandBackend {
    /// Absolute, checked at start.
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) workdir: PathBuf,
    /// The whole environment the program gets, before the per-task variables.
    pub(crate) env: Vec<(OsString, OsString)>,
}

impl CommandBackend {
    pub async fn run(&self, task: &Task, timeout: Duration) -> Result<Map<String, Value>, Error> {
        let deadline = Instant::now() + timeout;
        let mut child = self.command(task).spawn().map_err(|source| Error::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        let mut group = ProcessGroup::led_by(&child);
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let exchange = async {
            let ((), status, stdout, stderr) = tokio::join!(
                feed(stdin, task.prompt.as_bytes()),
                async {
                    let status = child.wait().await;
                    // Whatever the agent left running would keep the pipes below open.
                    group.kill();
                    status
                },
                capture::head(stdout, STDOUT_LIMIT),
                capture::tail(stderr, STDERR_TAIL),
            );
            (status, stdout, stderr)
        };
        let finished = tokio::time::timeout_at(deadline, exchange).await;
        let Ok((status, stdout, stderr)) = finished else {
            group.kill();
            if let Err(err) = child.wait().await {
                tracing::warn!(error = %err, "could not reap the timed-out agent");
            }
            reap_orphans();
            return Err(Error::TimedOut { after: timeout });
        };
        reap_orphans();
        let status = status.map_err(|source| Error::Wait {
            program: self.program.display().to_string(),
            source,
        })?;
        if stdout.truncated {
            tracing::warn!(
                limit = STDOUT_LIMIT,
                "the agent's output was over the limit; the rest was discarded"
            );
        }
        settle(status, &stdout.bytes, &stderr)
    }

    fn command(&self, task: &Task) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(&self.workdir)
            .env_clear()
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .env("MECHA_TASK_ID", &task.id)
            .env("MECHA_CONTEXT", task.context.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        command
    }
}

/// Names only: the environment holds the agent's credentials.
impl fmt::Debug for CommandBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandBackend")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("workdir", &self.workdir)
            .field(
                "env",
                &self.env.iter().map(|(key, _)| key).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Writes the prompt and closes standard input, so the agent sees where the prompt ends. An agent
/// that exits without reading it all is not an error here: its exit status tells.
async fn feed(stdin: Option<ChildStdin>, prompt: &[u8]) {
    let Some(mut stdin) = stdin else { return };
    if let Err(err) = stdin.write_all(prompt).await {
        tracing::debug!(error = %err, "the agent did not read its whole prompt");
    }
}

/// The task's outcome from how the agent exited and what it printed. An agent that says it failed
/// (Claude Code's `is_error`) has failed whatever its exit status; its explanation is better than
/// the status.
fn settle(status: ExitStatus, stdout: &[u8], stderr: &[u8]) -> Result<Map<String, Value>, Error> {
    let result = match result::interpret(&String::from_utf8_lossy(stdout)) {
        Interpretation::Failed(message) => return Err(Error::Reported { message }),
        Interpretation::Result(result) => result,
    };
    let stderr = || capture::tail_text(stderr, STDERR_IN_REPLY);
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(result),
        (Some(code), _) => Err(Error::Exited {
            code,
            stderr: stderr(),
        }),
        (None, signal) => Err(Error::Signalled {
            signal: describe_signal(signal),
            stderr: stderr(),
        }),
    }
}

/// `signal 9 (SIGKILL)`: the number as the kernel gives it, the name for the ones agents meet.
fn describe_signal(signal: Option<i32>) -> String {
    let Some(number) = signal else {
        return "an unknown signal".to_owned();
    };
    let name = match number {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        _ => return format!("signal {number}"),
    };
    format!("signal {number} ({name})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    fn killed(signal: i32) -> ExitStatus {
        ExitStatus::from_raw(signal)
    }

    #[test]
    fn a_clean_exit_is_the_mapped_output() {
        let result = settle(exited(0), b"all good\n", b"").expect("a result");
        assert_eq!(result["output"], "all good");
    }

    #[test]
    fn a_failing_exit_carries_the_end_of_stderr() {
        let stderr = format!("{}the real reason\n", "noise ".repeat(1000));
        let err = settle(exited(3), b"partial", stderr.as_bytes()).expect_err("failed");
        assert_eq!(err.to_string(), "agent exited with status 3");
        let tail = err.stderr().expect("stderr");
        assert_eq!(tail.len(), STDERR_IN_REPLY);
        assert!(tail.ends_with("the real reason\n"));
    }

    #[test]
    fn a_signal_is_named() {
        let err = settle(killed(libc::SIGKILL), b"", b"").expect_err("failed");
        assert_eq!(err.to_string(), "agent was killed by signal 9 (SIGKILL)");
        let err = settle(killed(libc::SIGUSR1), b"", b"").expect_err("failed");
        assert_eq!(
            err.to_string(),
            format!("agent was killed by signal {}", libc::SIGUSR1)
        );
    }

    #[test]
    fn an_agent_reported_error_wins_over_the_exit_status() {
        let stdout = br#"{"type":"result","is_error":true,"result":"Invalid API key"}"#;
        for status in [exited(0), exited(1)] {
            let err = settle(status, stdout, b"").expect_err("failed");
            assert_eq!(err.to_string(), "Invalid API key");
        }
    }
}
