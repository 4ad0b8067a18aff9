//! WAL checkpoints on a thread of their own.
//!
//! SQLite normally checkpoints inside the commit that crosses the WAL's size threshold, so one
//! unlucky batch of webhooks waits while megabytes are copied into the database file and synced:
//! that is where ingest's tail latency came from. The writer therefore never checkpoints
//! (`wal_autocheckpoint = 0`), and this thread runs passive checkpoints, which never block the
//! writer or readers, every [`INTERVAL`].

use std::path::Path;
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::time::Duration;

use rusqlite::Connection;

use super::Error;

/// 250 ms between checkpoints: at a thousand 30 KB webhooks a second the WAL grows by about
/// 8 MB in that time, which one passive checkpoint copies easily.
const INTERVAL: Duration = Duration::from_millis(250);

pub(super) struct Checkpointer {
    /// Dropping it wakes the thread at once and ends it.
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn spawn(path: &Path) -> Result<Checkpointer, Error> {
        let connection = Connection::open(path).map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        let (stop, stopped) = channel::<()>();
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("mecha-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    let checkpoint =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
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
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(in_file, 50);
    }
}
