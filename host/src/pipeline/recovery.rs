//! Recovery at start: whatever a crash interrupted is picked up again.
//!
//! Events still `received` were acknowledged but never matched: they are matched now (task
//! creation is idempotent per (event, worker), so an event half-processed before the crash
//! gets each missing task once). Tasks `dispatched` when the daemon died may or may not have
//! reached their worker: they are counted as an attempt and retried. Pending tasks are queued.

use std::sync::Arc;

use super::dispatch::Dispatcher;
use super::process::Processor;
use crate::metrics::Counter;
use crate::store::{self, EventFilter, EventState, TaskState, timestamp};

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
    let mut recovered = Recovered::default();
    for task in store.unfinished_tasks().await? {
        if task.state == TaskState::Dispatched {
            store
                .schedule_retry(
                    &task.id,
                    timestamp::now_ms(),
                    "the daemon stopped while this task was in flight".to_owned(),
                )
                .await?;
        }
        dispatcher.enqueue_for(task.id, &task.worker_name);
        recovered.tasks += 1;
    }
    processor
        .metrics
        .add(Counter::TasksRecovered, recovered.tasks as u64);
    loop {
        let stuck = store
            .list(EventFilter {
                state: Some(EventState::Received),
                source: None,
                limit: store::MAX_LIST_LIMIT,
            })
            .await?;
        if stuck.is_empty() {
            break;
        }
        for event in &stuck {
            processor.process(event).await?;
            recovered.events += 1;
        }
    }
    Ok(recovered)
}
