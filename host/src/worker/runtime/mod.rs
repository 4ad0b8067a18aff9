//! One runtime per kind of worker, behind one trait: how a worker of that kind is started and
//! stopped for an operator, how a task reaches it, how its health is probed and checked, and
//! what keeps its state true to what runs.
//!
//! | kind | module | runs | a task goes |
//! |---|---|---|---|
//! | live | [`live`] | on its own | to its `endpoint` |
//! | adapter | [`adapter`] | in the daemon, bridging to a model server | to the adapter's port |
//! | managed, persistent | [`persistent`] | in one container mecha keeps | to the container |
//! | managed, disposable | [`disposable`] | in a container per task | to that task's container |
//!
//! [`Runtimes::of`] is the one place that tells the kinds apart; dispatch, the CLI, doctor, the
//! health monitor and reconciliation call the runtime it returns. A new kind is a new module
//! implementing [`WorkerRuntime`], a field of [`Runtimes`] and an arm of [`Runtimes::of`].

pub mod adapter;
pub mod disposable;
pub mod live;
mod managed;
pub mod persistent;

use std::sync::Arc;
use std::time::Duration;

use crate::config::worker::{Lifecycle, WorkerDef};
use crate::redact::Redactor;
use crate::store::{Store, TaskId};
use crate::worker::client::{Health, SendError, TaskReply, TaskRequest, WorkerClient};
use crate::worker::docker::Containers;
use crate::worker::registry::Worker;
use crate::worker::state::WorkerStates;

/// The futures of [`WorkerRuntime`]'s methods, boxed so that the trait can be used as `dyn`.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Sees the bytes of an image pull as (done, total).
pub type Progress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

/// What a check of `mecha doctor` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Ok(String),
    Warn(String),
    Fail(String),
}

/// What differs between the kinds of worker. Every method that changes a worker records the
/// move of its state through [`WorkerStates`].
pub trait WorkerRuntime: Send + Sync {
    /// What the runtime works with.
    fn parts(&self) -> &Parts;

    /// What brings an offline worker `name` of this kind back, for the error of its tasks.
    fn how_to_start(&self, name: &str) -> String {
        format!("start it with `mecha worker start {name}`")
    }

    /// Sends the task `task` to `worker` and waits for the answer: by default, to the endpoint
    /// where the worker answers.
    fn send<'a>(
        &'a self,
        worker: &'a Worker,
        task: &'a TaskId,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<TaskReply, SendError>> {
        let _ = task;
        Box::pin(send_to_endpoint(&self.parts().client, worker, request))
    }

    /// Starts `worker` for an operator (`mecha worker start`), reporting image pulls to
    /// `progress`: what to tell the operator, or why it could not start.
    fn start<'a>(
        &'a self,
        worker: &'a Worker,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<String, String>>;

    /// Stops `worker` (`mecha worker stop`): its tasks fail instead of being sent until it is
    /// started again. What to tell the operator, or why it could not stop. By default it is
    /// only marked offline: mecha runs nothing for it.
    fn stop<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(mark_stopped(&self.parts().states, worker))
    }

    /// Removes what runs for `worker` before its definition goes (`mecha worker remove`); with
    /// `force`, a failure to do so is returned as a warning instead of an error. By default
    /// there is nothing to remove.
    fn remove<'a>(
        &'a self,
        worker: &'a Worker,
        force: bool,
    ) -> BoxFuture<'a, Result<Option<String>, String>> {
        let _ = (worker, force);
        Box::pin(async { Ok(None) })
    }

    /// Probes `worker`'s health within `timeout`, or says why this process cannot (an adapter
    /// answers its own daemon only; a disposable worker has no container between tasks). By
    /// default, its `/health` with its key.
    fn health<'a>(
        &'a self,
        worker: &'a Worker,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Health, &'static str>> {
        Box::pin(probe_endpoint(&self.parts().client, worker, timeout))
    }

    /// What `mecha doctor` checks of `worker`.
    fn diagnose<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, Vec<Finding>>;

    /// Brings the stored state of a started `worker` in line with what runs (the daemon's
    /// reconciliation pass). Nothing to do for kinds mecha does not run.
    fn reconcile<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, ()> {
        let _ = worker;
        Box::pin(async {})
    }
}

/// What the runtimes work with.
pub struct Parts {
    pub client: WorkerClient,
    pub containers: Arc<Containers>,
    pub states: WorkerStates,
    pub store: Arc<dyn Store>,
    pub redactor: Redactor,
}

/// The runtime of every kind.
pub struct Runtimes {
    live: live::Live,
    adapter: adapter::Adapter,
    persistent: persistent::Persistent,
    disposable: disposable::Disposable,
}

impl Runtimes {
    pub fn new(parts: Parts) -> Runtimes {
        let parts = Arc::new(parts);
        Runtimes {
            live: live::Live::new(parts.clone()),
            adapter: adapter::Adapter::new(parts.clone()),
            persistent: persistent::Persistent::new(parts.clone()),
            disposable: disposable::Disposable::new(parts),
        }
    }

    /// The runtime of `def`'s kind: managed when it has a `docker` section (persistent or
    /// disposable by its lifecycle), else adapter when it has an `adapter` section, else live.
    pub fn of(&self, def: &WorkerDef) -> &dyn WorkerRuntime {
        match (&def.docker, &def.adapter) {
            (Some(docker), _) => match docker.lifecycle {
                Lifecycle::Persistent => &self.persistent,
                Lifecycle::Disposable => &self.disposable,
            },
            (None, Some(_)) => &self.adapter,
            (None, None) => &self.live,
        }
    }
}

/// Sends to the endpoint where `worker` answers (a live worker's own, a started adapter's or
/// container's): what live, adapter and persistent workers share.
async fn send_to_endpoint(
    client: &WorkerClient,
    worker: &Worker,
    request: &TaskRequest,
) -> Result<TaskReply, SendError> {
    let Some(endpoint) = &worker.endpoint else {
        let reason = match &worker.error {
            Some(error) => format!("worker {} cannot run: {error}", worker.name()),
            None => format!(
                "worker {} has no endpoint yet (is it started?)",
                worker.name()
            ),
        };
        return Err(SendError::Permanent {
            status: None,
            reason,
        });
    };
    client
        .send_task(endpoint, worker.api_key(), request, worker.def.timeout)
        .await
}

/// Probes the endpoint where `worker` answers, with its key.
async fn probe_endpoint(
    client: &WorkerClient,
    worker: &Worker,
    timeout: Duration,
) -> Result<Health, &'static str> {
    let endpoint = worker.endpoint.as_deref().ok_or("no endpoint")?;
    Ok(client
        .health_with_key(endpoint, worker.api_key(), timeout)
        .await)
}

/// `mecha worker stop` of a worker mecha runs nothing for: marked offline.
async fn mark_stopped(states: &WorkerStates, worker: &Worker) -> Result<String, String> {
    use crate::store::WorkerState;
    states
        .set(
            worker.name(),
            &[WorkerState::Online, WorkerState::Error],
            WorkerState::Offline,
            "stopped",
        )
        .await
        .map_err(|err| err.to_string())?;
    Ok(format!("stopped {}", worker.name()))
}

#[cfg(test)]
mod tests;
