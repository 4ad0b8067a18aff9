//! A task's moves after its creation, and the queries of the loops that drive them.
//!
//! Every move is one guarded `UPDATE … WHERE state = …` (reference 6.1): if the task is not where
//! the move starts, nothing changes and the caller gets [`Error::InvalidTaskTransition`], so two
//! dispatchers (or a dispatcher and an operator) can never both act on one task. A task is
//! claimed with a [`Lease`] before it is sent; the moves that end a dispatch are taken only by the
//! lease's holder, and a lease that runs out is [`release`]d by whichever daemon sweeps first.
//! The retry loop reads [`due`] tasks, crash recovery reads [`pending`] ones (reference 6.4,
//! 6.5).

use std::path::Path;

use rusqlite::{Connection, params};

use super::error::query_error;
use super::task_record::{COLUMNS, Lease, TaskRecord, decode};
use super::{Error, TaskId, TaskState, WriteBack, WriteBackState, timestamp};

/// A move of a task from one state to another, as [`super::TaskStore::change_task`] applies
/// it.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskChange {
    /// The lease of a `dispatched` task pushed to `lease.until`, by its holder only.
    Renew { lease: Lease },
    /// `dispatched` → `completed` with the worker's answer, stamping `completed_at`; by the
    /// lease's holder.
    Complete { result: String, holder: String },
    /// `pending` → `failed` (`holder` `None`: the task could not be sent at all), or
    /// `dispatched` → `failed` by the lease's holder; for good unless an operator retries it.
    Fail {
        error: String,
        holder: Option<String>,
    },
    /// `dispatched` → `pending` by the lease's holder, not to be sent before `next_retry_at`:
    /// one more failed attempt when `counted`, or none when the worker only asked to wait (it
    /// was busy).
    Retry {
        next_retry_at: i64,
        error: String,
        counted: bool,
        holder: String,
    },
    /// `failed` → `pending`, as new: attempts, retry time and error cleared (`mecha tasks retry`).
    Requeue,
    /// The write-back of a completed task: a try's outcome, or an operator's retry of a failed
    /// one. The task stays `completed`.
    WriteBack(WriteBackChange),
}

/// A move of a completed task's write-back.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteBackChange {
    /// How a try went: `pending` → `done`, `failed`, or `pending` again to retry.
    Outcome(WriteBack),
    /// `failed` → `pending`, as new: an operator's retry.
    Requeue,
}

/// What a write-back change sets: the state it moves to, the state it moves from, when the
/// next try is due, the error, the policies' decision (`None` keeps the stored one) and how many
/// attempts it counts.
type WriteBackColumns<'a> = (
    WriteBackState,
    WriteBackState,
    Option<i64>,
    &'a str,
    Option<&'a String>,
    u32,
);

impl WriteBackChange {
    /// The columns the change sets, for either backend's guarded update.
    pub(super) fn columns(&self) -> WriteBackColumns<'_> {
        match self {
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
        }
    }
}

impl TaskChange {
    /// The state the task is in after the move.
    pub(super) fn to(&self) -> TaskState {
        match self {
            TaskChange::Renew { .. } => TaskState::Dispatched,
            TaskChange::Complete { .. } => TaskState::Completed,
            TaskChange::Fail { .. } => TaskState::Failed,
            TaskChange::Retry { .. } | TaskChange::Requeue => TaskState::Pending,
            TaskChange::WriteBack(_) => TaskState::Completed,
        }
    }
}

/// `pending` → `dispatched` under `lease`, stamping `dispatched_at`, if the task is pending and
/// due (a deferred task is not claimed before its time, whoever queued it); the task as claimed.
/// Only one claimant of a task can succeed: the others get [`Error::InvalidTaskTransition`].
pub(super) fn claim(
    connection: &Connection,
    path: &Path,
    id: TaskId,
    lease: &Lease,
    now: i64,
) -> Result<TaskRecord, Error> {
    let claimed = connection
        .prepare_cached(&format!(
            "UPDATE tasks SET state = ?2, dispatched_at = ?3, updated_at = ?3, \
                              lease_owner = ?4, lease_until = ?5 \
             WHERE id = ?1 AND state = ?6 AND coalesce(next_retry_at, 0) <= ?7 \
             RETURNING {COLUMNS}"
        ))
        .and_then(|mut statement| {
            let mut rows = statement.query_map(
                params![
                    id,
                    TaskState::Dispatched,
                    now,
                    lease.owner,
                    lease.until,
                    TaskState::Pending,
                    timestamp::now_ms()
                ],
                decode,
            )?;
            rows.next().transpose()
        })
        .map_err(query_error(path, "claiming a task"))?;
    claimed.ok_or(Error::InvalidTaskTransition {
        id,
        to: TaskState::Dispatched,
    })
}

/// Why a released task is sent again: its daemon stopped or lost its lease while the worker had it.
pub(super) const RELEASED: &str =
    "the daemon sending this task stopped, or lost its lease, while the task was in flight";

/// Releases every `dispatched` task whose lease ended before `now_ms`, or that `reclaim` holds
/// (this daemon's own leases from before a restart), or that has no lease (dispatched by an
/// older mecha): each counts an attempt and is due again at once, or is failed when that was its
/// last attempt. Each statement rechecks the lease, so a lease renewed since it was read is
/// left alone. The tasks as released.
pub(super) fn release(
    connection: &Connection,
    path: &Path,
    now_ms: i64,
    reclaim: Option<&str>,
    now: i64,
) -> Result<Vec<TaskRecord>, Error> {
    let released = connection
        .prepare_cached(&format!(
            "UPDATE tasks SET \
                 state = CASE WHEN attempts + 1 >= max(max_retries, 1) THEN ?1 ELSE ?2 END, \
                 error = CASE WHEN attempts + 1 >= max(max_retries, 1) \
                              THEN 'retries exhausted after ' || (attempts + 1) || ' attempts: ' || ?3 \
                              ELSE ?3 END, \
                 next_retry_at = CASE WHEN attempts + 1 >= max(max_retries, 1) THEN NULL ELSE ?4 END, \
                 completed_at = CASE WHEN attempts + 1 >= max(max_retries, 1) THEN ?5 ELSE NULL END, \
                 attempts = attempts + 1, lease_owner = NULL, lease_until = NULL, updated_at = ?5 \
             WHERE state = ?6 \
               AND (lease_until IS NULL OR lease_until < ?4 OR lease_owner = ?7) \
             RETURNING {COLUMNS}"
        ))
        .and_then(|mut statement| {
            let rows = statement.query_map(
                params![
                    TaskState::Failed,
                    TaskState::Pending,
                    RELEASED,
                    now_ms,
                    now,
                    TaskState::Dispatched,
                    reclaim
                ],
                decode,
            )?;
            rows.collect()
        })
        .map_err(query_error(path, "releasing ended leases"))?;
    if let Some(owner) = reclaim {
        connection
            .prepare_cached(
                "UPDATE tasks SET write_back_next_at = ?1, lease_owner = NULL, lease_until = NULL \
                 WHERE state = ?2 AND write_back = ?3 AND lease_owner = ?4",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    now_ms,
                    TaskState::Completed,
                    WriteBackState::Pending,
                    owner
                ])
            })
            .map_err(query_error(path, "releasing claimed write-backs"))?;
    }
    Ok(released)
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
    // Each statement binds the task (?1) and its new state (?2) first, then (but for a
    // renewal) now (?3). Leaving `dispatched` ends the lease.
    let changed = match &change {
        TaskChange::Renew { lease } => connection
            .prepare_cached(
                "UPDATE tasks SET lease_until = ?3 WHERE id = ?1 AND state = ?2 AND lease_owner = ?4",
            )
            .and_then(|mut statement| {
                statement.execute(params![id, to, lease.until, lease.owner])
            }),
        // An event task's write-back becomes due with its completion, in the same statement,
        // so that a crash between the two cannot lose it.
        TaskChange::Complete { result, holder } => connection
            .prepare_cached(
                "UPDATE tasks SET state = ?2, result = ?4, error = '', next_retry_at = NULL, \
                                  completed_at = ?3, updated_at = ?3, \
                                  lease_owner = NULL, lease_until = NULL, \
                                  write_back = CASE WHEN event_id != '' THEN ?6 ELSE '' END, \
                                  write_back_next_at = ?7 \
                 WHERE id = ?1 AND state = ?5 AND lease_owner = ?8",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    to,
                    now,
                    result,
                    TaskState::Dispatched,
                    WriteBackState::Pending,
                    timestamp::now_ms(),
                    holder
                ])
            }),
        TaskChange::WriteBack(change) => write_back(connection, &id, change, now),
        TaskChange::Fail { error, holder } => {
            let from = match holder {
                Some(_) => TaskState::Dispatched,
                None => TaskState::Pending,
            };
            connection
                .prepare_cached(
                    "UPDATE tasks SET state = ?2, error = ?4, next_retry_at = NULL, \
                                      completed_at = ?3, updated_at = ?3, \
                                      lease_owner = NULL, lease_until = NULL \
                     WHERE id = ?1 AND state = ?5 AND lease_owner IS ?6",
                )
                .and_then(|mut statement| {
                    statement.execute(params![id, to, now, error, from, holder])
                })
        }
        TaskChange::Retry {
            next_retry_at,
            error,
            counted,
            holder,
        } => connection
            .prepare_cached(
                "UPDATE tasks SET state = ?2, error = ?4, next_retry_at = ?5, \
                                  attempts = attempts + ?7, updated_at = ?3, \
                                  lease_owner = NULL, lease_until = NULL \
                 WHERE id = ?1 AND state = ?6 AND lease_owner = ?8",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    to,
                    now,
                    error,
                    next_retry_at,
                    TaskState::Dispatched,
                    u32::from(*counted),
                    holder
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
    let (to, from, next_at, error, decision, attempt) = change.columns();
    let reset = matches!(change, WriteBackChange::Requeue);
    connection
        .prepare_cached(
            "UPDATE tasks SET write_back = ?2, write_back_next_at = ?3, write_back_error = ?4, \
                              decision = coalesce(?5, decision), updated_at = ?6, \
                              lease_owner = NULL, lease_until = NULL, \
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

/// Takes up to `limit` pending write-backs due at `now`, earliest first, under `lease`: their
/// due time moves to the lease's end. The tasks as claimed.
pub(super) fn claim_write_backs(
    connection: &Connection,
    path: &Path,
    lease: &Lease,
    now: i64,
    limit: u32,
) -> Result<Vec<TaskRecord>, Error> {
    connection
        .prepare_cached(&format!(
            "UPDATE tasks SET write_back_next_at = ?1, lease_owner = ?2, lease_until = ?1 \
             WHERE id IN ( \
                 SELECT id FROM tasks \
                 WHERE write_back = ?3 AND state = ?4 AND coalesce(write_back_next_at, 0) <= ?5 \
                 ORDER BY write_back_next_at, rowid LIMIT ?6) \
             RETURNING {COLUMNS}"
        ))
        .and_then(|mut statement| {
            let rows = statement.query_map(
                params![
                    lease.until,
                    lease.owner,
                    WriteBackState::Pending,
                    TaskState::Completed,
                    now,
                    limit
                ],
                decode,
            )?;
            rows.collect()
        })
        .map_err(query_error(path, "claiming due write-backs"))
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

/// Every pending task, oldest first: what a restart must queue again. Dispatched tasks are
/// held by their leases until they end or are [`release`]d.
pub(super) fn pending(connection: &Connection) -> rusqlite::Result<Vec<TaskRecord>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE state = ?1 ORDER BY created_at, rowid"
    ))?;
    let rows = statement.query_map(params![TaskState::Pending], decode)?;
    rows.collect()
}

/// Pending tasks never tried and created before `created_before`, oldest first, at most
/// `limit`.
pub(super) fn unclaimed(
    connection: &Connection,
    created_before: i64,
    limit: u32,
) -> rusqlite::Result<Vec<TaskRecord>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks \
         WHERE state = ?1 AND next_retry_at IS NULL AND created_at < ?2 \
         ORDER BY created_at, rowid LIMIT ?3"
    ))?;
    let rows = statement.query_map(params![TaskState::Pending, created_before, limit], decode)?;
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

    use super::*;
    use crate::store::sqlite::migrations::migrated_database as database;
    use crate::store::task_record::{CreateTaskOutcome, NewTask};
    use crate::store::tasks::{self, get};
    use crate::store::{Durability, EventId, SqliteStore, TaskStore};

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

    const HOLDER: &str = "here/0123456789abcdef";

    fn open_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap();
        (dir, store)
    }

    /// A new pending task posted directly (no event) for `reviewer`.
    async fn direct_task(store: &SqliteStore, max_retries: u32) -> TaskRecord {
        let task = NewTask {
            worker_name: "reviewer".into(),
            max_retries,
            ..NewTask::default()
        };
        match store.create_task(task).await.unwrap() {
            CreateTaskOutcome::Created(task) => task,
            CreateTaskOutcome::Duplicate { .. } => panic!("a direct task is never a duplicate"),
        }
    }

    /// A lease of [`HOLDER`] that does not run out.
    fn lease() -> Lease {
        Lease {
            owner: HOLDER.into(),
            until: i64::MAX,
        }
    }

    fn ids(tasks: Vec<TaskRecord>) -> Vec<TaskId> {
        tasks.into_iter().map(|task| task.id).collect()
    }

    /// The write-backs due at `now`, claimed for a try that ends at once (so that they stay
    /// due for the next look).
    fn due_write_backs(connection: &Connection, path: &Path, now: i64) -> Vec<TaskRecord> {
        let lease = Lease {
            owner: HOLDER.into(),
            until: 0,
        };
        claim_write_backs(connection, path, &lease, now, 10).unwrap()
    }

    #[test]
    fn a_write_back_is_due_with_its_completion_and_moves_only_from_pending() {
        let (_dir, path, connection) = database();
        let id = create(&connection, &path, "reviewer", 10);
        claim(&connection, &path, id.clone(), &lease(), 11).unwrap();
        assert!(due_write_backs(&connection, &path, i64::MAX).is_empty());
        let complete = TaskChange::Complete {
            result: "{}".into(),
            holder: HOLDER.into(),
        };
        apply(&connection, &path, id.clone(), complete, 12).unwrap();
        assert_eq!(read(&connection, &id).write_back, WriteBackState::Pending);
        assert_eq!(
            ids(due_write_backs(&connection, &path, i64::MAX)),
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
            due_write_backs(&connection, &path, 1_000).is_empty(),
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
        let (_dir, store) = open_store();
        let task = direct_task(&store, 3).await;
        let id = task.id;
        let refused = |result: Result<(), Error>, expected: TaskState| match result {
            Err(Error::InvalidTaskTransition { id: refused, to }) => {
                assert_eq!((&refused, to), (&id, expected));
            }
            other => panic!("expected a refused move to {expected}, got {other:?}"),
        };

        let claim = |id: &TaskId| store.claim_task(id, lease());
        refused(
            store.complete_task(&id, HOLDER, "early".into()).await,
            TaskState::Completed,
        );
        refused(
            store.schedule_retry(&id, HOLDER, 1, "early".into()).await,
            TaskState::Pending,
        );
        refused(store.requeue_failed(&id).await, TaskState::Pending);
        let claimed = claim(&id).await.unwrap();
        assert_eq!(claimed.state, TaskState::Dispatched);
        assert_eq!(claimed.lease, Some(lease()));
        assert!(matches!(
            claim(&id).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
        let other = "there/fedcba9876543210";
        refused(
            store.complete_task(&id, other, "not mine".into()).await,
            TaskState::Completed,
        );

        store
            .schedule_retry(&id, HOLDER, 4_000_000_000, "503".into())
            .await
            .unwrap();
        let retried = store.get_task(&id).await.unwrap().unwrap();
        assert_eq!(retried.state, TaskState::Pending);
        assert_eq!((retried.attempts, retried.error.as_str()), (1, "503"));
        assert_eq!(retried.next_retry_at, Some(4_000_000_000));
        assert!(retried.dispatched_at.is_some());
        assert_eq!(retried.lease, None, "leaving dispatched ends the lease");

        claim(&id).await.unwrap();
        store
            .complete_task(&id, HOLDER, "done".into())
            .await
            .unwrap();
        let done = store.get_task(&id).await.unwrap().unwrap();
        assert_eq!(done.state, TaskState::Completed);
        assert_eq!((done.result.as_str(), done.error.as_str()), ("done", ""));
        assert_eq!(
            (done.attempts, done.next_retry_at, done.lease),
            (1, None, None)
        );
        assert!(done.completed_at.is_some());
        refused(
            store.complete_task(&id, HOLDER, "again".into()).await,
            TaskState::Completed,
        );
        refused(
            store.fail_task(&id, Some(HOLDER), "late".into()).await,
            TaskState::Failed,
        );
        refused(store.requeue_failed(&id).await, TaskState::Pending);

        let unknown = TaskId::generate().unwrap();
        assert!(matches!(
            claim(&unknown).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
    }

    #[tokio::test]
    async fn a_task_is_not_claimed_before_its_retry_time() {
        let (_dir, store) = open_store();
        let task = direct_task(&store, 3).await;
        store.claim_task(&task.id, lease()).await.unwrap();
        let later = timestamp::now_ms() + 3_600_000;
        store
            .defer_task(&task.id, HOLDER, later, "busy".into())
            .await
            .unwrap();
        assert!(matches!(
            store.claim_task(&task.id, lease()).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
    }

    #[tokio::test]
    async fn only_the_holder_renews_and_ended_or_reclaimed_leases_are_released() {
        let (_dir, store) = open_store();
        let mut ids = Vec::new();
        for max_retries in [3, 3, 3, 1] {
            ids.push(direct_task(&store, max_retries).await.id);
        }
        let [running, ended, mine, last] = &ids[..] else {
            unreachable!()
        };
        let now = timestamp::now_ms();
        let held = |owner: &str, until: i64| Lease {
            owner: owner.into(),
            until,
        };
        let other = "there/fedcba9876543210";
        store
            .claim_task(running, held(other, now + 60_000))
            .await
            .unwrap();
        store.claim_task(ended, held(other, now - 1)).await.unwrap();
        store
            .claim_task(mine, held(HOLDER, now + 60_000))
            .await
            .unwrap();
        store.claim_task(last, held(other, now - 1)).await.unwrap();

        assert!(matches!(
            store.renew_lease(running, held(HOLDER, now + 90_000)).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
        store
            .renew_lease(running, held(other, now + 90_000))
            .await
            .unwrap();

        // The sweep of a running daemon: only the leases that ran out.
        let released = store.release_leases(now, None).await.unwrap();
        let mut found: Vec<_> = released
            .iter()
            .map(|task| (task.id.clone(), task.state, task.attempts))
            .collect();
        found.sort_by_key(|(_, state, _)| *state == TaskState::Failed);
        assert_eq!(
            found,
            [
                (ended.clone(), TaskState::Pending, 1),
                (last.clone(), TaskState::Failed, 1)
            ]
        );
        let failed = released.iter().find(|task| &task.id == last).unwrap();
        assert_eq!(
            failed.error,
            format!("retries exhausted after 1 attempts: {RELEASED}")
        );
        let again = released.iter().find(|task| &task.id == ended).unwrap();
        assert_eq!(
            (again.next_retry_at, again.lease.clone()),
            (Some(now), None)
        );
        // Released means due at once, and the old holder can no longer record an answer.
        refused_by(store.complete_task(ended, other, "late".into()).await);
        store.claim_task(ended, lease()).await.unwrap();

        // A restarted daemon takes back its own leases; another's running one stays.
        let reclaimed = store
            .release_leases(now, Some(HOLDER.into()))
            .await
            .unwrap();
        let mut reclaimed: Vec<String> = reclaimed.iter().map(|task| task.id.to_string()).collect();
        reclaimed.sort();
        let mut expected = vec![ended.to_string(), mine.to_string()];
        expected.sort();
        assert_eq!(reclaimed, expected);
        let running = store.get_task(running).await.unwrap().unwrap();
        assert_eq!(running.lease, Some(held(other, now + 90_000)));
    }

    fn refused_by(result: Result<(), Error>) {
        assert!(
            matches!(result, Err(Error::InvalidTaskTransition { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn failing_works_from_pending_and_dispatched_and_requeue_starts_afresh() {
        let (_dir, path, connection) = database();
        let pending = create(&connection, &path, "a", 1);
        let dispatched = create(&connection, &path, "b", 1);
        claim(&connection, &path, dispatched.clone(), &lease(), 2).unwrap();
        for id in [&pending, &dispatched] {
            let fail = TaskChange::Fail {
                error: "worker not found".into(),
                holder: (id == &dispatched).then(|| HOLDER.to_owned()),
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
            holder: HOLDER.into(),
        };
        claim(&connection, &path, dispatched.clone(), &lease(), 4).unwrap_err();
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
            claim(&connection, &path, id.clone(), &lease(), 2).unwrap();
            let change = TaskChange::Retry {
                next_retry_at: 10,
                error: "429".into(),
                counted,
                holder: HOLDER.into(),
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
        claim(&connection, &path, retried.clone(), &lease(), 210).unwrap();
        let retry = TaskChange::Retry {
            next_retry_at: 500,
            error: "503".into(),
            counted: true,
            holder: HOLDER.into(),
        };
        apply(&connection, &path, retried.clone(), retry, 470).unwrap();
        claim(&connection, &path, done.clone(), &lease(), 60).unwrap();

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
            holder: HOLDER.into(),
        };
        claim(&connection, &path, old.clone(), &lease(), 110).unwrap();
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

        // A restart queues what is pending; dispatched tasks are held by their leases.
        assert_eq!(ids(pending(&connection).unwrap()), [old, retried, new]);
        let complete = TaskChange::Complete {
            result: "ok".into(),
            holder: HOLDER.into(),
        };
        apply(&connection, &path, done, complete, 70).unwrap();
        assert_eq!(pending(&connection).unwrap().len(), 3);
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
        store.claim_task(&task.id, lease()).await.unwrap();
        store
            .complete_task(&task.id, HOLDER, String::new())
            .await
            .unwrap();
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
        assert!(store.pending_tasks().await.unwrap().is_empty());
    }
}
