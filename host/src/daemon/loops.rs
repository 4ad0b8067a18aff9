//! The daemon's background loops: the retry scan, the health monitor, the reconciliation of
//! managed workers' containers, the sweep of events whose processing failed, and retention.
//! Each runs
//! until the daemon stops and survives its own errors (they are logged, the loop goes on).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::pipeline::process::Processor;
use crate::pipeline::write_back::WriteBacks;
use crate::pipeline::{recovery, retention};
use crate::worker::client::WorkerClient;
use crate::worker::docker::Reconciler;
use crate::worker::monitor;

/// 500 ms between scans for due retries: a retry is never late by more than that, and an idle
/// daemon does two cheap indexed queries a second.
const RETRY_SCAN: Duration = Duration::from_millis(500);

/// Retention runs hourly: records are kept for days, so an hour of slack is nothing.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Every 30 s, events `received` for more than 30 s are matched again: their processing failed
/// after the acknowledgement (normal processing takes milliseconds).
const STALE_EVENTS: Duration = Duration::from_secs(30);

/// Write-backs: tried as soon as a task completes, and every [`RETRY_SCAN`] for retries and
/// for those an earlier run left pending.
pub async fn write_backs(write_backs: Arc<WriteBacks>, completed: Arc<Notify>) {
    loop {
        if let Err(err) = write_backs.run_due().await {
            tracing::warn!(error = %err, "could not scan for due write-backs");
        }
        let _ = tokio::time::timeout(RETRY_SCAN, completed.notified()).await;
    }
}

/// Starts the loops; abort the handles to stop them.
pub fn start(
    processor: Arc<Processor>,
    client: WorkerClient,
    reconciler: Reconciler,
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
    // Reconciliation first, so a worker whose container died is put in error before the
    // monitor probes it.
    let health = {
        let processor = processor.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(health_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                reconciler.pass().await;
                monitor::recover_workers(&processor.store, &processor.workers, &client).await;
            }
        })
    };
    let stale = {
        let processor = processor.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(STALE_EVENTS);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match recovery::process_stale(&processor, STALE_EVENTS).await {
                    Ok(0) => {}
                    Ok(count) => {
                        tracing::info!(count, "matched events whose processing had failed")
                    }
                    Err(err) => tracing::warn!(error = %err, "could not sweep unprocessed events"),
                }
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
    vec![retries, health, stale, retention]
}
