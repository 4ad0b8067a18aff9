//! The end of an event: once every task it started has finished, write-back included, the
//! event moves to its final state. Called by dispatch (a task failed or completed with nothing
//! to write back), by the write-backs and by recovery; its own module, so that dispatch and
//! the processing that feeds it do not depend on each other.

use crate::store::{self, EventState, Store, TaskState, WriteBackState};

/// Whether every task of an event has finished, write-back included, and how: the event's
/// final state. Each task is given as its state and its write-back's.
pub fn final_event_state(tasks: &[(TaskState, WriteBackState)]) -> Option<EventState> {
    let unfinished = |(task, write_back): &(TaskState, WriteBackState)| {
        !task.is_terminal() || *write_back == WriteBackState::Pending
    };
    if tasks.is_empty() || tasks.iter().any(unfinished) {
        return None;
    }
    if tasks
        .iter()
        .any(|(_, write_back)| *write_back == WriteBackState::Failed)
    {
        Some(EventState::WriteBackFailed)
    } else if tasks.iter().any(|(task, _)| *task == TaskState::Completed) {
        Some(EventState::Completed)
    } else {
        Some(EventState::Failed)
    }
}

/// Moves the event of a finished task to its final state once all its tasks (and their
/// write-backs) are done. An event whose write-back failed is completed once an operator's
/// retry succeeds.
pub async fn finish_event(
    store: &dyn Store,
    event_id: &store::EventId,
) -> Result<(), store::Error> {
    let states = store.task_states(event_id).await?;
    let Some(state) = final_event_state(&states) else {
        return Ok(());
    };
    for from in [EventState::Dispatched, EventState::WriteBackFailed] {
        if from == state {
            continue;
        }
        match store.transition(event_id, from, state).await {
            Ok(()) => return Ok(()),
            Err(store::Error::InvalidTransition { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_finishes_when_all_its_tasks_and_write_backs_have() {
        use TaskState::*;
        let (none, pending, done, failed) = (
            WriteBackState::None,
            WriteBackState::Pending,
            WriteBackState::Done,
            WriteBackState::Failed,
        );
        assert_eq!(final_event_state(&[]), None);
        assert_eq!(
            final_event_state(&[(Completed, done), (Pending, none)]),
            None
        );
        assert_eq!(
            final_event_state(&[(Completed, done), (Dispatched, none)]),
            None
        );
        assert_eq!(
            final_event_state(&[(Completed, pending), (Failed, none)]),
            None,
            "a write-back still to come"
        );
        assert_eq!(
            final_event_state(&[(Completed, done), (Failed, none)]),
            Some(EventState::Completed)
        );
        assert_eq!(
            final_event_state(&[(Completed, failed), (Completed, done)]),
            Some(EventState::WriteBackFailed)
        );
        assert_eq!(
            final_event_state(&[(Failed, none), (Failed, none)]),
            Some(EventState::Failed)
        );
    }
}
