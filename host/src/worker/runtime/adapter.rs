//! Adapter workers run inside the daemon: `mecha serve` starts a server per adapter worker
//! (`daemon::adapters`) that bridges the worker contract to a model server (`worker::adapter`),
//! and tasks go to that server's port with the key it was started with. The CLI cannot start
//! one, and cannot probe one either: the key lives in its daemon's memory only.

use std::sync::Arc;
use std::time::Duration;

use super::{BoxFuture, Finding, Parts, Progress, WorkerRuntime, probe_endpoint};
use crate::worker::client::Health;
use crate::worker::registry::Worker;

/// 5 s for doctor's check of the upstream.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Adapter {
    parts: Arc<Parts>,
}

impl Adapter {
    pub(super) fn new(parts: Arc<Parts>) -> Adapter {
        Adapter { parts }
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
