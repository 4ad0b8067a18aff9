//! [`PostgresStore`]: the store on a PostgreSQL database, which several daemons may share.
//!
//! Every write is one transaction on a pooled connection (`pool.rs`), and a method returns
//! once it has committed: PostgreSQL's own group commit shares the WAL flush of transactions
//! that commit together, as the SQLite writer thread does by hand. Reads run on the same pool.
//! The queries are the SQLite backend's, in PostgreSQL's dialect, so both answer alike; the
//! conformance tests (`store/conformance.rs`) run the same checks on both.
//!
//! What SQLite gets from its single writer, several daemons get here from the database:
//! - a redelivery is a duplicate whichever daemon receives it (the unique delivery index, and
//!   `ON CONFLICT DO NOTHING` waiting for the other transaction's outcome);
//! - a dedup key, and a signed request's digest, are checked under a transaction-scoped
//!   advisory lock on their value, so two daemons cannot both find them free;
//! - every move of a task is a guarded `UPDATE`, which PostgreSQL re-checks against the row's
//!   latest version when another transaction changed it first: of two claims, one wins.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Mutex;

use super::events::{EncodedEvent, EventFilter, EventRecord, EventSummary, InsertOutcome};
use super::signed_deliveries::{SignedDigest, SignedInsert};
use super::{
    About, Describe, Error, EventId, EventState, EventStore, NewEvent, StoreFuture, timestamp,
};

mod audit;
mod batch;
mod events;
mod migrations;
mod notices;
mod plugin_installs;
mod pool;
mod tasks;
mod tls;
mod workers;

use audit::AuditWriter;
use pool::Pool;

/// Classes of the advisory locks mecha takes (the first key of `pg_advisory_xact_lock(int,
/// int)`; the second is a hash of the value locked), so that locks of different kinds never
/// wait for each other.
mod lock {
    /// Migrating the schema: one daemon at a time.
    pub(super) const SCHEMA: i32 = 1;
    /// Checking and taking a dedup key.
    pub(super) const DEDUP_KEY: i32 = 2;
    /// Checking and recording a signed request's digest.
    pub(super) const SIGNED: i32 = 3;
    /// Pruning old rows: one daemon at a time.
    pub(super) const RETENTION: i32 = 4;
    /// Sharing a plugin install: one publication at a time, so revisions follow commits.
    pub(super) const PLUGIN_INSTALLS: i32 = 5;
}

/// The store on a PostgreSQL database.
pub struct PostgresStore {
    pool: Arc<Pool>,
    /// Connections whose commits do not wait for the disk (`synchronous_commit=off`), for the
    /// writes a power loss may take because the daemons redo them: claims, lease renewals and
    /// releases, an event's tasks with its move, write-back claims and audit entries. The next
    /// durable commit flushes them, as on SQLite (see `Request::may_skip_sync`).
    relaxed: Arc<Pool>,
    /// Set by [`EventStore::close`]: writes are refused from then on, reads still work.
    closed: AtomicBool,
    audit: Mutex<Option<AuditWriter>>,
    audit_queue: audit::Queue,
    /// Stores events without a dedup key in shared transactions (`batch.rs`).
    inserts: batch::InsertBatcher,
    /// Counts other daemons' notifications (`notices.rs`), once a daemon asks for them: a CLI
    /// command never opens the listening connection.
    notices: notices::Notices,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`, or
    /// PostgreSQL's `key=value` form) and brings its schema up to date; several daemons starting
    /// at once migrate one after the other.
    ///
    /// Fails if the URL is not understood, the server cannot be reached or refuses the login,
    /// or a newer mecha migrated the database.
    pub async fn open(url: &str) -> Result<PostgresStore, Error> {
        let (config, root_cert) = parse(url)?;
        let tls =
            tls::Tls::new(root_cert.as_deref()).map_err(|reason| Error::InvalidUrl { reason })?;
        let database = describe(&config);
        let pool = Arc::new(Pool::new(
            config.clone(),
            tls.clone(),
            database.clone(),
            pool::CONNECTIONS,
        ));
        {
            let mut connection = pool.get().await?;
            migrations::migrate(&mut connection).await?;
        }
        let notices = notices::Notices::new(config.clone(), tls.clone(), database.clone());
        let mut relaxed = config;
        relaxed.options("-c synchronous_commit=off");
        let relaxed = Arc::new(Pool::new(relaxed, tls, database, pool::CONNECTIONS / 2));
        let (audit_queue, audit) = AuditWriter::spawn(Arc::clone(&relaxed));
        Ok(PostgresStore {
            relaxed,
            closed: AtomicBool::new(false),
            audit: Mutex::new(Some(audit)),
            audit_queue,
            inserts: batch::InsertBatcher::spawn(Arc::clone(&pool)),
            pool,
            notices,
        })
    }

    /// A connection for a write, unless the store is closed.
    async fn writing(&self) -> Result<pool::Pooled<'_>, Error> {
        self.open_for_writes()?;
        self.pool.get().await
    }

    /// A connection for a write that may commit without waiting for the disk (see
    /// [`PostgresStore::relaxed`]), unless the store is closed.
    async fn writing_relaxed(&self) -> Result<pool::Pooled<'_>, Error> {
        self.open_for_writes()?;
        self.relaxed.get().await
    }

    fn open_for_writes(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed {
                database: self.database().to_owned(),
            });
        }
        Ok(())
    }

    /// The database, as logs and errors name it: its URL without the password.
    pub fn database(&self) -> &str {
        self.pool.database()
    }
}

impl Describe for PostgresStore {
    fn about(&self) -> StoreFuture<'_, About> {
        Box::pin(async move {
            const ACTION: &str = "describing the database";
            let mut connection = self.pool.get().await?;
            let (schema, known) = migrations::version(&mut connection).await?;
            let mut session = connection.session();
            let row = session
                .query_opt(ACTION, "SHOW server_version", &[])
                .await?;
            let version: String = match row {
                Some(row) => row.try_get(0).map_err(session.failed(ACTION))?,
                None => String::new(),
            };
            Ok(About {
                database: self.database().to_owned(),
                server: format!("PostgreSQL {version}"),
                schema,
                known,
            })
        })
    }
}

/// The connection settings of `url`, and the file of the certificate authority its
/// `sslrootcert` parameter names (as libpq calls it; tokio-postgres does not know it, so it is
/// taken out before the rest is read). The error never repeats the URL: it may hold a password.
pub(super) fn parse(url: &str) -> Result<(tokio_postgres::Config, Option<PathBuf>), Error> {
    let mut root_cert = None;
    let url = match url.split_once('?') {
        Some((base, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|parameter| match parameter.strip_prefix("sslrootcert=") {
                    Some(path) => {
                        root_cert = Some(PathBuf::from(
                            percent_encoding::percent_decode_str(path)
                                .decode_utf8_lossy()
                                .into_owned(),
                        ));
                        false
                    }
                    None => true,
                })
                .collect();
            if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        }
        None => url.to_owned(),
    };
    let config = url.parse().map_err(|error| Error::InvalidUrl {
        reason: format!("{error}"),
    })?;
    Ok((config, root_cert))
}

/// `postgres://USER@HOST:PORT/DATABASE` for `config`: what errors and logs show, without the
/// password.
pub(super) fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let port = config
                .get_ports()
                .get(index)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        config.get_user().unwrap_or_default(),
        hosts.join(","),
        config.get_dbname().unwrap_or_default()
    )
}

impl EventStore for PostgresStore {
    fn insert(&self, event: NewEvent) -> StoreFuture<'_, InsertOutcome> {
        // Compressed here, on the caller's task, before a connection is taken.
        let event = EncodedEvent::from(event);
        Box::pin(async move {
            if event.event.dedup_key.as_deref().is_none_or(str::is_empty) {
                self.open_for_writes()?;
                return self.inserts.insert(event).await;
            }
            let mut connection = self.writing().await?;
            let mut transaction = connection.transaction().await?;
            let outcome =
                events::insert(&mut transaction.session(), event, timestamp::now()).await?;
            transaction.commit().await?;
            Ok(outcome)
        })
    }

    fn insert_signed(
        &self,
        source: &str,
        digest: SignedDigest,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'_, SignedInsert> {
        let source = source.to_owned();
        let events: Vec<EncodedEvent> = events.into_iter().map(Into::into).collect();
        Box::pin(async move {
            let mut connection = self.writing().await?;
            let mut transaction = connection.transaction().await?;
            let outcome = events::insert_signed(
                &mut transaction.session(),
                &source,
                digest,
                events,
                timestamp::now(),
            )
            .await?;
            transaction.commit().await?;
            Ok(outcome)
        })
    }

    fn get(&self, id: &EventId) -> StoreFuture<'_, Option<EventRecord>> {
        let id = id.clone();
        Box::pin(async move {
            let mut connection = self.pool.get().await?;
            events::get(&mut connection.session(), &id).await
        })
    }

    fn list(&self, filter: EventFilter) -> StoreFuture<'_, Vec<EventRecord>> {
        Box::pin(async move {
            let mut connection = self.pool.get().await?;
            events::list(&mut connection.session(), &filter).await
        })
    }

    fn list_summaries(&self, filter: EventFilter) -> StoreFuture<'_, Vec<EventSummary>> {
        Box::pin(async move {
            let mut connection = self.pool.get().await?;
            events::list_summaries(&mut connection.session(), &filter).await
        })
    }

    fn transition(&self, id: &EventId, from: EventState, to: EventState) -> StoreFuture<'_, ()> {
        let id = id.clone();
        Box::pin(async move {
            let mut connection = self.writing().await?;
            events::transition(&mut connection.session(), id, from, to, timestamp::now()).await
        })
    }

    fn set_attrs(
        &self,
        id: &EventId,
        attrs: serde_json::Map<String, serde_json::Value>,
    ) -> StoreFuture<'_, bool> {
        let id = id.clone();
        Box::pin(async move {
            let mut connection = self.writing().await?;
            events::set_attrs(&mut connection.session(), &id, &attrs, timestamp::now()).await
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.closed.store(true, Ordering::Release);
            // The audit entries queued so far are written first: they describe what happened.
            // Dropping the queue's sender ends the writer once it has written them.
            drop(
                self.audit_queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take(),
            );
            if let Some(audit) = self.audit.lock().await.take() {
                audit.finish().await;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Database;

    async fn synchronous_commit(pool: &Pool) -> String {
        let mut connection = pool.get().await.unwrap();
        let row = connection
            .session()
            .query_opt("reading a setting", "SHOW synchronous_commit", &[])
            .await
            .unwrap()
            .unwrap();
        row.get(0)
    }

    /// Writes that must be durable when they return wait for the disk; those the daemons redo
    /// after a loss do not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_writes_that_can_be_redone_skip_the_wait_for_the_disk() {
        let Some(url) = super::super::conformance::postgres_database().await else {
            return;
        };
        let store = PostgresStore::open(&url).await.unwrap();
        assert_eq!(synchronous_commit(&store.pool).await, "on");
        assert_eq!(synchronous_commit(&store.relaxed).await, "off");
    }

    /// Over TLS the server's certificate is verified, against the authority `sslrootcert`
    /// names; a server that cannot prove its name is refused, not trusted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_connections_verify_the_server() {
        if !mecha_test_postgres::available() {
            return;
        }
        let server = tokio::task::spawn_blocking(mecha_test_postgres::Server::start_tls)
            .await
            .unwrap()
            .unwrap();
        let url = server.fresh_database();
        let ca = server.ca_file().unwrap();
        let verified = format!("{url}?sslmode=require&sslrootcert={}", ca.display());
        let store = PostgresStore::open(&verified).await.unwrap();
        let mut connection = store.pool.get().await.unwrap();
        let row = connection
            .session()
            .query_opt(
                "reading the connection's encryption",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .unwrap();
        assert!(row.get::<_, bool>(0), "the connection is encrypted");
        assert_eq!(
            Database::from_url(Some(&verified), std::path::Path::new(""))
                .unwrap()
                .password()
                .as_deref(),
            Some(server.password())
        );

        let unverified = format!("{url}?sslmode=require");
        let error = PostgresStore::open(&unverified)
            .await
            .err()
            .expect("refused");
        let text = error.to_string();
        assert!(matches!(error, Error::Connect { .. }), "{text}");
        assert!(text.contains("certificate"), "{text}");
        assert!(!text.contains(server.password()), "{text}");
    }
}
