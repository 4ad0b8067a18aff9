//! Group commit: the one thread that writes to the database.
//!
//! A webhook is acknowledged only once its event is on disk, and with `synchronous=FULL` every
//! commit costs an fsync. Committing each event on its own would cap ingest at the disk's fsync
//! rate, so one thread owns the write connection and commits whatever has queued up since its
//! last commit in a single transaction: under load, one fsync covers hundreds of events; when
//! idle, an event is committed as soon as it arrives (no timer, no added latency).
//!
//! Rules the loop keeps:
//! - A waiter is answered only after the transaction holding its write has committed; if the
//!   commit fails, every waiter in that batch gets the error, so nothing is acknowledged that is
//!   not on disk.
//! - Each write runs in its own savepoint, so one bad row (a constraint, say) fails alone and its
//!   batch-mates are still stored.
//! - The queue is bounded: when it is full, callers wait (off the async runtime), which pushes
//!   back on senders instead of growing memory.
//! - Closing drops the queue's sender; the thread finishes every queued write, then exits.
//! - A batch made only of writes that may skip the sync ([`Request::may_skip_sync`]: claims,
//!   lease renewals, tasks made from a stored event, audit entries) commits without waiting
//!   for the disk (`synchronous=OFF` for that commit). The next synced commit, which writes the
//!   same WAL after them, makes them durable too. A task's dispatch thereby waits for one
//!   fsync (its result) instead of three.
//!
//! The loop knows nothing of tables: which writes exist, and how each one runs, is in
//! `request.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::checkpoint::{self, RestartRequest};
use super::request::{Answer, Reply, Request};
use crate::store::error::query_error;
use crate::store::{Error, timestamp};

/// 4,096 queued writes: several seconds of a busy forge's webhooks, a few MB of bodies at most,
/// before senders are made to wait.
pub(in crate::store) const QUEUE_CAPACITY: usize = 4_096;

/// 512 writes per transaction: large enough that the fsync is shared widely, small enough that
/// the write lock is released often for other processes and a failed commit loses little work.
const MAX_BATCH: usize = 512;

/// `PRAGMA synchronous` values: no sync at commit, and SQLite's default.
const SYNCHRONOUS_OFF: i64 = 0;
const SYNCHRONOUS_FULL: i64 = 2;

/// What the writer has done since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches_committed: u64,
    /// Writes (inserts, duplicates and transitions) carried by committed transactions.
    pub rows_committed: u64,
    /// Transactions that failed to begin or commit; their waiters got the error.
    pub batches_failed: u64,
    /// Of the committed transactions, those that did not wait for the disk (see the module's
    /// docs).
    pub batches_unsynced: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches_committed: AtomicU64,
    rows_committed: AtomicU64,
    batches_failed: AtomicU64,
    batches_unsynced: AtomicU64,
}

/// Handle to the writer thread.
pub(in crate::store) struct Writer {
    path: PathBuf,
    /// `None` once closed.
    queue: Mutex<Option<SyncSender<Request>>>,
    /// `None` once joined.
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread; it owns `connection` from now on, and restarts the WAL when
    /// `restart` asks, between two transactions.
    pub(in crate::store) fn spawn(
        connection: Connection,
        path: &Path,
        capacity: usize,
        restart: RestartRequest,
    ) -> Result<Writer, Error> {
        let (queue, requests) = sync_channel(capacity);
        let counters = Arc::new(Counters::default());
        let thread = std::thread::Builder::new()
            .name("mecha-store-writer".into())
            .spawn({
                let counters = Arc::clone(&counters);
                let path = path.to_owned();
                move || run(connection, &path, &requests, &counters, &restart)
            })
            .map_err(|source| Error::Spawn {
                path: path.to_owned(),
                source,
            })?;
        Ok(Writer {
            path: path.to_owned(),
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
            counters,
        })
    }

    /// Queues `request` if there is room right now; gives it back when the queue is full.
    pub(in crate::store) fn try_submit(&self, request: Request) -> Result<Option<Request>, Error> {
        match self.sender()?.try_send(request) {
            Ok(()) => Ok(None),
            Err(TrySendError::Full(request)) => Ok(Some(request)),
            Err(TrySendError::Disconnected(_)) => Err(self.gone()),
        }
    }

    /// Queues `request`, waiting for room if the queue is full.
    pub(in crate::store) async fn submit(&self, request: Request) -> Result<(), Error> {
        let queue = self.sender()?;
        match queue.try_send(request) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(self.gone()),
            Err(TrySendError::Full(request)) => {
                // A blocking send must not hold up an async worker thread.
                let sent = tokio::task::spawn_blocking(move || queue.send(request).is_ok())
                    .await
                    .map_err(|error| Error::Task {
                        path: self.path.clone(),
                        reason: error.to_string(),
                    })?;
                if sent { Ok(()) } else { Err(self.gone()) }
            }
        }
    }

    /// Stops accepting writes, lets the thread finish the queued ones, and waits for it.
    pub(in crate::store) async fn close(&self) -> Result<(), Error> {
        drop(self.lock(&self.queue, "writer queue")?.take());
        let Some(thread) = self.lock(&self.thread, "writer thread")?.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|error| Error::Task {
                path: self.path.clone(),
                reason: error.to_string(),
            })?
            .map_err(|_| self.gone())
    }

    /// The counters so far.
    pub(in crate::store) fn stats(&self) -> WriterStats {
        WriterStats {
            batches_committed: self.counters.batches_committed.load(Ordering::Relaxed),
            rows_committed: self.counters.rows_committed.load(Ordering::Relaxed),
            batches_failed: self.counters.batches_failed.load(Ordering::Relaxed),
            batches_unsynced: self.counters.batches_unsynced.load(Ordering::Relaxed),
        }
    }

    /// The error a caller gets when the thread is no longer there to answer.
    pub(in crate::store) fn gone(&self) -> Error {
        Error::WriterGone {
            path: self.path.clone(),
        }
    }

    fn sender(&self) -> Result<SyncSender<Request>, Error> {
        self.lock(&self.queue, "writer queue")?
            .clone()
            .ok_or_else(|| Error::Closed {
                database: self.path.display().to_string(),
            })
    }

    fn lock<'a, T>(
        &self,
        mutex: &'a Mutex<T>,
        what: &'static str,
    ) -> Result<std::sync::MutexGuard<'a, T>, Error> {
        mutex.lock().map_err(|_| Error::Poisoned {
            path: self.path.clone(),
            what,
        })
    }
}

impl Drop for Writer {
    /// Ends the thread as [`Writer::close`] does: queued writes are still committed.
    fn drop(&mut self) {
        drop(
            self.queue
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the store's writer thread panicked");
        }
    }
}

/// The thread's loop: wait for a write, take whatever else is queued, commit it all at once.
fn run(
    mut connection: Connection,
    path: &Path,
    requests: &Receiver<Request>,
    counters: &Counters,
    restart: &RestartRequest,
) {
    // The configured durability (`PRAGMA synchronous`), and the one in force now.
    let configured: i64 = connection
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .unwrap_or(SYNCHRONOUS_FULL);
    let mut current = configured;
    while let Ok(first) = requests.recv() {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let wanted = if batch.iter().all(Request::may_skip_sync) {
            SYNCHRONOUS_OFF
        } else {
            configured
        };
        if wanted != current {
            match connection.pragma_update(None, "synchronous", wanted) {
                Ok(()) => current = wanted,
                // Committing synced is only slower.
                Err(error) if wanted == SYNCHRONOUS_OFF => {
                    tracing::warn!(path = %path.display(), %error, "could not skip a commit's sync");
                }
                // Committing unsynced what must be durable is not an option.
                Err(error) => {
                    let reason = format!("cannot make the commit durable: {error}");
                    fail_batch(
                        path,
                        &reason,
                        batch.into_iter().map(Request::into_reply),
                        counters,
                    );
                    continue;
                }
            }
        }
        let synced = current != SYNCHRONOUS_OFF;
        commit_batch(&mut connection, path, batch, counters, synced);
        if restart.take() {
            checkpoint::restart_wal(&connection, path);
        }
    }
    tracing::debug!(path = %path.display(), "the store's writer stopped");
}

/// Runs `batch` in one transaction and answers every waiter once it has committed (or failed);
/// `synced` tells whether the commit waits for the disk, for the counters.
fn commit_batch(
    connection: &mut Connection,
    path: &Path,
    batch: Vec<Request>,
    counters: &Counters,
    synced: bool,
) {
    let rows = batch.len() as u64;
    let now = timestamp::now();
    let mut transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate)
    {
        Ok(transaction) => transaction,
        Err(error) => {
            let reason = format!("cannot begin a transaction: {error}");
            fail_batch(
                path,
                &reason,
                batch.into_iter().map(Request::into_reply),
                counters,
            );
            return;
        }
    };
    let mut answers = Vec::with_capacity(batch.len());
    let mut requests = batch.into_iter();
    for request in requests.by_ref() {
        match request.apply(&mut transaction, path, now) {
            Ok(answer) => answers.push(answer),
            Err((reply, error)) => {
                // The transaction is in an unknown state: drop (roll back) all of it.
                drop(transaction);
                let reason = format!("a savepoint could not be rolled back: {error}");
                let replies = answers
                    .into_iter()
                    .map(Answer::into_reply)
                    .chain([reply])
                    .chain(requests.map(Request::into_reply));
                fail_batch(path, &reason, replies, counters);
                return;
            }
        }
    }
    match transaction.commit() {
        Ok(()) => {
            counters.batches_committed.fetch_add(1, Ordering::Relaxed);
            counters.rows_committed.fetch_add(rows, Ordering::Relaxed);
            if !synced {
                counters.batches_unsynced.fetch_add(1, Ordering::Relaxed);
            }
            for answer in answers {
                answer.send();
            }
        }
        Err(error) => {
            let replies = answers.into_iter().map(Answer::into_reply);
            fail_batch(path, &error.to_string(), replies, counters);
        }
    }
}

/// Answers every waiter of a batch that did not commit with the reason.
fn fail_batch(
    path: &Path,
    reason: &str,
    replies: impl Iterator<Item = Reply>,
    counters: &Counters,
) {
    counters.batches_failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(path = %path.display(), %reason, "a write batch did not commit");
    for reply in replies {
        reply.fail(Error::Commit {
            database: path.display().to_string(),
            reason: reason.to_owned(),
        });
    }
}

/// Runs `write` inside a savepoint: kept if it succeeds, rolled back if it fails. The outer error
/// is a failure of the savepoint itself; the inner one is the write's own.
pub(in crate::store) fn in_savepoint<T>(
    transaction: &mut Transaction<'_>,
    path: &Path,
    write: impl FnOnce(&Connection) -> Result<T, Error>,
) -> Result<Result<T, Error>, rusqlite::Error> {
    let savepoint = transaction.savepoint()?;
    match write(&savepoint) {
        Ok(value) => match savepoint.commit() {
            Ok(()) => Ok(Ok(value)),
            Err(source) => Ok(Err(query_error(path, "releasing a savepoint")(source))),
        },
        Err(error) => {
            // Rolls back to the savepoint and releases it.
            savepoint.finish()?;
            Ok(Err(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::oneshot;

    use super::*;
    use crate::store::events::{InsertOutcome, NewEvent};
    use crate::store::sqlite::migrations::migrated_database as database;

    fn event(source: &str, delivery: &str) -> NewEvent {
        NewEvent {
            source: source.into(),
            event_type: "push".into(),
            delivery_id: Some(delivery.into()),
            ..NewEvent::default()
        }
    }

    fn insert_request(
        event: NewEvent,
    ) -> (Request, oneshot::Receiver<Result<InsertOutcome, Error>>) {
        let (reply, answer) = oneshot::channel();
        (
            Request::Insert {
                event: event.into(),
                reply,
            },
            answer,
        )
    }

    fn count(connection: &Connection) -> i64 {
        connection
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_bad_row_fails_alone_and_its_batch_mates_are_stored() {
        let (_dir, path, mut connection) = database();
        let counters = Counters::default();
        let (good_a, answer_a) = insert_request(event("github", "a"));
        // The schema refuses an empty source: a constraint that is not a dedup rule.
        let (bad, answer_bad) = insert_request(event("", "b"));
        let (good_c, answer_c) = insert_request(event("github", "c"));
        let (again_a, answer_again) = insert_request(event("github", "a"));
        commit_batch(
            &mut connection,
            &path,
            vec![good_a, bad, good_c, again_a],
            &counters,
            true,
        );

        let first = match answer_a.blocking_recv().unwrap().unwrap() {
            InsertOutcome::Inserted(record) => record,
            other => panic!("expected an insert, got {other:?}"),
        };
        assert!(matches!(
            answer_bad.blocking_recv().unwrap(),
            Err(Error::Query { .. })
        ));
        assert!(matches!(
            answer_c.blocking_recv().unwrap(),
            Ok(InsertOutcome::Inserted(_))
        ));
        assert_eq!(
            answer_again.blocking_recv().unwrap().unwrap(),
            InsertOutcome::Duplicate { existing: first.id }
        );
        assert_eq!(count(&connection), 2);
        assert_eq!(counters.batches_committed.load(Ordering::Relaxed), 1);
        assert_eq!(counters.rows_committed.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_failed_commit_fails_every_waiter_and_stores_nothing() {
        let (_dir, path, mut connection) = database();
        // A deferred foreign key is checked only at COMMIT: every insert now breaks the commit,
        // while each row on its own succeeds.
        connection
            .execute_batch(
                "PRAGMA foreign_keys = ON;
                 CREATE TABLE parent (id TEXT PRIMARY KEY);
                 CREATE TABLE child (parent TEXT REFERENCES parent (id)
                                     DEFERRABLE INITIALLY DEFERRED);
                 CREATE TRIGGER orphan AFTER INSERT ON events
                 BEGIN INSERT INTO child VALUES ('missing'); END;",
            )
            .unwrap();
        let counters = Counters::default();
        let (first, answer_first) = insert_request(event("github", "a"));
        let (second, answer_second) = insert_request(event("github", "b"));
        commit_batch(&mut connection, &path, vec![first, second], &counters, true);
        for answer in [answer_first, answer_second] {
            let error = answer.blocking_recv().unwrap().unwrap_err();
            assert!(matches!(error, Error::Commit { .. }), "{error}");
        }
        assert_eq!(count(&connection), 0);
        assert_eq!(counters.batches_failed.load(Ordering::Relaxed), 1);
        assert_eq!(counters.batches_committed.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_makes_senders_wait_without_losing_writes() {
        let (_dir, path, connection) = database();
        let writer = Arc::new(
            Writer::spawn(connection, &path, 2, checkpoint::RestartRequest::default()).unwrap(),
        );
        let mut tasks = Vec::new();
        for n in 0..200 {
            let writer = Arc::clone(&writer);
            tasks.push(tokio::spawn(async move {
                let (request, answer) = insert_request(event("github", &n.to_string()));
                writer.submit(request).await.unwrap();
                answer.await.unwrap().unwrap()
            }));
        }
        for task in tasks {
            assert!(matches!(task.await.unwrap(), InsertOutcome::Inserted(_)));
        }
        writer.close().await.unwrap();
        assert_eq!(writer.stats().rows_committed, 200);
        let (request, _answer) = insert_request(event("github", "late"));
        assert!(matches!(
            writer.submit(request).await,
            Err(Error::Closed { .. })
        ));
        let connection = Connection::open(&path).unwrap();
        assert_eq!(count(&connection), 200);
    }
}
