//! The daemon's background loops: the retry scan, the sweep of ended leases, the health
//! monitor, the reconciliation of managed workers' containers, the sweep of events whose
//! processing failed, and retention.
//! Each runs
//! until the daemon stops and survives its own errors (they are logged, the loop goes on).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::pipeline::process::Processor;
use crate::pipeline::write_back::WriteBacks;
use crate::pipeline::{recovery, retention};
use crate::worker::monitor;
use crate::worker::registry::Workers;
use crate::worker::runtime::Runtimes;
use crate::worker::state::WorkerStates;

/// 500 ms between scans for due retries: a retry is never late by more than that, and an idle
/// daemon does two cheap indexed queries a second. On PostgreSQL, work another daemon makes due
/// at once is looked for when it says so (`TaskStore::task_notices`), not at the next tick.
const RETRY_SCAN: Duration = Duration::from_millis(500);

/// How long the write-back loop waits, once a task completes, for others to complete.
const COMPLETIONS_GATHERED: Duration = Duration::from_millis(2);

/// Retention runs hourly: records are kept for days, so an hour of slack is nothing.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Every 30 s, events `received` for more than 30 s are matched again: their processing failed
/// after the acknowledgement (normal processing takes milliseconds).
const STALE_EVENTS: Duration = Duration::from_secs(30);

/// Write-backs: tried as soon as a task completes, when another daemon says some are due
/// (`notices`), and every [`RETRY_SCAN`] for retries and for those an earlier run left pending.
pub async fn write_backs(
    write_backs: Arc<WriteBacks>,
    completed: Arc<Notify>,
    mut notices: Option<watch::Receiver<u64>>,
) {
    loop {
        if let Err(err) = write_backs.run_due().await {
            tracing::warn!(error = %err, "could not scan for due write-backs");
        }
        tokio::select! {
            () = completed.notified() => {
                // A scan claims what is due in one write: under load, the completions of the
                // next moment share it instead of each paying for a scan of its own.
                tokio::time::sleep(COMPLETIONS_GATHERED).await;
            }
            () = notified(&mut notices) => {}
            () = tokio::time::sleep(RETRY_SCAN) => {}
        }
    }
}

/// Resolves when another daemon on the database notifies due work; never when the store has
/// no such notices, or stopped giving them (the scans' ticks still run).
async fn notified(notices: &mut Option<watch::Receiver<u64>>) {
    if let Some(receiver) = notices
        && receiver.changed().await.is_ok()
    {
        return;
    }
    *notices = None;
    std::future::pending().await
}

/// Brings every worker's state in line with what runs for it, as its runtime sees it.
async fn reconcile(workers: &Workers, runtimes: &Runtimes) {
    match workers.all().await {
        Ok(all) => {
            for worker in &all {
                runtimes.of(&worker.def).reconcile(worker).await;
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not list workers to reconcile"),
    }
}

/// Starts the loops; abort the handles to stop them.
pub fn start(
    processor: Arc<Processor>,
    runtimes: Arc<Runtimes>,
    health_interval: Duration,
    keep_logs: Duration,
    keep_events: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    let retries = {
        let processor = processor.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RETRY_SCAN);
            let mut notices = processor.store.task_notices();
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = notified(&mut notices) => {}
                }
                if let Err(err) = processor.dispatcher.queue_due().await {
                    tracing::warn!(error = %err, "could not scan for due tasks");
                }
            }
        })
    };
    // Tasks whose daemon died while sending them (this one's own are taken back at start), or
    // before it could send them.
    let leases = {
        let dispatcher = processor.dispatcher.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(dispatcher.lease_sweep());
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if let Err(err) = dispatcher.release_leases(false).await {
                    tracing::warn!(error = %err, "could not release ended leases");
                }
                if let Err(err) = dispatcher.adopt_unclaimed().await {
                    tracing::warn!(error = %err, "could not look for unclaimed tasks");
                }
            }
        })
    };
    // Reconciliation first, so a worker whose container died is put in error before the
    // monitor probes it.
    let health = {
        let processor = processor.clone();
        let states = WorkerStates::new(processor.store.clone(), processor.redactor.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(health_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                reconcile(&processor.workers, &runtimes).await;
                monitor::recover_workers(&states, &processor.workers, &runtimes).await;
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
    vec![retries, leases, health, stale, retention]
}
