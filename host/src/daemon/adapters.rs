//! Adapter workers run inside the daemon: `mecha serve` starts one runner per adapter worker
//! at start and stops them at shutdown. A runner that cannot start puts its worker in `error`
//! with the reason; the other workers are unaffected.

use std::sync::Arc;
use std::time::Duration;

use crate::config::secrets::{Secret, Secrets};
use crate::config::worker::{AdapterConfig, AdapterType, WorkerKind};
use crate::redact::Redactor;
use crate::store::{AuditEntry, AuditOutcome, Store, WorkerState};
use crate::worker::adapter::{self, AdapterKind, AdapterSettings, RunningAdapter};
use crate::worker::registry::Workers;

/// 10 minutes: an LLM answering a long prompt on modest hardware takes minutes.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(600);

/// Starts a runner for every adapter worker and marks each online (or in error).
pub async fn start_all(
    store: &Arc<dyn Store>,
    workers: &Workers,
    secrets: &Secrets,
    redactor: &Redactor,
) -> Vec<(String, RunningAdapter)> {
    let all = match workers.all().await {
        Ok(all) => all,
        Err(err) => {
            tracing::error!(error = %err, "could not list workers; no adapters started");
            return Vec::new();
        }
    };
    let mut running = Vec::new();
    for worker in all
        .iter()
        .filter(|worker| worker.def.kind() == WorkerKind::Adapter)
    {
        let Some(config) = &worker.def.adapter else {
            continue;
        };
        let name = worker.name().to_owned();
        let started = match settings(config, secrets) {
            Ok(settings) => adapter::start(settings, UPSTREAM_TIMEOUT)
                .await
                .map_err(|err| err.to_string()),
            Err(err) => Err(err),
        };
        let outcome = match started {
            Ok(runner) => {
                let endpoint = runner.endpoint.clone();
                running.push((name.clone(), runner));
                store
                    .set_worker_runtime(&name, "", &endpoint, WorkerState::Online)
                    .await
                    .map(|()| format!("adapter running at {endpoint}"))
            }
            Err(reason) => {
                let reason = redactor.redact(&reason).into_owned();
                tracing::error!(worker = %name, %reason, "could not start the adapter");
                // No runner, so no endpoint: nothing may be sent to a port from an older run.
                if let Err(err) = store
                    .set_worker_runtime(&name, "", "", WorkerState::Offline)
                    .await
                {
                    tracing::warn!(worker = %name, error = %err, "could not clear the adapter's endpoint");
                }
                store
                    .set_worker_state(
                        &name,
                        &[
                            WorkerState::Offline,
                            WorkerState::Online,
                            WorkerState::Busy,
                            WorkerState::Error,
                        ],
                        WorkerState::Error,
                        Some(reason.clone()),
                    )
                    .await
                    .map(|()| reason)
            }
        };
        match outcome {
            Ok(detail) => {
                let entry = AuditEntry::new(format!("worker:{name}"), "worker.state")
                    .worker(&name)
                    .outcome(if running.iter().any(|(running, _)| *running == name) {
                        AuditOutcome::Ok
                    } else {
                        AuditOutcome::Fail
                    })
                    .detail(serde_json::json!({ "detail": detail }));
                if let Err(err) = store.record(entry).await {
                    tracing::warn!(error = %err, "could not write an audit record");
                }
            }
            Err(err) => {
                tracing::error!(worker = %name, error = %err, "could not record the adapter's state")
            }
        }
    }
    running
}

/// Stops every runner and marks its worker offline.
pub async fn stop_all(store: &Arc<dyn Store>, running: Vec<(String, RunningAdapter)>) {
    for (name, runner) in running {
        runner.stop().await;
        // The endpoint goes with the runner: the next start binds another port.
        let stopped = store
            .set_worker_runtime(&name, "", "", WorkerState::Offline)
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
