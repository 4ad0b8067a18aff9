//! Schema migrations, versioned through `PRAGMA user_version`.
//!
//! [`MIGRATIONS`] is append-only: migration *n* (counting from 1) brings the schema from version
//! *n − 1* to *n*, and a released migration is never edited, because databases in the field
//! already ran it. Each one runs in its own `BEGIN IMMEDIATE` transaction together with the
//! version bump, so a failure leaves the database at the previous version, and two processes
//! opening the same file cannot both apply it. A database whose version is above the last
//! migration was written by a newer mecha and is refused rather than guessed at.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::store::Error;
use crate::store::error::query_error;

/// One step of the schema.
pub(in crate::store) struct Migration {
    /// File name without extension, for error messages.
    name: &'static str,
    /// SQL run as one batch.
    sql: &'static str,
}

/// Every migration, oldest first. Append only.
const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_events",
        sql: include_str!("migrations/0001_events.sql"),
    },
    Migration {
        name: "0002_workers",
        sql: include_str!("migrations/0002_workers.sql"),
    },
    Migration {
        name: "0003_tasks",
        sql: include_str!("migrations/0003_tasks.sql"),
    },
    Migration {
        name: "0004_logs",
        sql: include_str!("migrations/0004_logs.sql"),
    },
    Migration {
        name: "0005_write_back",
        sql: include_str!("migrations/0005_write_back.sql"),
    },
    Migration {
        name: "0006_event_write_back",
        sql: include_str!("migrations/0006_event_write_back.sql"),
    },
    Migration {
        name: "0007_signed_deliveries",
        sql: include_str!("migrations/0007_signed_deliveries.sql"),
    },
    Migration {
        name: "0008_worker_restarts",
        sql: include_str!("migrations/0008_worker_restarts.sql"),
    },
    Migration {
        name: "0009_task_leases",
        sql: include_str!("migrations/0009_task_leases.sql"),
    },
    Migration {
        name: "0010_event_bodies",
        sql: include_str!("migrations/0010_event_bodies.sql"),
    },
    Migration {
        name: "0011_worker_runtime_owner",
        sql: include_str!("migrations/0011_worker_runtime_owner.sql"),
    },
    Migration {
        name: "0012_plugin_installs",
        sql: include_str!("migrations/0012_plugin_installs.sql"),
    },
];

/// The schema version this build creates and understands.
pub(in crate::store) fn known_version() -> u32 {
    version_after(MIGRATIONS)
}

/// A fresh database in a directory of its own, migrated: what the tests of the SQL in each
/// table's file run on.
#[cfg(test)]
pub(in crate::store) fn migrated_database() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mecha.db");
    let mut connection = Connection::open(&path).unwrap();
    migrate(&mut connection, &path).unwrap();
    (dir, path, connection)
}

/// Brings the database on `connection` up to [`known_version`].
pub(in crate::store) fn migrate(connection: &mut Connection, path: &Path) -> Result<(), Error> {
    apply(connection, path, MIGRATIONS)
}

/// The version reached once all of `migrations` have run.
fn version_after(migrations: &[Migration]) -> u32 {
    u32::try_from(migrations.len()).unwrap_or(u32::MAX)
}

/// Runs the migrations in `migrations` that the database has not seen yet, one transaction each.
fn apply(connection: &mut Connection, path: &Path, migrations: &[Migration]) -> Result<(), Error> {
    let known = version_after(migrations);
    loop {
        let query_error = query_error(path, "reading the schema version");
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&query_error)?;
        let found: i64 = transaction
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(&query_error)?;
        let current = match u32::try_from(found) {
            Ok(current) if current <= known => current,
            _ => {
                return Err(Error::SchemaTooNew {
                    database: path.display().to_string(),
                    found,
                    known,
                });
            }
        };
        let Some(migration) = usize::try_from(current)
            .ok()
            .and_then(|index| migrations.get(index))
        else {
            return Ok(());
        };
        let version = current + 1;
        let migration_error = |source: rusqlite::Error| Error::Migration {
            database: path.display().to_string(),
            version,
            name: migration.name,
            source: Box::new(source),
        };
        transaction
            .execute_batch(migration.sql)
            .map_err(migration_error)?;
        transaction
            .pragma_update(None, "user_version", version)
            .map_err(migration_error)?;
        transaction.commit().map_err(migration_error)?;
        tracing::info!(path = %path.display(), version, migration = migration.name, "migrated the database");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_version(connection: &Connection) -> i64 {
        connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn fresh_database_reaches_the_known_version_and_stays_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mecha.db");
        let mut connection = Connection::open(&path).unwrap();
        migrate(&mut connection, &path).unwrap();
        assert_eq!(user_version(&connection), i64::from(known_version()));
        migrate(&mut connection, &path).unwrap();
        assert_eq!(user_version(&connection), i64::from(known_version()));
        let tables: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mecha.db");
        let mut connection = Connection::open(&path).unwrap();
        let steps = [
            Migration {
                name: "0001_good",
                sql: "CREATE TABLE good (x INTEGER);",
            },
            Migration {
                name: "0002_bad",
                sql: "CREATE TABLE half (x INTEGER); THIS IS NOT SQL;",
            },
        ];
        let error = apply(&mut connection, &path, &steps).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Migration {
                    version: 2,
                    name: "0002_bad",
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(user_version(&connection), 1);
        let half: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'half'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(half, 0, "the failed migration's table was rolled back");
    }

    #[tokio::test]
    async fn a_version_1_database_is_upgraded_with_its_events_kept() {
        use crate::store::{
            AuditEntry, AuditLog, Durability, EventId, EventState, EventStore, LogFilter,
            SqliteStore, TaskFilter, TaskStore, WorkerStore,
        };

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mecha.db");
        let id = EventId::generate().unwrap();
        let body = br#"{"ref":"refs/heads/main"}"#.to_vec();
        {
            let mut connection = Connection::open(&path).unwrap();
            apply(&mut connection, &path, &MIGRATIONS[..1]).unwrap();
            assert_eq!(user_version(&connection), 1);
            connection
                .execute(
                    "INSERT INTO events (id, delivery_id, source, type, raw, created_at, updated_at) \
                     VALUES (?1, 'd-1', 'github', 'push', ?2, 1000, 1000)",
                    rusqlite::params![id, body],
                )
                .unwrap();
        }

        let store = SqliteStore::open(&path, Durability::Full).unwrap();
        let old = store.get(&id).await.unwrap().expect("the event is kept");
        assert_eq!(
            (old.source.as_str(), old.delivery_id.as_str(), old.state),
            ("github", "d-1", EventState::Received)
        );
        assert_eq!(old.raw, body, "the body moved to its own table");
        store
            .add_workers(vec![("reviewer".into(), serde_json::json!({}))])
            .await
            .unwrap();
        assert_eq!(store.list_workers().await.unwrap().len(), 1);
        assert!(
            store
                .list_tasks(TaskFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
        store
            .record(AuditEntry::new("t", "event.received"))
            .await
            .unwrap();
        assert_eq!(
            store.query_logs(LogFilter::default()).await.unwrap().len(),
            1
        );
        drop(store);
        let connection = Connection::open(&path).unwrap();
        assert_eq!(user_version(&connection), i64::from(known_version()));
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mecha.db");
        let mut connection = Connection::open(&path).unwrap();
        let newer = i64::from(known_version()) + 1;
        connection
            .pragma_update(None, "user_version", newer)
            .unwrap();
        let error = migrate(&mut connection, &path).unwrap_err();
        assert!(
            matches!(error, Error::SchemaTooNew { found, .. } if found == newer),
            "{error}"
        );
        assert!(error.to_string().contains("upgrade mecha"));
    }
}
