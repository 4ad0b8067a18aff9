//! Adapter workers run inside the daemon: `mecha serve` starts one runner per adapter worker
//! at start, restarts those whose upstream key a reload of `secrets.yml` changed, and stops them
//! at shutdown. Each runner's endpoint and key go to the worker registry, whence the dispatcher
//! and the health monitor send it; the key is never stored. A runner that cannot start puts its
//! worker in `error` with the reason; the other workers are unaffected.
//!
//! # Several daemons on one database
//!
//! Every daemon runs its own runner of each adapter worker and sends its tasks to that runner
//! only (`worker::registry` gives an adapter worker this daemon's endpoint, never the stored
//! one). The stored endpoint and `runtime_owner` say which daemon started a runner last; only
//! that daemon marks the worker offline when it stops, so one daemon's shutdown does not take
//! the worker from the others.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::config::secrets::{Secret, Secrets};
use crate::config::worker::{AdapterConfig, AdapterType, WorkerKind};
use crate::redact::Redactor;
use crate::store::{Store, WorkerLocation, WorkerState};
use crate::worker::adapter::{self, AdapterKind, AdapterSettings, RunningAdapter};
use crate::worker::registry::{LocalAdapter, Worker, Workers};
use crate::worker::state::WorkerStates;

/// 10 minutes: an LLM answering a long prompt on modest hardware takes minutes.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(600);

/// The adapter runners of this daemon, by worker name; shared by the reload and the shutdown.
pub struct Adapters {
    workers: Arc<Workers>,
    states: WorkerStates,
    redactor: Redactor,
    /// This daemon's id, recorded as the `runtime_owner` of the runners it starts.
    owner: String,
    running: Mutex<Vec<(String, RunningAdapter)>>,
}

impl Adapters {
    pub fn new(
        store: Arc<dyn Store>,
        workers: Arc<Workers>,
        redactor: Redactor,
        owner: String,
    ) -> Adapters {
        Adapters {
            states: WorkerStates::new(store, redactor.clone()),
            workers,
            redactor,
            owner,
            running: Mutex::new(Vec::new()),
        }
    }

    /// Starts a runner for every adapter worker and marks each online (or in error); returns
    /// how many run.
    pub async fn start_all(&self, secrets: &Secrets) -> usize {
        let Some(all) = adapter_workers(&self.workers).await else {
            return 0;
        };
        let mut running = self.running.lock().await;
        for worker in &all {
            if let Some(runner) = self.start_one(worker, secrets).await {
                running.push((worker.name().to_owned(), runner));
            }
        }
        running.len()
    }

    /// After `secrets.yml` is reloaded: restarts each adapter whose upstream key changed, and
    /// starts each that is not running (its token could not be resolved before), so that the
    /// new key is used from the next task on. The others keep running untouched.
    ///
    /// A restarted adapter gets a new endpoint and key. A task it was running is given the 5 s
    /// of [`RunningAdapter::stop`] to finish; tasks sent while it restarts find no one at the
    /// old endpoint and are retried, as with any worker that is briefly down.
    pub async fn reload(&self, before: &Secrets, after: &Secrets) {
        let Some(all) = adapter_workers(&self.workers).await else {
            return;
        };
        let mut running = self.running.lock().await;
        for worker in &all {
            let Some(config) = &worker.def.adapter else {
                continue;
            };
            let name = worker.name();
            let current = running.iter().position(|(running, _)| running == name);
            let key =
                |secrets: &Secrets| settings(config, secrets).map(|settings| settings.api_key);
            if current.is_some() && key(before) == key(after) {
                continue;
            }
            if let Some(index) = current {
                let (_, runner) = running.swap_remove(index);
                self.workers.set_adapter(name, None);
                runner.stop().await;
            }
            if let Some(runner) = self.start_one(worker, after).await {
                tracing::info!(worker = %name, "adapter started with the reloaded secrets");
                running.push((name.to_owned(), runner));
            }
        }
    }

    /// Starts the runner of one adapter worker and records the outcome: the worker online at
    /// the runner's endpoint, or in error with the reason.
    async fn start_one(&self, worker: &Worker, secrets: &Secrets) -> Option<RunningAdapter> {
        let config = worker.def.adapter.as_ref()?;
        let name = worker.name();
        let started = match settings(config, secrets) {
            Ok(settings) => adapter::start(settings, UPSTREAM_TIMEOUT)
                .await
                .map_err(|err| err.to_string()),
            Err(err) => Err(err),
        };
        match started {
            Ok(runner) => {
                // Before the state is stored: an online worker is sent tasks.
                self.workers.set_adapter(
                    name,
                    Some(LocalAdapter {
                        endpoint: runner.endpoint.clone(),
                        key: runner.key.clone(),
                    }),
                );
                let why = format!("adapter running at {}", runner.endpoint);
                let location = WorkerLocation {
                    endpoint: &runner.endpoint,
                    owner: &self.owner,
                    ..WorkerLocation::default()
                };
                if let Err(err) = self
                    .states
                    .set_runtime(name, location, WorkerState::Online, &why)
                    .await
                {
                    tracing::error!(worker = %name, error = %err, "could not record the adapter's state");
                }
                Some(runner)
            }
            Err(reason) => {
                tracing::error!(worker = %name, reason = %self.redactor.redact(&reason), "could not start the adapter");
                if let Err(err) = self
                    .states
                    .set(name, &WorkerState::ALL, WorkerState::Error, &reason)
                    .await
                {
                    tracing::error!(worker = %name, error = %err, "could not record the adapter's state");
                }
                None
            }
        }
    }

    /// Stops every runner and forgets its endpoint and key; marks offline each worker whose
    /// runner this daemon started last.
    pub async fn stop_all(&self) {
        let running = std::mem::take(&mut *self.running.lock().await);
        for (name, runner) in running {
            runner.stop().await;
            self.workers.set_adapter(&name, None);
            match self.workers.get(&name).await {
                Ok(Some(worker)) if worker.runtime_owner.as_deref() == Some(&self.owner) => {}
                // Another daemon started its runner since (or the worker is gone): it is
                // still served there.
                Ok(_) => continue,
                Err(err) => {
                    tracing::warn!(worker = %name, error = %err, "could not read the adapter's worker");
                    continue;
                }
            }
            let stopped = self
                .states
                .set_runtime(
                    &name,
                    WorkerLocation::default(),
                    WorkerState::Offline,
                    "the daemon stopped",
                )
                .await;
            if let Err(err) = stopped {
                tracing::warn!(worker = %name, error = %err, "could not mark the adapter offline");
            }
        }
    }
}

/// Every adapter worker, or `None` (logged) when the workers cannot be listed.
async fn adapter_workers(workers: &Workers) -> Option<Vec<Worker>> {
    match workers.all().await {
        Ok(all) => Some(
            all.into_iter()
                .filter(|worker| worker.def.kind() == WorkerKind::Adapter)
                .collect(),
        ),
        Err(err) => {
            tracing::error!(error = %err, "could not list workers; no adapters started");
            None
        }
    }
}

fn settings(config: &AdapterConfig, secrets: &Secrets) -> Result<AdapterSettings, String> {
    let api_key = match (&config.api_key, &config.token) {
        (Some(key), _) if !key.is_empty() => Some(Secret::new(key.clone())),
        (_, Some(reference)) => Some(
            secrets
                .resolve_token(reference)
                .map_err(|err| err.to_string())?
                .clone(),
        ),
        _ => None,
    };
    Ok(AdapterSettings {
        kind: match config.kind {
            AdapterType::Ollama => AdapterKind::Ollama,
            AdapterType::Openai => AdapterKind::OpenAi,
        },
        upstream: config.upstream.clone(),
        model: config.model.clone(),
        api_key,
    })
}
