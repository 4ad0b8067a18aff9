//! Persistent managed workers: one container, started by `mecha worker start` and kept until
//! `stop` or `remove`, that tasks are sent to. Reconciliation keeps the worker's state true to
//! its container (reference 6.5, plus the restart policy): a container that stopped is restarted
//! when its policy allows, and one that stopped or stopped answering puts its worker in `error`,
//! which holds the worker's tasks until it is healthy again. Bringing a worker back from `error`
//! is the health monitor's job (`worker::monitor`), as for every kind of worker.

use std::sync::Arc;
use std::time::Duration;

use super::{BoxFuture, Finding, Parts, Progress, WorkerRuntime, managed};
use crate::config::worker::{DockerConfig, RestartPolicy};
use crate::store::{AuditEntry, AuditOutcome, WorkerLocation, WorkerState};
use crate::worker::client::Health;
use crate::worker::docker::engine::{ContainerStatus, DockerError};
use crate::worker::registry::Worker;

/// 3 s per probe, as in the Go mecha: a healthy worker answers `/health` in milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Persistent {
    parts: Arc<Parts>,
    /// This daemon's id, stored with the containers it starts: only it reconciles them.
    owner: String,
}

impl Persistent {
    pub(super) fn new(parts: Arc<Parts>) -> Persistent {
        let owner = parts.containers.daemon_id();
        Persistent { parts, owner }
    }

    /// Where a container of this daemon runs, as stored with its worker.
    fn runtime<'a>(&'a self, container: &'a str, endpoint: &'a str) -> WorkerLocation<'a> {
        WorkerLocation {
            container_id: container,
            endpoint,
            owner: &self.owner,
        }
    }

    /// Starts the container, healthy, or says why it could not.
    async fn start_container(
        &self,
        worker: &Worker,
        progress: Progress<'_>,
    ) -> Result<String, String> {
        let name = worker.name();
        let states = &self.parts.states;
        managed::ensure_stopped(worker)?;
        let running = match self
            .parts
            .containers
            .start_persistent(&worker.def, progress)
            .await
        {
            Ok(running) => running,
            Err(err) => return Err(managed::start_failed(&self.parts, worker, &err).await),
        };
        let (container, endpoint) = (&running.container_id, &running.endpoint);
        states
            .set_runtime(
                name,
                self.runtime(container, endpoint),
                WorkerState::Online,
                "started",
            )
            .await
            .map_err(|err| err.to_string())?;
        // An operator's start gives the new container a fresh restart budget.
        self.record_restarts(name, 0).await;
        Ok(format!(
            "started {name} (container {} at {endpoint})",
            container.get(..12).unwrap_or(container)
        ))
    }

    async fn reconcile_container(&self, worker: &Worker, docker: &DockerConfig, container: &str) {
        let status = match self.parts.containers.engine(docker.host.as_deref()).await {
            Ok(engine) => engine.inspect(container).await,
            Err(err) => Err(err),
        };
        let status = match status {
            Ok(status) => status,
            Err(DockerError::NotFound { .. }) => {
                let reason = format!(
                    "its container was removed outside mecha; `mecha worker stop {0}` then `mecha worker start {0}` creates a new one",
                    worker.name()
                );
                return self.fail(worker, &reason).await;
            }
            Err(err) => return self.fail(worker, &err.to_string()).await,
        };
        if status.running {
            self.check_running(worker, container, &status).await;
        } else {
            self.handle_stopped(worker, docker, container, &status)
                .await;
        }
    }

    async fn check_running(&self, worker: &Worker, container: &str, status: &ContainerStatus) {
        let Some(endpoint) = &status.endpoint else {
            return self
                .fail(worker, "its container no longer publishes the worker port")
                .await;
        };
        if worker.endpoint.as_ref() != Some(endpoint) {
            // Docker may publish another port after a restart.
            if let Err(err) = self
                .parts
                .states
                .moved(
                    worker.name(),
                    self.runtime(container, endpoint),
                    worker.state,
                )
                .await
            {
                tracing::warn!(worker = %worker.name(), error = %err, "could not record the worker's new endpoint");
            }
        }
        match self.parts.client.health(endpoint, PROBE_TIMEOUT).await {
            Health::Healthy | Health::Busy => {
                if worker.restarts > 0 {
                    self.record_restarts(worker.name(), 0).await;
                }
            }
            Health::Unhealthy(reason) => {
                if worker.state == WorkerState::Online {
                    self.fail(worker, &format!("container not responding: {reason}"))
                        .await;
                }
            }
        }
    }

    async fn record_restarts(&self, name: &str, restarts: u32) {
        if let Err(err) = self.parts.store.set_worker_restarts(name, restarts).await {
            tracing::warn!(worker = %name, error = %err, "could not record the worker's restart count");
        }
    }

    async fn handle_stopped(
        &self,
        worker: &Worker,
        docker: &DockerConfig,
        container: &str,
        status: &ContainerStatus,
    ) {
        let name = worker.name();
        let how = match (status.oom_killed, status.exit_code) {
            (true, _) => "was killed for using too much memory".to_owned(),
            (false, code) => format!("stopped with exit code {code}"),
        };
        let failed = status.oom_killed || status.exit_code != 0;
        // Kept in the store: a daemon restart does not renew a crash-looping container's budget.
        let done = worker.restarts;
        let limit = match docker.restart {
            RestartPolicy::OnFailure { limit } if failed => limit,
            RestartPolicy::OnFailure { .. } => {
                let reason =
                    format!("its container {how}; `mecha worker start {name}` starts it again");
                return self.fail(worker, &reason).await;
            }
            RestartPolicy::No => {
                let reason = format!(
                    "its container {how} (docker.restart is no); `mecha worker start {name}` starts it again"
                );
                return self.fail(worker, &reason).await;
            }
        };
        if done >= limit {
            let reason = format!(
                "its container {how} and was restarted {done} times in a row without becoming healthy; see `docker logs {}`, then `mecha worker start {name}`",
                container
            );
            return self.fail(worker, &reason).await;
        }
        let attempt = done + 1;
        self.record_restarts(name, attempt).await;
        self.fail(
            worker,
            &format!("its container {how}; restarting it ({attempt} of {limit})"),
        )
        .await;
        let restarted = match self.parts.containers.engine(docker.host.as_deref()).await {
            Ok(engine) => match engine.start(container).await {
                Ok(()) => engine.inspect(container).await,
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let entry = AuditEntry::new(format!("worker:{name}"), "worker.restarted").worker(name);
        match restarted {
            Ok(status) => {
                // Still `error`: the health monitor brings it online once it answers.
                let endpoint = status.endpoint.unwrap_or_default();
                if let Err(err) = self
                    .parts
                    .states
                    .moved(name, self.runtime(container, &endpoint), WorkerState::Error)
                    .await
                {
                    tracing::warn!(worker = %name, error = %err, "could not record the restarted container");
                }
                tracing::warn!(worker = %name, attempt, limit, "restarted a stopped worker container");
                self.parts.store.record_detached(
                    entry.attempt(attempt).detail(
                        serde_json::json!({ "exit_code": status.exit_code, "limit": limit }),
                    ),
                );
            }
            Err(err) => {
                let reason = self.parts.redactor.redact(&err.to_string()).into_owned();
                tracing::warn!(worker = %name, error = %reason, "could not restart a worker container");
                self.parts.store.record_detached(
                    entry
                        .outcome(AuditOutcome::Fail)
                        .attempt(attempt)
                        .error(&reason),
                );
            }
        }
    }

    /// Puts `worker` in `error` with `reason`, unless it is there already for that reason; every
    /// new reason is audited, so a container that first stopped answering and then exited shows
    /// both.
    async fn fail(&self, worker: &Worker, reason: &str) {
        let reason = self.parts.redactor.redact(reason).into_owned();
        if worker.state == WorkerState::Error && worker.error.as_deref() == Some(reason.as_str()) {
            return;
        }
        let changed = self
            .parts
            .states
            .set(
                worker.name(),
                &[WorkerState::Online, WorkerState::Error],
                WorkerState::Error,
                &reason,
            )
            .await;
        match changed {
            Ok(()) => {
                tracing::warn!(worker = %worker.name(), %reason, "worker container is unhealthy; holding its tasks");
            }
            // Stopped meanwhile (`mecha worker stop`): nothing to reconcile.
            Err(err) => {
                tracing::debug!(worker = %worker.name(), error = %err, "worker changed state while reconciling")
            }
        }
    }
}

impl WorkerRuntime for Persistent {
    fn parts(&self) -> &Parts {
        &self.parts
    }

    fn start<'a>(
        &'a self,
        worker: &'a Worker,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.start_container(worker, progress))
    }

    /// Stops the container, keeping its id so that `mecha worker remove` can remove it.
    fn stop<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let name = worker.name();
            let (Some(docker), Some(container)) = (&worker.def.docker, &worker.container) else {
                return super::mark_stopped(&self.parts.states, worker).await;
            };
            self.parts
                .containers
                .stop(docker, container)
                .await
                .map_err(|err| format!("could not stop the container of {name}: {err}"))?;
            self.parts
                .states
                .set_runtime(
                    name,
                    WorkerLocation {
                        container_id: container,
                        ..WorkerLocation::default()
                    },
                    WorkerState::Offline,
                    "stopped",
                )
                .await
                .map_err(|err| err.to_string())?;
            Ok(format!("stopped {name} (container)"))
        })
    }

    fn remove<'a>(
        &'a self,
        worker: &'a Worker,
        force: bool,
    ) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(managed::remove(&self.parts, worker, force))
    }

    fn diagnose<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, Vec<Finding>> {
        Box::pin(managed::diagnose(&self.parts, worker))
    }

    /// A started worker whose container is known: checked against its container, by the
    /// daemon that runs it only. Daemons sharing a database leave each other's containers
    /// alone: another daemon's may be on an engine this one cannot see.
    fn reconcile<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if worker
                .runtime_owner
                .as_deref()
                .is_some_and(|owner| owner != self.owner)
            {
                return;
            }
            if let (Some(docker), Some(container), true) = (
                &worker.def.docker,
                &worker.container,
                worker.state != WorkerState::Offline,
            ) {
                self.reconcile_container(worker, docker, container).await;
            }
        })
    }
}
