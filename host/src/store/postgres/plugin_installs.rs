//! The `plugin_installs` and `plugin_components` tables on PostgreSQL, and
//! [`PluginInstallStore`] on them: the statements of `store/sqlite/plugin_installs.rs`. A
//! publication holds the advisory lock of its class until it commits, so two daemons' changes
//! take their revisions one after the other, in commit order: a reader that has seen revision
//! `r` never misses an `r - 1` committed after it.

use tokio_postgres::GenericClient;

use super::PostgresStore;
use super::lock;
use super::pool::Session;
use crate::store::{
    Error, PluginInstall, PluginInstallStore, PluginPublication, StoreFuture, timestamp,
};

impl PluginInstallStore for PostgresStore {
    fn publish_plugin(&self, publication: PluginPublication) -> StoreFuture<'_, i64> {
        Box::pin(async move {
            const ACTION: &str = "sharing a plugin install";
            let name = &publication.name;
            let mut connection = self.writing().await?;
            let mut transaction = connection.transaction().await?;
            let mut session = transaction.session();
            session.lock_class(ACTION, lock::PLUGIN_INSTALLS).await?;
            for (sha256, bytes) in &publication.components {
                session
                    .execute(
                        ACTION,
                        "INSERT INTO plugin_components (name, sha256, bytes) \
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        &[name, sha256, bytes],
                    )
                    .await?;
            }
            let absent = missing(&mut session, ACTION, name, &publication.named).await?;
            if let Some(sha256) = absent.first() {
                return Err(publication.missing(sha256));
            }
            session
                .execute(
                    ACTION,
                    "DELETE FROM plugin_components \
                     WHERE name = $1 AND NOT (sha256 = ANY($2::text[]))",
                    &[name, &publication.named],
                )
                .await?;
            let row = session
                .query_opt(
                    ACTION,
                    "INSERT INTO plugin_installs (name, entry, revision, updated_at) \
                     VALUES ($1, $2, \
                             (SELECT coalesce(max(revision), 0) + 1 FROM plugin_installs), $3) \
                     ON CONFLICT (name) DO UPDATE SET entry = excluded.entry, \
                         revision = excluded.revision, updated_at = excluded.updated_at \
                     RETURNING revision",
                    &[name, &publication.entry, &timestamp::now()],
                )
                .await?;
            let revision: i64 = row
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(session.failed(ACTION))?
                .unwrap_or_default();
            transaction.commit().await?;
            Ok(revision)
        })
    }

    fn plugin_installs(&self, after: i64) -> StoreFuture<'_, Vec<PluginInstall>> {
        Box::pin(async move {
            const ACTION: &str = "reading the shared plugin installs";
            let mut connection = self.pool.get().await?;
            let mut session = connection.session();
            let rows = session
                .query(
                    ACTION,
                    "SELECT revision, name, entry FROM plugin_installs WHERE revision > $1 \
                     ORDER BY revision",
                    &[&after],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(PluginInstall {
                        revision: row.try_get(0)?,
                        name: row.try_get(1)?,
                        entry: row.try_get(2)?,
                    })
                })
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(session.failed(ACTION))
        })
    }

    fn missing_components(&self, name: &str, sha256s: Vec<String>) -> StoreFuture<'_, Vec<String>> {
        let name = name.to_owned();
        Box::pin(async move {
            const ACTION: &str = "reading the shared plugin components";
            let mut connection = self.pool.get().await?;
            missing(&mut connection.session(), ACTION, &name, &sha256s).await
        })
    }

    fn plugin_component(&self, name: &str, sha256: &str) -> StoreFuture<'_, Option<Vec<u8>>> {
        let (name, sha256) = (name.to_owned(), sha256.to_owned());
        Box::pin(async move {
            const ACTION: &str = "reading a shared plugin component";
            let mut connection = self.pool.get().await?;
            let mut session = connection.session();
            let row = session
                .query_opt(
                    ACTION,
                    "SELECT bytes FROM plugin_components WHERE name = $1 AND sha256 = $2",
                    &[&name, &sha256],
                )
                .await?;
            row.map(|row| row.try_get(0))
                .transpose()
                .map_err(session.failed(ACTION))
        })
    }
}

/// Those of `sha256s` not stored for plugin `name`, in their order.
async fn missing<C: GenericClient + Sync>(
    session: &mut Session<'_, C>,
    action: &'static str,
    name: &str,
    sha256s: &[String],
) -> Result<Vec<String>, Error> {
    let rows = session
        .query(
            action,
            "SELECT sha256 FROM plugin_components WHERE name = $1 AND sha256 = ANY($2::text[])",
            &[&name, &sha256s],
        )
        .await?;
    let stored: Vec<String> = rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(session.failed(action))?;
    Ok(sha256s
        .iter()
        .filter(|sha256| !stored.contains(sha256))
        .cloned()
        .collect())
}
