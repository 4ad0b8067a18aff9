//! Keeps started persistent workers' state true to their containers (reference 6.5, plus the
//! restart policy): a container that stopped is restarted when its policy allows, and one that
//! stopped or stopped answering puts its worker in `error`, which holds the worker's tasks
//! until it is healthy again. Bringing a worker back from `error` is the health monitor's job
//! (`worker::monitor`), as for every kind of worker.

use std::sync::Arc;
use std::time::Duration;

use super::engine::{ContainerStatus, DockerError};
use super::lifecycle::Containers;
use crate::config::worker::{DockerConfig, Lifecycle, RestartPolicy, WorkerKind};
use crate::redact::Redactor;
use crate::store::{AuditEntry, AuditOutcome, Store, WorkerState};
use crate::worker::client::{Health, WorkerClient};
use crate::worker::registry::{Worker, Workers};

/// 3 s per probe, as in the Go mecha: a healthy worker answers `/health` in milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Reconciler {
    store: Arc<dyn Store>,
    workers: Arc<Workers>,
    containers: Arc<Containers>,
    client: WorkerClient,
    redactor: Redactor,
}

impl Reconciler {
    pub fn new(
        store: Arc<dyn Store>,
        workers: Arc<Workers>,
        containers: Arc<Containers>,
        client: WorkerClient,
        redactor: Redactor,
    ) -> Reconciler {
        Reconciler {
            store,
            workers,
            containers,
            client,
            redactor,
        }
    }

    /// Checks every started persistent managed worker once.
    pub async fn pass(&self) {
        let all = match self.workers.all().await {
            Ok(all) => all,
            Err(err) => {
                tracing::warn!(error = %err, "could not list workers to reconcile");
                return;
            }
        };
        for worker in &all {
            let Some(docker) = &worker.def.docker else {
                continue;
            };
            if worker.def.kind() == WorkerKind::Managed
                && docker.lifecycle == Lifecycle::Persistent
                && worker.state != WorkerState::Offline
                && !worker.container.is_empty()
            {
                self.reconcile(worker, docker).await;
            }
        }
    }

    async fn reconcile(&self, worker: &Worker, docker: &DockerConfig) {
        let status = match self.containers.engine(docker.host.as_deref()).await {
            Ok(engine) => engine.inspect(&worker.container).await,
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
            self.check_running(worker, &status).await;
        } else {
            self.handle_stopped(worker, docker, &status).await;
        }
    }

    async fn check_running(&self, worker: &Worker, status: &ContainerStatus) {
        let Some(endpoint) = &status.endpoint else {
            return self
                .fail(worker, "its container no longer publishes the worker port")
                .await;
        };
        if worker.endpoint.as_ref() != Some(endpoint) {
            // Docker may publish another port after a restart.
            if let Err(err) = self
                .store
                .set_worker_runtime(worker.name(), &worker.container, endpoint, worker.state)
                .await
            {
                tracing::warn!(worker = %worker.name(), error = %err, "could not record the worker's new endpoint");
            }
        }
        match self.client.health(endpoint, PROBE_TIMEOUT).await {
            Health::Healthy | Health::Busy => {
                if worker.restarts > 0 {
                    self.record_restarts(worker.name(), 0).await;
                }
            }
            Health::Unhealthy(reason) => {
                if matches!(worker.state, WorkerState::Online | WorkerState::Busy) {
                    self.fail(worker, &format!("container not responding: {reason}"))
                        .await;
                }
            }
        }
    }

    async fn record_restarts(&self, name: &str, restarts: u32) {
        if let Err(err) = self.store.set_worker_restarts(name, restarts).await {
            tracing::warn!(worker = %name, error = %err, "could not record the worker's restart count");
        }
    }

    async fn handle_stopped(
        &self,
        worker: &Worker,
        docker: &DockerConfig,
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
                worker.container
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
        let restarted = match self.containers.engine(docker.host.as_deref()).await {
            Ok(engine) => match engine.start(&worker.container).await {
                Ok(()) => engine.inspect(&worker.container).await,
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
                    .store
                    .set_worker_runtime(name, &worker.container, &endpoint, WorkerState::Error)
                    .await
                {
                    tracing::warn!(worker = %name, error = %err, "could not record the restarted container");
                }
                tracing::warn!(worker = %name, attempt, limit, "restarted a stopped worker container");
                self.store.record_detached(
                    entry.attempt(attempt).detail(
                        serde_json::json!({ "exit_code": status.exit_code, "limit": limit }),
                    ),
                );
            }
            Err(err) => {
                let reason = self.redactor.redact(&err.to_string()).into_owned();
                tracing::warn!(worker = %name, error = %reason, "could not restart a worker container");
                self.store.record_detached(
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
        let reason = self.redactor.redact(reason).into_owned();
        if worker.state == WorkerState::Error && worker.error == reason {
            return;
        }
        let changed = self
            .store
            .set_worker_state(
                worker.name(),
                &[WorkerState::Online, WorkerState::Busy, WorkerState::Error],
                WorkerState::Error,
                Some(reason.clone()),
            )
            .await;
        match changed {
            Ok(()) => {
                tracing::warn!(worker = %worker.name(), %reason, "worker container is unhealthy; holding its tasks");
                self.store.record_detached(
                    AuditEntry::new(format!("worker:{}", worker.name()), "worker.state")
                        .outcome(AuditOutcome::Fail)
                        .worker(worker.name())
                        .error(&reason)
                        .detail(serde_json::json!({ "state": "error" })),
                );
            }
            // Stopped meanwhile (`mecha worker stop`): nothing to reconcile.
            Err(err) => {
                tracing::debug!(worker = %worker.name(), error = %err, "worker changed state while reconciling")
            }
        }
    }
}
