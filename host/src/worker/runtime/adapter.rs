//! Adapter workers run inside the daemon: `mecha serve` starts a server per adapter worker
//! (`daemon::adapters`) that bridges the worker contract to a model server (`worker::adapter`),
//! and tasks go to that server's port with the key it was started with. The CLI cannot start
//! one, and cannot probe one either: the key lives in its daemon's memory only.

use std::sync::Arc;
use std::time::Duration;

use super::{BoxFuture, Finding, Parts, Progress, WorkerRuntime, probe_endpoint};
use crate::store::{WorkerLocation, WorkerState};
use crate::worker::client::Health;
use crate::worker::registry::Worker;

/// 5 s for doctor's check of the upstream.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Adapter {
    parts: Arc<Parts>,
    /// This daemon's id, recorded when it takes over the stored runner.
    owner: String,
}

impl Adapter {
    pub(super) fn new(parts: Arc<Parts>) -> Adapter {
        let owner = parts.containers.daemon_id();
        Adapter { parts, owner }
    }
}

impl WorkerRuntime for Adapter {
    fn parts(&self) -> &Parts {
        &self.parts
    }
    fn how_to_start(&self, _name: &str) -> String {
        "restart `mecha serve`, which starts adapter workers".to_owned()
    }

    fn start<'a>(
        &'a self,
        worker: &'a Worker,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        let name = worker.name().to_owned();
        Box::pin(async move {
            Err(format!(
                "{name} is an adapter worker: `mecha serve` starts it (and stops it at shutdown)"
            ))
        })
    }

    /// Only the daemon running the adapter holds its key, which the adapter asks of every
    /// request; elsewhere the answer is unknown.
    fn health<'a>(
        &'a self,
        worker: &'a Worker,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Health, &'static str>> {
        Box::pin(async move {
            worker.api_key().ok_or("checked by mecha serve")?;
            probe_endpoint(&self.parts.client, worker, timeout).await
        })
    }

    /// When the daemon whose runner the store named stopped (it left the worker offline and
    /// named no daemon) while this one's runner serves, this daemon's runner becomes the one
    /// named, and the worker shows online again.
    fn reconcile<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (Some(endpoint), None) = (&worker.endpoint, &worker.runtime_owner) else {
                return;
            };
            let location = WorkerLocation {
                endpoint,
                owner: &self.owner,
                ..WorkerLocation::default()
            };
            let why = format!("adapter running at {endpoint}");
            if let Err(err) = self
                .parts
                .states
                .set_runtime(worker.name(), location, WorkerState::Online, &why)
                .await
            {
                tracing::warn!(worker = %worker.name(), error = %err, "could not record the adapter's state");
            }
        })
    }

    fn diagnose<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, Vec<Finding>> {
        Box::pin(async move {
            let name = worker.name();
            let upstream = worker
                .def
                .adapter
                .as_ref()
                .map(|adapter| adapter.upstream.clone())
                .unwrap_or_default();
            vec![
                match self.parts.client.reachable(&upstream, CHECK_TIMEOUT).await {
                    true => Finding::Ok(format!("worker {name}: upstream {upstream} answers")),
                    false => Finding::Warn(format!(
                        "worker {name}: upstream {upstream} does not answer"
                    )),
                },
            ]
        })
    }
}
