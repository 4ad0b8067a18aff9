//! A task's moves after its creation, and the queries of the loops that drive them.
//!
//! Every move is one guarded `UPDATE … WHERE state = …` (reference 6.1): if the task is not where
//! the move starts, nothing changes and the caller gets [`Error::InvalidTaskTransition`], so two
//! dispatchers (or a dispatcher and an operator) can never both act on one task. The retry loop
//! reads [`due`] tasks, crash recovery reads [`unfinished`] ones (reference 6.4, 6.5).

use std::path::Path;

use rusqlite::{Connection, params};

use super::error::query_error;
use super::task_record::{COLUMNS, TaskRecord, decode};
use super::{Error, TaskId, TaskState, WriteBack, WriteBackState, timestamp};

/// A move of a task from one state to another.
pub(super) enum TaskChange {
    /// `pending` → `dispatched`, stamping `dispatched_at`.
    Dispatch,
    /// `dispatched` → `completed` with the worker's answer, stamping `completed_at`.
    Complete { result: String },
    /// `pending` or `dispatched` → `failed`, for good unless an operator retries it.
    Fail { error: String },
    /// `dispatched` → `pending`, not to be sent before `next_retry_at`: one more failed attempt
    /// when `counted`, or none when the worker only asked to wait (it was busy).
    Retry {
        next_retry_at: i64,
        error: String,
        counted: bool,
    },
    /// `failed` → `pending`, as new: attempts, retry time and error cleared (`mecha tasks retry`).
    Requeue,
    /// The write-back of a completed task: a try's outcome, or an operator's retry of a failed
    /// one. The task stays `completed`.
    WriteBack(WriteBackChange),
}

/// A move of a completed task's write-back.
pub(super) enum WriteBackChange {
    Outcome(WriteBack),
    Requeue,
}

impl TaskChange {
    /// The state the task is in after the move.
    fn to(&self) -> TaskState {
        match self {
            TaskChange::Dispatch => TaskState::Dispatched,
            TaskChange::Complete { .. } => TaskState::Completed,
            TaskChange::Fail { .. } => TaskState::Failed,
            TaskChange::Retry { .. } | TaskChange::Requeue => TaskState::Pending,
            TaskChange::WriteBack(_) => TaskState::Completed,
        }
    }
}

/// Applies `change` to task `id` at `now`, if the task is in a state the change starts from.
pub(super) fn apply(
    connection: &Connection,
    path: &Path,
    id: TaskId,
    change: TaskChange,
    now: i64,
) -> Result<(), Error> {
    let to = change.to();
    // Each statement binds the task (?1), its new state (?2) and now (?3) first.
    let changed = match &change {
        TaskChange::Dispatch => connection
            .prepare_cached(
                "UPDATE tasks SET state = ?2, dispatched_at = ?3, updated_at = ?3 \
                 WHERE id = ?1 AND state = ?4",
            )
            .and_then(|mut statement| statement.execute(params![id, to, now, TaskState::Pending])),
        // An event task's write-back becomes due with its completion, in the same statement,
        // so that a crash between the two cannot lose it.
        TaskChange::Complete { result } => connection
            .prepare_cached(
                "UPDATE tasks SET state = ?2, result = ?4, error = '', next_retry_at = NULL, \
                                  completed_at = ?3, updated_at = ?3, \
                                  write_back = CASE WHEN event_id != '' THEN ?6 ELSE '' END, \
                                  write_back_next_at = ?7 \
                 WHERE id = ?1 AND state = ?5",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    to,
                    now,
                    result,
                    TaskState::Dispatched,
                    WriteBackState::Pending,
                    timestamp::now_ms()
                ])
            }),
        TaskChange::WriteBack(change) => write_back(connection, &id, change, now),
        TaskChange::Fail { error } => connection
            .prepare_cached(
                "UPDATE tasks SET state = ?2, error = ?4, next_retry_at = NULL, \
                                  completed_at = ?3, updated_at = ?3 \
                 WHERE id = ?1 AND state IN (?5, ?6)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    to,
                    now,
                    error,
                    TaskState::Pending,
                    TaskState::Dispatched
                ])
            }),
        TaskChange::Retry {
            next_retry_at,
            error,
            counted,
        } => connection
            .prepare_cached(
                "UPDATE tasks SET state = ?2, error = ?4, next_retry_at = ?5, \
                                  attempts = attempts + ?7, updated_at = ?3 \
                 WHERE id = ?1 AND state = ?6",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    to,
                    now,
                    error,
                    next_retry_at,
                    TaskState::Dispatched,
                    u32::from(*counted)
                ])
            }),
        TaskChange::Requeue => connection
            .prepare_cached(
                "UPDATE tasks SET state = ?2, attempts = 0, next_retry_at = ?5, error = '', \
                                  completed_at = NULL, updated_at = ?3 \
                 WHERE id = ?1 AND state = ?4",
            )
            .and_then(|mut statement| {
                // Due at once: the retry scan picks it up, in this daemon or a running one.
                statement.execute(params![id, to, now, TaskState::Failed, timestamp::now_ms()])
            }),
    }
    .map_err(query_error(path, "changing a task's state"))?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::InvalidTaskTransition { id, to })
    }
}

/// Applies a write-back change to completed task `id`; returns the rows changed.
fn write_back(
    connection: &Connection,
    id: &TaskId,
    change: &WriteBackChange,
    now: i64,
) -> rusqlite::Result<usize> {
    let (to, from, next_at, error, decision, attempt) = match change {
        WriteBackChange::Outcome(WriteBack::Done { decision }) => (
            WriteBackState::Done,
            WriteBackState::Pending,
            None,
            "",
            Some(decision),
            0,
        ),
        WriteBackChange::Outcome(WriteBack::Retry {
            decision,
            next_at,
            error,
        }) => (
            WriteBackState::Pending,
            WriteBackState::Pending,
            Some(*next_at),
            error.as_str(),
            Some(decision),
            1,
        ),
        WriteBackChange::Outcome(WriteBack::Failed { decision, error }) => (
            WriteBackState::Failed,
            WriteBackState::Pending,
            None,
            error.as_str(),
            Some(decision),
            1,
        ),
        WriteBackChange::Requeue => (
            WriteBackState::Pending,
            WriteBackState::Failed,
            Some(timestamp::now_ms()),
            "",
            None,
            0,
        ),
    };
    let reset = matches!(change, WriteBackChange::Requeue);
    connection
        .prepare_cached(
            "UPDATE tasks SET write_back = ?2, write_back_next_at = ?3, write_back_error = ?4, \
                              decision = coalesce(?5, decision), updated_at = ?6, \
                              write_back_attempts = CASE WHEN ?9 THEN 0 \
                                                         ELSE write_back_attempts + ?7 END \
             WHERE id = ?1 AND state = ?10 AND write_back = ?8",
        )?
        .execute(params![
            id,
            to,
            next_at,
            error,
            decision,
            now,
            attempt,
            from,
            reset,
            TaskState::Completed
        ])
}

/// Completed tasks whose write-back is pending and due by `now`, earliest first.
pub(super) fn due_write_backs(
    connection: &Connection,
    now: i64,
    limit: u32,
) -> rusqlite::Result<Vec<TaskRecord>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks \
         WHERE write_back = ?1 AND coalesce(write_back_next_at, 0) <= ?2 \
         ORDER BY write_back_next_at, rowid LIMIT ?3"
    ))?;
    let rows = statement.query_map(params![WriteBackState::Pending, now, limit], decode)?;
    rows.collect()
}

/// Pending tasks whose retry time has come by `now`, earliest first, at most `limit`. Tasks
/// without a retry time are new: they are queued when created (or by recovery) and never
/// crowd this scan, however many a worker holds.
pub(super) fn due(
    connection: &Connection,
    now: i64,
    limit: u32,
) -> rusqlite::Result<Vec<TaskRecord>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks \
         WHERE state = ?1 AND next_retry_at IS NOT NULL AND next_retry_at <= ?2 \
         ORDER BY next_retry_at, rowid LIMIT ?3"
    ))?;
    let rows = statement.query_map(params![TaskState::Pending, now, limit], decode)?;
    rows.collect()
}

/// Every pending or dispatched task, oldest first: what a restart must pick up again.
pub(super) fn unfinished(connection: &Connection) -> rusqlite::Result<Vec<TaskRecord>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE state IN (?1, ?2) ORDER BY created_at, rowid"
    ))?;
    let rows = statement.query_map(params![TaskState::Pending, TaskState::Dispatched], decode)?;
    rows.collect()
}

/// Whether the task with dedup key `key` (`<event_id>:<worker_name>`) has completed.
pub(super) fn completed_exists(connection: &Connection, key: &str) -> rusqlite::Result<bool> {
    connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM tasks \
                            WHERE dedup_key = ?1 AND dedup_key != '' AND state = ?2)",
        )?
        .query_row(params![key, TaskState::Completed], |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::store::migrations::migrate;
    use crate::store::task_record::{CreateTaskOutcome, NewTask};
    use crate::store::tasks::{self, get};
    use crate::store::{Durability, EventId, SqliteStore, TaskStore};

    fn database() -> (tempfile::TempDir, PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mecha.db");
        let mut connection = Connection::open(&path).unwrap();
        migrate(&mut connection, &path).unwrap();
        (dir, path, connection)
    }

    fn create(connection: &Connection, path: &Path, worker: &str, now: i64) -> TaskId {
        let task = NewTask {
            worker_name: worker.into(),
            event_id: Some(EventId::generate().unwrap()),
            ..NewTask::default()
        };
        match tasks::create(connection, path, task, now).unwrap() {
            CreateTaskOutcome::Created(record) => record.id,
            CreateTaskOutcome::Duplicate { existing } => {
                panic!("unexpected duplicate of {existing}")
            }
        }
    }

    fn read(connection: &Connection, id: &TaskId) -> TaskRecord {
        get(connection, id).unwrap().unwrap()
    }

    fn ids(tasks: Vec<TaskRecord>) -> Vec<TaskId> {
        tasks.into_iter().map(|task| task.id).collect()
    }

    #[test]
    fn a_write_back_is_due_with_its_completion_and_moves_only_from_pending() {
        let (_dir, path, connection) = database();
        let id = create(&connection, &path, "reviewer", 10);
        apply(&connection, &path, id.clone(), TaskChange::Dispatch, 11).unwrap();
        assert!(
            due_write_backs(&connection, i64::MAX, 10)
                .unwrap()
                .is_empty()
        );
        let complete = TaskChange::Complete {
            result: "{}".into(),
        };
        apply(&connection, &path, id.clone(), complete, 12).unwrap();
        assert_eq!(read(&connection, &id).write_back, WriteBackState::Pending);
        assert_eq!(
            ids(due_write_backs(&connection, i64::MAX, 10).unwrap()),
            std::slice::from_ref(&id)
        );

        let outcome = |change: WriteBack| TaskChange::WriteBack(WriteBackChange::Outcome(change));
        let retry = WriteBack::Retry {
            decision: r#"{"allowed":[]}"#.into(),
            next_at: i64::MAX - 1,
            error: "github: 502".into(),
        };
        apply(&connection, &path, id.clone(), outcome(retry), 13).unwrap();
        let task = read(&connection, &id);
        assert_eq!(
            (task.write_back_attempts, task.write_back_error.as_str()),
            (1, "github: 502")
        );
        assert!(
            due_write_backs(&connection, 1_000, 10).unwrap().is_empty(),
            "not due before its retry time"
        );
        let failed = WriteBack::Failed {
            decision: r#"{"allowed":[]}"#.into(),
            error: "github: 404".into(),
        };
        apply(&connection, &path, id.clone(), outcome(failed.clone()), 14).unwrap();
        assert_eq!(read(&connection, &id).write_back, WriteBackState::Failed);
        assert!(matches!(
            apply(&connection, &path, id.clone(), outcome(failed), 15),
            Err(Error::InvalidTaskTransition { .. })
        ));
        let requeue = || TaskChange::WriteBack(WriteBackChange::Requeue);
        apply(&connection, &path, id.clone(), requeue(), 16).unwrap();
        let task = read(&connection, &id);
        assert_eq!(
            (task.write_back, task.write_back_attempts),
            (WriteBackState::Pending, 0)
        );
        assert_eq!(task.decision, r#"{"allowed":[]}"#, "the decision is kept");
        assert!(matches!(
            apply(&connection, &path, id.clone(), requeue(), 17),
            Err(Error::InvalidTaskTransition { .. })
        ));
        let done = WriteBack::Done {
            decision: r#"{"allowed":[1]}"#.into(),
        };
        apply(&connection, &path, id.clone(), outcome(done), 18).unwrap();
        let task = read(&connection, &id);
        assert_eq!(task.write_back, WriteBackState::Done);
        assert_eq!(task.decision, r#"{"allowed":[1]}"#);
    }

    #[tokio::test]
    async fn each_move_happens_once_and_only_from_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap();
        let task = NewTask {
            worker_name: "reviewer".into(),
            ..NewTask::default()
        };
        let CreateTaskOutcome::Created(task) = store.create_task(task).await.unwrap() else {
            panic!("a direct task is never a duplicate");
        };
        let id = task.id;
        let refused = |result: Result<(), Error>, expected: TaskState| match result {
            Err(Error::InvalidTaskTransition { id: refused, to }) => {
                assert_eq!((&refused, to), (&id, expected));
            }
            other => panic!("expected a refused move to {expected}, got {other:?}"),
        };

        refused(
            store.complete_task(&id, "early".into()).await,
            TaskState::Completed,
        );
        refused(
            store.schedule_retry(&id, 1, "early".into()).await,
            TaskState::Pending,
        );
        refused(store.requeue_failed(&id).await, TaskState::Pending);
        store.mark_dispatched(&id).await.unwrap();
        refused(store.mark_dispatched(&id).await, TaskState::Dispatched);

        store
            .schedule_retry(&id, 4_000_000_000, "503".into())
            .await
            .unwrap();
        let retried = store.get_task(&id).await.unwrap().unwrap();
        assert_eq!(retried.state, TaskState::Pending);
        assert_eq!((retried.attempts, retried.error.as_str()), (1, "503"));
        assert_eq!(retried.next_retry_at, Some(4_000_000_000));
        assert!(retried.dispatched_at.is_some());

        store.mark_dispatched(&id).await.unwrap();
        store.complete_task(&id, "done".into()).await.unwrap();
        let done = store.get_task(&id).await.unwrap().unwrap();
        assert_eq!(done.state, TaskState::Completed);
        assert_eq!((done.result.as_str(), done.error.as_str()), ("done", ""));
        assert_eq!((done.attempts, done.next_retry_at), (1, None));
        assert!(done.completed_at.is_some());
        refused(
            store.complete_task(&id, "again".into()).await,
            TaskState::Completed,
        );
        refused(store.fail_task(&id, "late".into()).await, TaskState::Failed);
        refused(store.requeue_failed(&id).await, TaskState::Pending);

        let unknown = TaskId::generate().unwrap();
        assert!(matches!(
            store.mark_dispatched(&unknown).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
    }

    #[test]
    fn failing_works_from_pending_and_dispatched_and_requeue_starts_afresh() {
        let (_dir, path, connection) = database();
        let pending = create(&connection, &path, "a", 1);
        let dispatched = create(&connection, &path, "b", 1);
        apply(
            &connection,
            &path,
            dispatched.clone(),
            TaskChange::Dispatch,
            2,
        )
        .unwrap();
        for id in [&pending, &dispatched] {
            let fail = TaskChange::Fail {
                error: "worker not found".into(),
            };
            apply(&connection, &path, id.clone(), fail, 3).unwrap();
            let failed = read(&connection, id);
            assert_eq!(failed.state, TaskState::Failed);
            assert_eq!(failed.error, "worker not found");
            assert_eq!(failed.completed_at, Some(3));
        }

        let retry = TaskChange::Retry {
            next_retry_at: 10,
            error: "503".into(),
            counted: true,
        };
        apply(
            &connection,
            &path,
            dispatched.clone(),
            TaskChange::Dispatch,
            4,
        )
        .unwrap_err();
        apply(&connection, &path, dispatched.clone(), retry, 4).unwrap_err();
        apply(
            &connection,
            &path,
            dispatched.clone(),
            TaskChange::Requeue,
            5,
        )
        .unwrap();
        let requeued = read(&connection, &dispatched);
        assert_eq!(requeued.state, TaskState::Pending);
        assert_eq!(requeued.attempts, 0);
        assert!(
            requeued.next_retry_at.is_some(),
            "due at once, for the retry scan"
        );
        assert_eq!((requeued.error.as_str(), requeued.completed_at), ("", None));
        assert_eq!(requeued.updated_at, 5);
    }

    #[test]
    fn a_busy_worker_defers_a_task_without_using_an_attempt() {
        let (_dir, path, connection) = database();
        let id = create(&connection, &path, "a", 1);
        for (counted, attempts) in [(false, 0), (true, 1), (false, 1)] {
            apply(&connection, &path, id.clone(), TaskChange::Dispatch, 2).unwrap();
            let change = TaskChange::Retry {
                next_retry_at: 10,
                error: "429".into(),
                counted,
            };
            apply(&connection, &path, id.clone(), change, 3).unwrap();
            let task = read(&connection, &id);
            assert_eq!((task.state, task.attempts), (TaskState::Pending, attempts));
            assert_eq!(task.next_retry_at, Some(10));
        }
    }

    #[test]
    fn due_tasks_are_pending_retries_whose_time_has_come_earliest_first() {
        let (_dir, path, connection) = database();
        let old = create(&connection, &path, "a", 100);
        let retried = create(&connection, &path, "b", 200);
        let new = create(&connection, &path, "c", 300);
        let done = create(&connection, &path, "d", 50);
        apply(
            &connection,
            &path,
            retried.clone(),
            TaskChange::Dispatch,
            210,
        )
        .unwrap();
        let retry = TaskChange::Retry {
            next_retry_at: 500,
            error: "503".into(),
            counted: true,
        };
        apply(&connection, &path, retried.clone(), retry, 470).unwrap();
        apply(&connection, &path, done.clone(), TaskChange::Dispatch, 60).unwrap();

        // New tasks (no retry time) are queued when created, never by the scan.
        assert!(due(&connection, 499, 10).unwrap().is_empty());
        assert_eq!(
            ids(due(&connection, 500, 10).unwrap()),
            std::slice::from_ref(&retried)
        );
        let second = TaskChange::Retry {
            next_retry_at: 400,
            error: "503".into(),
            counted: true,
        };
        apply(&connection, &path, old.clone(), TaskChange::Dispatch, 110).unwrap();
        apply(&connection, &path, old.clone(), second, 120).unwrap();
        assert_eq!(
            ids(due(&connection, 500, 10).unwrap()),
            [old.clone(), retried.clone()],
            "earliest retry first"
        );
        assert_eq!(
            ids(due(&connection, 500, 1).unwrap()),
            std::slice::from_ref(&old)
        );

        // Recovery sees the dispatched one too, but nothing that has ended.
        assert_eq!(
            ids(unfinished(&connection).unwrap()),
            [done.clone(), old, retried, new]
        );
        let complete = TaskChange::Complete {
            result: "ok".into(),
        };
        apply(&connection, &path, done, complete, 70).unwrap();
        assert_eq!(unfinished(&connection).unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_completed_task_is_found_by_event_and_worker() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap();
        let event_id = EventId::generate().unwrap();
        let task = NewTask {
            worker_name: "reviewer".into(),
            event_id: Some(event_id.clone()),
            ..NewTask::default()
        };
        let CreateTaskOutcome::Created(task) = store.create_task(task).await.unwrap() else {
            panic!("the first task of an event is no duplicate");
        };
        assert!(
            !store
                .completed_task_exists(&event_id, "reviewer")
                .await
                .unwrap()
        );
        store.mark_dispatched(&task.id).await.unwrap();
        store.complete_task(&task.id, String::new()).await.unwrap();
        assert!(
            store
                .completed_task_exists(&event_id, "reviewer")
                .await
                .unwrap()
        );
        assert!(
            !store
                .completed_task_exists(&event_id, "fixer")
                .await
                .unwrap()
        );
        let due = store.due_tasks(i64::MAX, 0).await.unwrap();
        assert!(due.is_empty());
        assert!(store.unfinished_tasks().await.unwrap().is_empty());
    }
}
