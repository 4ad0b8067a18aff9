//! The `plugin_installs` and `plugin_components` tables on SQLite, and
//! [`PluginInstallStore`] on them. A publication is one write request: the writer thread runs
//! one at a time, so revisions are taken in commit order.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::request::Request;
use crate::store::error::query_error;
use crate::store::{Error, PluginInstall, PluginInstallStore, PluginPublication, StoreFuture};

impl PluginInstallStore for SqliteStore {
    fn publish_plugin(&self, publication: PluginPublication) -> StoreFuture<'_, i64> {
        self.write(|reply| Request::PublishPlugin { publication, reply })
    }

    fn plugin_installs(&self, after: i64) -> StoreFuture<'_, Vec<PluginInstall>> {
        self.read("reading the shared plugin installs", move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT revision, name, entry FROM plugin_installs WHERE revision > ?1 \
                 ORDER BY revision",
            )?;
            let rows = statement.query_map([after], |row| {
                Ok(PluginInstall {
                    revision: row.get(0)?,
                    name: row.get(1)?,
                    entry: row.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    fn missing_components(&self, name: &str, sha256s: Vec<String>) -> StoreFuture<'_, Vec<String>> {
        let name = name.to_owned();
        self.read("reading the shared plugin components", move |connection| {
            let mut missing = Vec::new();
            for sha256 in sha256s {
                if !stored(connection, &name, &sha256)? {
                    missing.push(sha256);
                }
            }
            Ok(missing)
        })
    }

    fn plugin_component(&self, name: &str, sha256: &str) -> StoreFuture<'_, Option<Vec<u8>>> {
        let (name, sha256) = (name.to_owned(), sha256.to_owned());
        self.read("reading a shared plugin component", move |connection| {
            connection
                .prepare_cached(
                    "SELECT bytes FROM plugin_components WHERE name = ?1 AND sha256 = ?2",
                )?
                .query_row(params![name, sha256], |row| row.get(0))
                .optional()
        })
    }
}

fn stored(connection: &Connection, name: &str, sha256: &str) -> rusqlite::Result<bool> {
    connection
        .prepare_cached("SELECT 1 FROM plugin_components WHERE name = ?1 AND sha256 = ?2")?
        .query_row(params![name, sha256], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

/// Stores `publication` under the next revision; runs in the writer's savepoint, so a missing
/// component leaves nothing behind.
pub(super) fn publish(
    connection: &Connection,
    path: &Path,
    publication: &PluginPublication,
    now: i64,
) -> Result<i64, Error> {
    let error = query_error(path, "sharing a plugin install");
    let name = &publication.name;
    for (sha256, bytes) in &publication.components {
        connection
            .prepare_cached(
                "INSERT INTO plugin_components (name, sha256, bytes) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
            )
            .and_then(|mut statement| statement.execute(params![name, sha256, bytes]))
            .map_err(&error)?;
    }
    for sha256 in &publication.named {
        if !stored(connection, name, sha256).map_err(&error)? {
            return Err(publication.missing(sha256));
        }
    }
    let named = serde_json::json!(publication.named).to_string();
    connection
        .prepare_cached(
            "DELETE FROM plugin_components WHERE name = ?1 \
             AND sha256 NOT IN (SELECT value FROM json_each(?2))",
        )
        .and_then(|mut statement| statement.execute(params![name, named]))
        .map_err(&error)?;
    connection
        .prepare_cached(
            "INSERT INTO plugin_installs (name, entry, revision, updated_at) \
             VALUES (?1, ?2, (SELECT coalesce(max(revision), 0) + 1 FROM plugin_installs), ?3) \
             ON CONFLICT (name) DO UPDATE SET entry = excluded.entry, \
                 revision = excluded.revision, updated_at = excluded.updated_at \
             RETURNING revision",
        )
        .and_then(|mut statement| {
            statement.query_row(params![name, publication.entry, now], |row| row.get(0))
        })
        .map_err(&error)
}
