//! Brings workers back from `error`: every kind (live, adapter, managed) is probed on its
//! `/health`, and one that answers 200 again is set `online`, which releases the tasks its lane
//! was holding. A worker never stays broken because nobody restarted it by hand.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{AuditEntry, Store, WorkerState};
use crate::worker::client::{Health, WorkerClient};
use crate::worker::registry::Workers;

/// 3 s per probe: a healthy worker answers `/health` in milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Probes every worker in `error` once; returns how many came back.
pub async fn recover_workers(
    store: &Arc<dyn Store>,
    workers: &Workers,
    client: &WorkerClient,
) -> usize {
    let all = match workers.all().await {
        Ok(all) => all,
        Err(err) => {
            tracing::warn!(error = %err, "could not list workers to probe");
            return 0;
        }
    };
    let mut recovered = 0;
    for worker in all
        .iter()
        .filter(|worker| worker.state == WorkerState::Error)
    {
        let Some(endpoint) = &worker.endpoint else {
            continue;
        };
        if client
            .health_with_key(endpoint, worker.api_key(), PROBE_TIMEOUT)
            .await
            != Health::Healthy
        {
            continue;
        }
        let changed = store
            .set_worker_state(
                worker.name(),
                &[WorkerState::Error],
                WorkerState::Online,
                None,
            )
            .await;
        if changed.is_ok() {
            recovered += 1;
            tracing::info!(worker = %worker.name(), "worker is healthy again");
            let entry = AuditEntry::new(format!("worker:{}", worker.name()), "worker.state")
                .worker(worker.name())
                .detail(serde_json::json!({ "state": "online", "reason": "health check passed" }));
            if let Err(err) = store.record(entry).await {
                tracing::warn!(error = %err, "could not write an audit record");
            }
        }
    }
    recovered
}
