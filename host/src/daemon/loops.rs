//! The daemon's background loops: the retry scan, the health monitor and retention. Each runs
//! until the daemon stops and survives its own errors (they are logged, the loop goes on).

use std::sync::Arc;
use std::time::Duration;

use crate::pipeline::process::Processor;
use crate::pipeline::retention;
use crate::worker::client::WorkerClient;
use crate::worker::monitor;

/// 500 ms between scans for due retries: a retry is never late by more than that, and an idle
/// daemon does two cheap indexed queries a second.
const RETRY_SCAN: Duration = Duration::from_millis(500);

/// Retention runs hourly: records are kept for days, so an hour of slack is nothing.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Starts the loops; abort the handles to stop them.
pub fn start(
    processor: Arc<Processor>,
    client: WorkerClient,
    health_interval: Duration,
    keep_logs: Duration,
    keep_events: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    let retries = {
        let processor = processor.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RETRY_SCAN);
            loop {
                ticks.tick().await;
                if let Err(err) = processor.dispatcher.queue_due().await {
                    tracing::warn!(error = %err, "could not scan for due tasks");
                }
            }
        })
    };
    let health = {
        let processor = processor.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(health_interval);
            loop {
                ticks.tick().await;
                monitor::recover_workers(&processor.store, &processor.workers, &client).await;
            }
        })
    };
    let retention = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(RETENTION_INTERVAL);
        loop {
            ticks.tick().await;
            retention::prune(processor.store.as_ref(), keep_logs, keep_events).await;
        }
    });
    vec![retries, health, retention]
}
