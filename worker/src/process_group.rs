//! Stopping everything a task started, not just the process the worker spawned.
//!
//! Agents run shells, which run test suites, which start servers. The command is spawned as the
//! leader of a new process group, and the whole group is killed when the leader exits, when the
//! task times out, and when the task is dropped because mecha hung up: nothing a task started
//! outlives it, holds the output pipes open, or keeps the worker's CPU.
//!
//! A worker image's entrypoint is `mecha-worker`, so it is often PID 1, which inherits every
//! orphaned process and must reap it or fill the container's PID limit with zombies; see
//! [`reap_orphans`].

use tokio::process::Child;

/// A running command's process group, killed on [`kill`](Self::kill) or when dropped.
pub struct ProcessGroup {
    /// The leader's PID, which is the group's ID; `None` once killed.
    id: Option<libc::pid_t>,
}

impl ProcessGroup {
    /// The group led by `child`, which must have been spawned with `process_group(0)`.
    pub fn led_by(child: &Child) -> Self {
        Self {
            id: child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()),
        }
    }

    /// Sends SIGKILL to every process in the group. Called once the leader has exited, it ends the
    /// stragglers; the leader has then been reaped, and its PID could in principle be reused for
    /// a new group, but only after every straggler has gone and only by a process that makes
    /// itself a group leader, within the microseconds between the two calls.
    pub fn kill(&mut self) {
        let Some(id) = self.id.take() else { return };
        // SAFETY: kill(2) reads no memory of ours; a negative PID addresses the process group.
        let sent = unsafe { libc::kill(-id, libc::SIGKILL) };
        if sent != 0 {
            let err = std::io::Error::last_os_error();
            // ESRCH: the group is already empty, which is the usual case after a clean exit.
            if err.raw_os_error() != Some(libc::ESRCH) {
                tracing::warn!(group = id, error = %err, "could not kill the task's process group");
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// When the worker is PID 1, reaps the orphans that were handed to it.
///
/// Tokio reaps the children it spawned, one by one. Waiting for any child would steal their exit
/// statuses, so this runs only between tasks, when the single flight guarantees the worker has no
/// child of its own left, and only as PID 1, where the orphans would otherwise stay zombies.
/// Processes still dying when it runs are collected after the next task.
pub fn reap_orphans() {
    if std::process::id() != 1 {
        return;
    }
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) writes only to `status`, which lives across the call.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if reaped <= 0 {
            break;
        }
    }
}
