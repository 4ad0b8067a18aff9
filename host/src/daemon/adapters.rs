//! Adapter workers run inside the daemon: `mecha serve` starts one runner per adapter worker
//! at start, restarts those whose upstream key a reload of `secrets.yml` changed, and stops them
//! at shutdown. Each runner's key goes to the worker registry, whence the dispatcher and the
//! health monitor send it; it is never stored. A runner that cannot start puts its worker in
//! `error` with the reason; the other workers are unaffected.

use std::sync::Arc;
use std::time::Duration;

use crate::config::secrets::{Secret, Secrets};
use crate::config::worker::{AdapterConfig, AdapterType, WorkerKind};
use crate::redact::Redactor;
use crate::store::{Store, WorkerLocation, WorkerState};
use crate::worker::adapter::{self, AdapterKind, AdapterSettings, RunningAdapter};
use crate::worker::registry::{Worker, Workers};
use crate::worker::state::WorkerStates;

/// 10 minutes: an LLM answering a long prompt on modest hardware takes minutes.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(600);

/// Starts a runner for every adapter worker and marks each online (or in error).
pub async fn start_all(
    store: &Arc<dyn Store>,
    workers: &Workers,
    secrets: &Secrets,
    redactor: &Redactor,
) -> Vec<(String, RunningAdapter)> {
    let Some(all) = adapter_workers(workers).await else {
        return Vec::new();
    };
    let mut running = Vec::new();
    for worker in &all {
        if let Some(runner) = start_one(store, workers, worker, secrets, redactor).await {
            running.push((worker.name().to_owned(), runner));
        }
    }
    running
}

/// After `secrets.yml` is reloaded: restarts each adapter whose upstream key changed, and
/// starts each that is not running (its token could not be resolved before), so that the new
/// key is used from the next task on. The others keep running untouched.
///
/// A restarted adapter gets a new endpoint and key. A task it was running is given the 5 s of
/// [`RunningAdapter::stop`] to finish; tasks sent while it restarts find no one at the old
/// endpoint and are retried, as with any worker that is briefly down.
pub async fn reload(
    store: &Arc<dyn Store>,
    workers: &Workers,
    before: &Secrets,
    after: &Secrets,
    redactor: &Redactor,
    running: &mut Vec<(String, RunningAdapter)>,
) {
    let Some(all) = adapter_workers(workers).await else {
        return;
    };
    for worker in &all {
        let Some(config) = &worker.def.adapter else {
            continue;
        };
        let name = worker.name();
        let current = running.iter().position(|(running, _)| running == name);
        let key = |secrets: &Secrets| settings(config, secrets).map(|settings| settings.api_key);
        if current.is_some() && key(before) == key(after) {
            continue;
        }
        if let Some(index) = current {
            let (_, runner) = running.swap_remove(index);
            runner.stop().await;
        }
        if let Some(runner) = start_one(store, workers, worker, after, redactor).await {
            tracing::info!(worker = %name, "adapter started with the reloaded secrets");
            running.push((name.to_owned(), runner));
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

/// Starts the runner of one adapter worker and records the outcome: the worker online at the
/// runner's endpoint, or in error with the reason.
async fn start_one(
    store: &Arc<dyn Store>,
    workers: &Workers,
    worker: &Worker,
    secrets: &Secrets,
    redactor: &Redactor,
) -> Option<RunningAdapter> {
    let config = worker.def.adapter.as_ref()?;
    let name = worker.name();
    let started = match settings(config, secrets) {
        Ok(settings) => adapter::start(settings, UPSTREAM_TIMEOUT)
            .await
            .map_err(|err| err.to_string()),
        Err(err) => Err(err),
    };
    let states = WorkerStates::new(store.clone(), redactor.clone());
    match started {
        Ok(runner) => {
            let endpoint = runner.endpoint.clone();
            // Before the endpoint is stored: a worker with an endpoint is sent tasks.
            workers.set_adapter_key(name, Some(runner.key.clone()));
            let why = format!("adapter running at {endpoint}");
            if let Err(err) = states
                .set_runtime(
                    name,
                    WorkerLocation {
                        endpoint: &endpoint,
                        ..WorkerLocation::default()
                    },
                    WorkerState::Online,
                    &why,
                )
                .await
            {
                tracing::error!(worker = %name, error = %err, "could not record the adapter's state");
            }
            Some(runner)
        }
        Err(reason) => {
            tracing::error!(worker = %name, reason = %redactor.redact(&reason), "could not start the adapter");
            // No runner, so no endpoint: nothing may be sent to a port from an older run.
            if let Err(err) = states
                .moved(name, WorkerLocation::default(), WorkerState::Offline)
                .await
            {
                tracing::warn!(worker = %name, error = %err, "could not clear the adapter's endpoint");
            }
            if let Err(err) = states
                .set(name, &WorkerState::ALL, WorkerState::Error, &reason)
                .await
            {
                tracing::error!(worker = %name, error = %err, "could not record the adapter's state");
            }
            None
        }
    }
}

/// Stops every runner, forgets its key and marks its worker offline.
pub async fn stop_all(
    store: &Arc<dyn Store>,
    workers: &Workers,
    redactor: &Redactor,
    running: Vec<(String, RunningAdapter)>,
) {
    let states = WorkerStates::new(store.clone(), redactor.clone());
    for (name, runner) in running {
        runner.stop().await;
        workers.set_adapter_key(&name, None);
        // The endpoint goes with the runner: the next start binds another port.
        let stopped = states
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
