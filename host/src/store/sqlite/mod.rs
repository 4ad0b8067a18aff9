//! [`SqliteStore`]: the store on one SQLite file, and its [`EventStore`] implementation.
//!
//! Opening sets up the file (owner-only permissions, WAL, durability), runs the migrations, and
//! hands the write connection to the group-commit thread ([`writer`]). Reads never queue
//! behind writes: WAL lets them run on their own connections, taken from a small pool on tokio's
//! blocking threads, while the writer commits. The other tables' traits are implemented beside
//! their SQL (`workers.rs`, `tasks.rs`, `audit.rs`) on the two helpers here, `write` and `read`.

pub(in crate::store) mod checkpoint;
pub(in crate::store) mod migrations;
mod plugin_installs;
pub(in crate::store) mod request;
pub(in crate::store) mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::store::error::query_error;
use crate::store::events::{self, EventFilter, EventRecord, EventSummary, InsertOutcome, NewEvent};
use crate::store::signed_deliveries::{SignedDigest, SignedInsert};
use crate::store::{About, Describe, Error, EventId, EventState, EventStore, StoreFuture};
use checkpoint::{Checkpointer, RestartRequest, WAL_FILE_LIMIT_BYTES};
use request::{Request, ResultSender};
use writer::{QUEUE_CAPACITY, Writer, WriterStats};

/// 5 s: how long a connection waits for another process's lock (a backup, the `sqlite3` shell)
/// before failing, as in the Go mecha.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// 8 reads at once, each on a connection of its own that is kept for the next: enough for the
/// API and the pipeline on a few cores, since a read is CPU work on cached pages. Further reads
/// wait for a connection. Opening one per read instead (a connection parses the schema and
/// prepares its statements anew) and a blocking thread per waiting read made a busy daemon
/// spend most of its time switching threads.
const READERS: usize = 8;

/// How hard SQLite works to keep a commit through a power loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `synchronous=FULL`: a committed event survives a power loss. The default, because a 202
    /// promises the event is stored.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits survive a crash of mecha, but the last ones may be lost on
    /// power loss. Faster on slow disks.
    Normal,
}

impl Durability {
    fn pragma_value(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// The event store on a SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReadPool>,
    /// Dropped with the store, after the writer.
    _checkpointer: Checkpointer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// Fails if the file cannot be created or locked, or if a newer mecha wrote it.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore, Error> {
        create_private_file(path)?;
        let mut connection = Connection::open(path).map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        configure_writer(&connection, path, durability)?;
        migrations::migrate(&mut connection, path)?;
        let restart = RestartRequest::default();
        let writer = Writer::spawn(connection, path, QUEUE_CAPACITY, restart.clone())?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer,
            readers: Arc::new(ReadPool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                turns: Arc::new(tokio::sync::Semaphore::new(READERS)),
            }),
            _checkpointer: Checkpointer::spawn(path, restart)?,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the group-commit writer has done so far (for metrics and tests).
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Queues the write that `request` builds around its reply channel, and waits until it has
    /// committed. Every write of every table goes this way, so that all of them are group-committed.
    pub(in crate::store) fn write<T: Send + 'static>(
        &self,
        request: impl FnOnce(ResultSender<T>) -> Request,
    ) -> StoreFuture<'_, T> {
        let (reply, answer) = oneshot::channel();
        // Queued now, not when the future is first polled: writes keep the order in which they
        // were asked for, and a caller may drop the future (fire and forget) without losing
        // the write. Only when the queue is full does queueing wait for the future.
        let deferred = self.writer.try_submit(request(reply));
        Box::pin(async move {
            if let Some(request) = deferred? {
                self.writer.submit(request).await?;
            }
            answer.await.map_err(|_| self.writer.gone())?
        })
    }

    /// Runs `query` on a pooled read connection on a blocking thread, once one of the
    /// [`READERS`] turns is free.
    pub(in crate::store) fn read<T: Send + 'static>(
        &self,
        action: &'static str,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let readers = Arc::clone(&self.readers);
        Box::pin(async move {
            let path = readers.path.clone();
            // Owned, and released by the blocking thread when it is done with the connection:
            // a caller that stops waiting does not free the turn early.
            let turn = Arc::clone(&readers.turns)
                .acquire_owned()
                .await
                .map_err(|_| Error::Closed {
                    database: path.display().to_string(),
                })?;
            tokio::task::spawn_blocking(move || {
                let read = readers.with(action, query);
                drop(turn);
                read
            })
            .await
            .map_err(|error| Error::Task {
                path,
                reason: error.to_string(),
            })?
        })
    }
}

impl Describe for SqliteStore {
    fn about(&self) -> StoreFuture<'_, About> {
        let database = self.path.display().to_string();
        self.read("describing the database", move |connection| {
            let version: String =
                connection.query_row("SELECT sqlite_version()", [], |row| row.get(0))?;
            let schema: u32 =
                connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
            Ok(About {
                database,
                server: format!("SQLite {version}"),
                schema,
                known: migrations::known_version(),
            })
        })
    }
}

impl EventStore for SqliteStore {
    fn insert(&self, event: NewEvent) -> StoreFuture<'_, InsertOutcome> {
        let event = event.into();
        self.write(|reply| Request::Insert { event, reply })
    }

    fn insert_signed(
        &self,
        source: &str,
        digest: SignedDigest,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'_, SignedInsert> {
        let source = source.to_owned();
        let events = events.into_iter().map(Into::into).collect();
        self.write(|reply| Request::InsertSigned {
            source,
            digest,
            events,
            reply,
        })
    }

    fn get(&self, id: &EventId) -> StoreFuture<'_, Option<EventRecord>> {
        let id = id.clone();
        self.read("reading an event", move |connection| {
            events::get(connection, &id)
        })
    }

    fn list(&self, filter: EventFilter) -> StoreFuture<'_, Vec<EventRecord>> {
        self.read("listing events", move |connection| {
            events::list(connection, &filter)
        })
    }

    fn list_summaries(&self, filter: EventFilter) -> StoreFuture<'_, Vec<EventSummary>> {
        self.read("listing events", move |connection| {
            events::list_summaries(connection, &filter)
        })
    }

    fn transition(&self, id: &EventId, from: EventState, to: EventState) -> StoreFuture<'_, ()> {
        let id = id.clone();
        self.write(|reply| Request::Transition {
            id,
            from,
            to,
            reply,
        })
    }

    fn set_attrs(
        &self,
        id: &EventId,
        attrs: serde_json::Map<String, serde_json::Value>,
    ) -> StoreFuture<'_, bool> {
        let id = id.clone();
        self.write(|reply| Request::SetAttrs { id, attrs, reply })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.writer.close())
    }
}

/// Creates the database file readable by its owner only, since events carry webhook bodies.
/// SQLite gives its `-wal` and `-shm` files the same permissions. An existing file is left as
/// the operator set it.
fn create_private_file(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::fs::{OpenOptions, Permissions};
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

        /// Read and write for the owner, nothing for anyone else.
        const OWNER_ONLY: u32 = 0o600;

        let file_error = |source| Error::File {
            path: path.to_owned(),
            source,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(OWNER_ONLY)
            .open(path)
        {
            // The umask may have removed bits from the mode given above; set it exactly.
            Ok(file) => file
                .set_permissions(Permissions::from_mode(OWNER_ONLY))
                .map_err(file_error),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(file_error(error)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Sets the write connection's pragmas: WAL, the durability, lock waiting, foreign keys, no
/// automatic checkpoints, and how much of the WAL file to keep when it starts over.
fn configure_writer(
    connection: &Connection,
    path: &Path,
    durability: Durability,
) -> Result<(), Error> {
    let pragma_error = |pragma| {
        move |source| Error::Pragma {
            path: path.to_owned(),
            pragma,
            source,
        }
    };
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(pragma_error("busy_timeout"))?;
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(pragma_error("journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::JournalMode {
            path: path.to_owned(),
            mode,
        });
    }
    connection
        .pragma_update(None, "synchronous", durability.pragma_value())
        .map_err(pragma_error("synchronous"))?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(pragma_error("foreign_keys"))?;
    // Checkpoints run on their own thread (see `checkpoint`), never inside a commit.
    connection
        .pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(pragma_error("wal_autocheckpoint"))?;
    connection
        .pragma_update(None, "journal_size_limit", WAL_FILE_LIMIT_BYTES)
        .map_err(pragma_error("journal_size_limit"))?;
    Ok(())
}

/// Read-only connections, reused across reads, and the turns that bound how many are in use.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// [`READERS`] of them: a read holds one while it runs, so at most that many connections
    /// ever exist.
    turns: Arc<tokio::sync::Semaphore>,
}

impl ReadPool {
    /// Runs `query` on an idle connection, or a new one if none is idle, then keeps the
    /// connection for the next read. The caller holds one of the [`ReadPool::turns`].
    fn with<T>(
        &self,
        action: &'static str,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let pooled = self.lock()?.pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = query(&connection).map_err(query_error(&self.path, action));
        self.lock()?.push(connection);
        result
    }

    fn open(&self) -> Result<Connection, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let connection =
            Connection::open_with_flags(&self.path, flags).map_err(|source| Error::Open {
                path: self.path.clone(),
                source,
            })?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|source| Error::Pragma {
                path: self.path.clone(),
                pragma: "busy_timeout",
                source,
            })?;
        Ok(connection)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<Connection>>, Error> {
        self.idle.lock().map_err(|_| Error::Poisoned {
            path: self.path.clone(),
            what: "read pool",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{event, inserted};

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap()
    }

    async fn count(store: &dyn EventStore) -> usize {
        let filter = EventFilter {
            limit: 1_000,
            ..EventFilter::default()
        };
        store.list(filter).await.unwrap().len()
    }

    #[tokio::test]
    async fn rows_survive_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let mut ids = Vec::new();
        for n in 0..50 {
            let delivery = format!("d-{n}");
            ids.push(
                inserted(&store, event("github", Some(&delivery), None))
                    .await
                    .id,
            );
        }
        store.close().await.unwrap();
        store.close().await.unwrap();
        assert!(matches!(
            store.insert(event("github", Some("late"), None)).await,
            Err(Error::Closed { .. })
        ));
        // Reads still work after close.
        assert_eq!(count(&store).await, 50);
        drop(store);

        let reopened = open(&dir);
        for id in &ids {
            assert!(reopened.get(id).await.unwrap().is_some());
        }
        assert_eq!(count(&reopened).await, 50);
    }

    #[tokio::test]
    async fn dropping_the_store_ends_the_writer_and_keeps_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let record = inserted(&store, event("github", Some("d-1"), None)).await;
        drop(store);
        let reopened = open(&dir);
        assert_eq!(reopened.get(&record.id).await.unwrap(), Some(record));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_inserts_are_group_committed() {
        const INSERTS: usize = 2_000;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(&dir));
        let mut tasks = Vec::with_capacity(INSERTS);
        for n in 0..INSERTS {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let delivery = format!("d-{n}");
                store.insert(event("github", Some(&delivery), None)).await
            }));
        }
        for task in tasks {
            assert!(matches!(
                task.await.unwrap().unwrap(),
                InsertOutcome::Inserted(_)
            ));
        }
        let stats = store.writer_stats();
        assert_eq!(stats.rows_committed, INSERTS as u64);
        assert_eq!(stats.batches_failed, 0);
        assert!(
            stats.batches_committed < stats.rows_committed,
            "no group commit happened: {stats:?}"
        );
        let connection = Connection::open(store.path()).unwrap();
        let stored: i64 = connection
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, INSERTS as i64);
    }

    /// An audit entry alone commits without waiting for the disk; the event after it, which a
    /// 202 would promise, waits for it again.
    #[tokio::test]
    async fn only_writes_that_can_be_redone_skip_the_sync() {
        use crate::store::{AuditEntry, AuditLog};

        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store
            .record(AuditEntry::new("t", "event.received"))
            .await
            .unwrap();
        let stats = store.writer_stats();
        assert_eq!((stats.batches_committed, stats.batches_unsynced), (1, 1));
        store
            .insert(event("github", Some("d-1"), None))
            .await
            .unwrap();
        let stats = store.writer_stats();
        assert_eq!((stats.batches_committed, stats.batches_unsynced), (2, 1));
    }

    #[test]
    fn a_database_from_a_newer_mecha_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mecha.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", migrations::known_version() + 1)
            .unwrap();
        let error = SqliteStore::open(&path, Durability::Full)
            .err()
            .expect("a newer schema must be refused");
        let known = migrations::known_version();
        assert!(matches!(
            error,
            Error::SchemaTooNew { found, known: k, .. }
                if k == known && found == i64::from(known) + 1
        ));
        assert!(
            error.to_string().contains(&format!(
                "(schema version {}, this build knows {known}); upgrade mecha",
                known + 1
            )),
            "{error}"
        );
    }

    #[test]
    fn open_sets_wal_and_the_durability() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mecha.db");
        let store = SqliteStore::open(&path, Durability::Normal).unwrap();
        let connection = Connection::open(&path).unwrap();
        let mode: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        assert_eq!(Durability::default(), Durability::Full);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_database_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mecha.db");
        let store = SqliteStore::open(&path, Durability::Full).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(store);
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("mecha.db");
        let error = SqliteStore::open(&path, Durability::Full)
            .err()
            .expect("no directory, no database");
        assert!(error.to_string().contains("missing"), "{error}");
    }
}
