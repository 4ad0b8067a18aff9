//! The PostgreSQL schema and its migrations.
//!
//! Each migration runs in one transaction with its record in `mecha_schema`: PostgreSQL's DDL
//! is transactional, so a migration that fails leaves the database at the version before it.
//! Daemons starting together take an advisory lock first, so one migrates while the others
//! wait and then find nothing left to do. A database migrated by a newer mecha is refused, as on
//! SQLite.

use super::lock;
use super::pool::Connection;
use crate::store::Error;

/// A step of the schema, in order: its version, its name (for errors) and its SQL.
struct Migration {
    version: u32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_schema",
        sql: include_str!("migrations/0001_schema.sql"),
    },
    Migration {
        version: 2,
        name: "0002_plugin_installs",
        sql: include_str!("migrations/0002_plugin_installs.sql"),
    },
];

/// The version this build brings a database to.
fn known_version() -> u32 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

const CREATE_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS mecha_schema ( \
                                   version    INTEGER NOT NULL PRIMARY KEY, \
                                   name       TEXT    NOT NULL, \
                                   applied_at BIGINT  NOT NULL)";

/// Brings the database's schema up to [`known_version`].
pub(super) async fn migrate(connection: &mut Connection) -> Result<(), Error> {
    const ACTION: &str = "reading the schema version";
    let mut transaction = connection.transaction().await?;
    let mut session = transaction.session();
    session.lock_class(ACTION, lock::SCHEMA).await?;
    session.execute(ACTION, CREATE_VERSIONS, &[]).await?;
    let found = current(&mut session).await?;
    let known = known_version();
    if found > i64::from(known) {
        return Err(Error::SchemaTooNew {
            database: session.database().to_owned(),
            found,
            known,
        });
    }
    let database = session.database().to_owned();
    for migration in MIGRATIONS
        .iter()
        .filter(|migration| i64::from(migration.version) > found)
    {
        let failed = |source: Error| Error::Migration {
            database: database.clone(),
            version: migration.version,
            name: migration.name,
            source: Box::new(source),
        };
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(failed)?;
        transaction
            .session()
            .execute(
                "recording a migration",
                "INSERT INTO mecha_schema (version, name, applied_at) VALUES ($1, $2, $3)",
                &[
                    &i32::try_from(migration.version).unwrap_or(i32::MAX),
                    &migration.name,
                    &crate::store::timestamp::now(),
                ],
            )
            .await
            .map_err(failed)?;
    }
    transaction.commit().await
}

/// The version the database is at (0 before the first migration), and the one this build
/// knows.
pub(super) async fn version(connection: &mut Connection) -> Result<(u32, u32), Error> {
    let mut session = connection.session();
    session
        .execute("reading the schema version", CREATE_VERSIONS, &[])
        .await?;
    let found = current(&mut session).await?;
    Ok((u32::try_from(found).unwrap_or(u32::MAX), known_version()))
}

async fn current<C: tokio_postgres::GenericClient + Sync>(
    session: &mut super::pool::Session<'_, C>,
) -> Result<i64, Error> {
    const ACTION: &str = "reading the schema version";
    let row = session
        .query_opt(
            ACTION,
            "SELECT coalesce(max(version), 0)::bigint FROM mecha_schema",
            &[],
        )
        .await?;
    match row {
        Some(row) => row.try_get(0).map_err(session.failed(ACTION)),
        None => Ok(0),
    }
}
