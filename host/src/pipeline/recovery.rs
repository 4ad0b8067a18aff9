//! Recovery: whatever a crash or a failed step interrupted is picked up again.
//!
//! At start: tasks this daemon had `dispatched` when it died may or may not have reached their
//! worker: their leases are taken back, the attempt is counted and they are sent again (or
//! dead-lettered when that was their last attempt); tasks other daemons hold keep their leases.
//! New pending tasks are queued; pending retries wait for their time. Events still `received` were acknowledged but never matched: they are matched now
//! (task creation is idempotent per (event, worker), so each missing task is made once).
//! Events `dispatched` whose tasks all ended are moved to their final state.
//!
//! While running, [`process_stale`] catches events whose processing failed after the
//! acknowledgement, so they do not wait for the next start.

use std::sync::Arc;
use std::time::Duration;

use super::dispatch::Dispatcher;
use super::finish::finish_event;
use super::process::Processor;
use crate::metrics::Counter;
use crate::store::{self, EventFilter, EventState, timestamp};

/// What recovery found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub events: usize,
    pub tasks: usize,
}

pub async fn recover(
    processor: &Arc<Processor>,
    dispatcher: &Dispatcher,
) -> Result<Recovered, store::Error> {
    let store = &processor.store;
    let mut recovered = Recovered {
        tasks: dispatcher.release_leases(true).await?,
        ..Recovered::default()
    };
    for task in store.pending_tasks().await? {
        // A pending retry: the retry scan sends it when its time comes.
        if task.next_retry_at.is_none() {
            recovered.tasks += 1;
            dispatcher.enqueue_for(task.id, &task.worker_name);
        }
    }
    processor
        .metrics
        .add(Counter::TasksRecovered, recovered.tasks as u64);
    recovered.events = process_stale(processor, Duration::ZERO).await?;
    for event in list(processor, EventState::Dispatched).await? {
        finish_event(store.as_ref(), &event.id).await?;
    }
    Ok(recovered)
}

/// Matches events that have been `received` for longer than `age`; returns how many.
pub async fn process_stale(
    processor: &Arc<Processor>,
    age: Duration,
) -> Result<usize, store::Error> {
    let cutoff = timestamp::now() - i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
    let mut processed = 0;
    for event in list(processor, EventState::Received).await? {
        if event.created_at <= cutoff {
            processor.process(&event).await?;
            processed += 1;
        }
    }
    Ok(processed)
}

async fn list(
    processor: &Processor,
    state: EventState,
) -> Result<Vec<store::EventRecord>, store::Error> {
    processor
        .store
        .list(EventFilter {
            state: Some(state),
            limit: store::MAX_LIST_LIMIT,
            ..EventFilter::default()
        })
        .await
}
