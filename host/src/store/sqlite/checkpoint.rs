//! WAL checkpoints on a thread of their own.
//!
//! SQLite normally checkpoints inside the commit that crosses the WAL's size threshold, so one
//! unlucky batch of webhooks waits while megabytes are copied into the database file and synced:
//! that is where ingest's tail latency came from. The writer therefore never checkpoints
//! (`wal_autocheckpoint = 0`), and this thread runs passive checkpoints, which never block the
//! writer or readers, every [`INTERVAL`].
//!
//! Passive checkpoints alone do not bound the WAL: SQLite starts writing it from the beginning
//! again only when a checkpoint has copied all of it, and under steady load new commits always
//! arrive first, so it grows for as long as the load lasts (1.5 GB in 12 s was seen). When it
//! holds more than [`RESTART_ABOVE_BYTES`], the thread asks the writer for a RESTART
//! checkpoint ([`RestartRequest`]). The writer runs it between two of its transactions, where
//! it holds the write lock anyway (another thread would almost never find a gap between the
//! writer's back-to-back transactions): it copies the little the passive checkpoint left and
//! lets the next commit start the WAL over. `journal_size_limit` then gives the file back to
//! the disk beyond [`WAL_FILE_LIMIT_BYTES`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::time::Duration;

use rusqlite::Connection;

use crate::store::Error;

/// 100 ms between checkpoints: at full speed (several thousand webhooks a second, a few KB of
/// WAL each) the WAL grows by about 5 MB in that time, which one passive checkpoint copies
/// easily, and it passes [`RESTART_ABOVE_BYTES`] by no more than that before a restart is asked
/// for.
const INTERVAL: Duration = Duration::from_millis(100);

/// 16 MiB of WAL: past this a checkpoint makes the WAL start over. A few seconds of webhooks
/// at full speed; a database read needs to look through no more than this.
const RESTART_ABOVE_BYTES: u64 = 16 << 20;

/// 32 MiB: the size the WAL file is cut back to when it starts over (`journal_size_limit`, set on
/// the writer's connection, whose first commit after the restart does the cutting).
pub(in crate::store) const WAL_FILE_LIMIT_BYTES: u64 = 32 << 20;

/// 10 ms: how long a RESTART checkpoint waits for readers still looking at the WAL (reads take
/// milliseconds) before it settles for a passive one, to be asked for again after the next
/// interval. Commits wait at most this long for it.
const RESTART_WAIT: Duration = Duration::from_millis(10);

/// The checkpointer's request that the writer restart the WAL; see the module's docs.
#[derive(Debug, Clone, Default)]
pub(in crate::store) struct RestartRequest(Arc<AtomicBool>);

impl RestartRequest {
    fn ask(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a restart was asked for since the last call.
    pub(in crate::store) fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// Runs a RESTART checkpoint on the writer's `connection`, between two transactions, waiting
/// at most [`RESTART_WAIT`] for readers; the connection's own wait is restored afterwards.
pub(in crate::store) fn restart_wal(connection: &Connection, path: &Path) {
    let restarted = connection
        .pragma_query_value(None, "busy_timeout", |row| row.get::<_, u64>(0))
        .and_then(|own| {
            connection.busy_timeout(RESTART_WAIT)?;
            let checkpointed = checkpoint(connection, "RESTART");
            connection.busy_timeout(Duration::from_millis(own))?;
            checkpointed
        });
    if let Err(err) = restarted {
        tracing::warn!(path = %path.display(), error = %err, "restarting the WAL failed; the next checkpoint asks again");
    }
}

/// What `PRAGMA wal_checkpoint` reports that matters here.
struct Progress {
    /// Frames (pages) in the WAL.
    wal_frames: u64,
}

pub(in crate::store) struct Checkpointer {
    /// Dropping it wakes the thread at once and ends it.
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; it asks for WAL restarts through `restart`.
    pub(in crate::store) fn spawn(
        path: &Path,
        restart: RestartRequest,
    ) -> Result<Checkpointer, Error> {
        let connection = Connection::open(path).map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        let page_size: u64 = connection
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .map_err(|source| Error::Pragma {
                path: path.to_owned(),
                pragma: "page_size",
                source,
            })?;
        // A WAL frame is a page and its 24-byte header.
        let restart_above_frames = RESTART_ABOVE_BYTES / (page_size + 24);
        let (stop, stopped) = channel::<()>();
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("mecha-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    let checkpoint = checkpoint(&connection, "PASSIVE");
                    if let Ok(progress) = &checkpoint
                        && progress.wal_frames > restart_above_frames
                    {
                        restart.ask();
                    }
                    if let Err(err) = checkpoint {
                        tracing::warn!(path = %shown, error = %err, "WAL checkpoint failed; the next one retries");
                    }
                }
            })
            .map_err(|source| Error::Spawn {
                path: path.to_owned(),
                source,
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Runs one checkpoint in `mode`. A RESTART that readers held up reports itself busy and did
/// what a passive one does; that is not an error.
fn checkpoint(connection: &Connection, mode: &str) -> rusqlite::Result<Progress> {
    connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        let frames: i64 = row.get(1)?;
        Ok(Progress {
            wal_frames: u64::try_from(frames).unwrap_or_default(),
        })
    })
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use crate::store::{Durability, EventStore, NewEvent, SqliteStore};

    /// The database file itself (read as immutable, ignoring the WAL) catches up with what was
    /// committed: checkpoints happen although the writer never runs one.
    #[tokio::test]
    async fn committed_rows_reach_the_database_file() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("mecha.db");
        let store = SqliteStore::open(&path, Durability::Full).expect("opens");
        for n in 0..50 {
            let event = NewEvent {
                source: "test".into(),
                event_type: "tick".into(),
                delivery_id: Some(format!("d{n}")),
                ..NewEvent::default()
            };
            store.insert(event).await.expect("stored");
        }
        let uri = format!("file:{}?immutable=1", path.display());
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let mut in_file = 0;
        for _ in 0..200 {
            let file = rusqlite::Connection::open_with_flags(&uri, flags).expect("file opens");
            in_file = file
                .query_row("SELECT count(*) FROM events", [], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap_or(0);
            if in_file == 50 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(in_file, 50);
    }

    /// Under writes that never pause, the WAL starts over instead of growing with everything
    /// written through it: 96 MiB of incompressible bodies go in, and the WAL file never holds
    /// more than 64 MiB. With passive checkpoints alone it grows to about the 96 MiB.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_writes_that_never_pause() {
        const WRITERS: usize = 16;
        const BODY_BYTES: usize = 16 << 10;
        const TOTAL_BYTES: usize = 96 << 20;
        const BOUND_BYTES: u64 = 64 << 20;

        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("mecha.db");
        let wal = dir.path().join("mecha.db-wal");
        let store = Arc::new(SqliteStore::open(&path, Durability::Full).expect("opens"));
        let done = Arc::new(AtomicBool::new(false));
        let watcher = std::thread::spawn({
            let done = Arc::clone(&done);
            move || {
                let mut largest = 0;
                while !done.load(Ordering::Relaxed) {
                    let size = std::fs::metadata(&wal).map_or(0, |file| file.len());
                    largest = largest.max(size);
                    std::thread::sleep(Duration::from_millis(5));
                }
                largest
            }
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for n in 0..TOTAL_BYTES / BODY_BYTES / WRITERS {
                        // Bytes zstd cannot shrink, so all of them reach the WAL.
                        let raw =
                            crate::store::body::noise(BODY_BYTES, (writer * 1_000 + n) as u64);
                        let event = NewEvent {
                            source: "test".into(),
                            event_type: "blob".into(),
                            delivery_id: Some(format!("{writer}-{n}")),
                            raw,
                            ..NewEvent::default()
                        };
                        store.insert(event).await.expect("stored");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("writer");
        }
        done.store(true, Ordering::Relaxed);
        let largest = watcher.join().expect("watcher");
        assert!(
            largest < BOUND_BYTES,
            "the WAL reached {largest} bytes while {TOTAL_BYTES} were written"
        );
    }
}
