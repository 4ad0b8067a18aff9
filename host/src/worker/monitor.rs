//! Brings workers back from `error`: every kind is probed by its runtime (on its `/health`),
//! and one that answers 200 again is set `online`, which releases the tasks its lane
//! was holding. A worker never stays broken because nobody restarted it by hand.

use std::time::Duration;

use crate::store::WorkerState;
use crate::worker::client::Health;
use crate::worker::registry::Workers;
use crate::worker::runtime::Runtimes;
use crate::worker::state::WorkerStates;

/// 3 s per probe: a healthy worker answers `/health` in milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Probes every worker in `error` once; returns how many came back.
pub async fn recover_workers(
    states: &WorkerStates,
    workers: &Workers,
    runtimes: &Runtimes,
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
        let health = runtimes.of(&worker.def).health(worker, PROBE_TIMEOUT).await;
        if health != Ok(Health::Healthy) {
            continue;
        }
        let changed = states
            .set(
                worker.name(),
                &[WorkerState::Error],
                WorkerState::Online,
                "health check passed",
            )
            .await;
        if changed.is_ok() {
            recovered += 1;
            tracing::info!(worker = %worker.name(), "worker is healthy again");
        }
    }
    recovered
}
