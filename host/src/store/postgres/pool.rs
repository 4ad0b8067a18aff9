//! The PostgreSQL store's connections: a few kept open, each with its prepared statements.
//!
//! A store method takes a [`Pooled`] connection for the length of its work (a read, or one
//! transaction) and gives it back when dropped. At most [`CONNECTIONS`] exist at once, so a
//! burst of webhooks queues here instead of exhausting the server's `max_connections`, which
//! several daemons share. A connection the server closed is dropped, not given back, and a new
//! one is made on demand. Each connection keeps the statements it prepared: a query is parsed
//! and planned once per connection, not once per call.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Row, Statement, Transaction};

use super::tls::Tls;

use crate::store::Error;
use crate::store::error::Cause;

/// 16 connections per daemon for what must be durable when it returns, and half as many for
/// writes that may skip the wait for the disk: more than the work a daemon on a few cores keeps
/// in flight (the server runs one process per connection), and three daemons stay well under
/// PostgreSQL's default `max_connections` of 100.
pub(super) const CONNECTIONS: usize = 16;

/// The connections to one database.
pub(super) struct Pool {
    config: tokio_postgres::Config,
    tls: Tls,
    /// The database as errors name it, without its password.
    database: Arc<str>,
    idle: Mutex<Vec<Connection>>,
    turns: Semaphore,
}

/// One connection and the statements prepared on it.
pub(super) struct Connection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    database: Arc<str>,
}

/// A connection taken from the pool; given back when dropped.
pub(super) struct Pooled<'a> {
    connection: Option<Connection>,
    pool: &'a Pool,
    _turn: SemaphorePermit<'a>,
}

impl Pool {
    /// At most `connections` connections to `config`'s database, which errors name `database`.
    pub(super) fn new(
        config: tokio_postgres::Config,
        tls: Tls,
        database: String,
        connections: usize,
    ) -> Pool {
        Pool {
            config,
            tls,
            database: database.into(),
            idle: Mutex::new(Vec::new()),
            turns: Semaphore::new(connections),
        }
    }

    /// The database as errors name it.
    pub(super) fn database(&self) -> &str {
        &self.database
    }

    /// A connection, once one of the pool's turns is free: an idle one, or a new one.
    pub(super) async fn get(&self) -> Result<Pooled<'_>, Error> {
        let turn = self.turns.acquire().await.map_err(|_| Error::Closed {
            database: self.database.to_string(),
        })?;
        let idle = loop {
            let next = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match next {
                Some(connection) if connection.client.is_closed() => continue,
                other => break other,
            }
        };
        let connection = match idle {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        Ok(Pooled {
            connection: Some(connection),
            pool: self,
            _turn: turn,
        })
    }

    /// A new connection, whose I/O runs on a task of its own until the client is dropped.
    pub(super) async fn connect(&self) -> Result<Connection, Error> {
        let (client, connection) =
            self.config
                .connect(self.tls.clone())
                .await
                .map_err(|source| Error::Connect {
                    database: self.database.to_string(),
                    // With its causes: tokio-postgres says "error performing TLS handshake" and
                    // keeps why (an unknown certificate authority, say) in its source.
                    source: with_causes(&source).into(),
                })?;
        let database = Arc::clone(&self.database);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%database, %error, "a connection to the database ended");
            }
        });
        Ok(Connection {
            client,
            statements: HashMap::new(),
            database: Arc::clone(&self.database),
        })
    }
}

impl Deref for Pooled<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.connection.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take()
            && !connection.client.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
        }
    }
}

impl Connection {
    /// Statements on the connection itself, each its own transaction.
    pub(super) fn session(&mut self) -> Session<'_, Client> {
        Session {
            client: &self.client,
            statements: &mut self.statements,
            database: &self.database,
        }
    }

    /// Begins a transaction; it rolls back unless [`Transacted::commit`] is called.
    pub(super) async fn transaction(&mut self) -> Result<Transacted<'_>, Error> {
        let transaction = self
            .client
            .transaction()
            .await
            .map_err(failed(&self.database, "beginning a transaction"))?;
        Ok(Transacted {
            transaction,
            statements: &mut self.statements,
            database: &self.database,
        })
    }
}

/// A transaction and its connection's prepared statements.
pub(super) struct Transacted<'a> {
    transaction: Transaction<'a>,
    statements: &'a mut HashMap<&'static str, Statement>,
    database: &'a str,
}

impl<'a> Transacted<'a> {
    /// Statements inside the transaction.
    pub(super) fn session(&mut self) -> Session<'_, Transaction<'a>> {
        Session {
            client: &self.transaction,
            statements: self.statements,
            database: self.database,
        }
    }

    /// Runs `sql` (several statements, no parameters) in the transaction.
    pub(super) async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.transaction
            .batch_execute(sql)
            .await
            .map_err(failed(self.database, "running a migration"))
    }

    /// Commits; when this returns `Ok`, the transaction is durable.
    pub(super) async fn commit(self) -> Result<(), Error> {
        let database = self.database;
        self.transaction
            .commit()
            .await
            .map_err(failed(database, "committing a transaction"))
    }
}

/// `error` and every error it was caused by, as one line.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// The mapping of a failure while doing `action` on `database` to [`Error::Query`].
pub(super) fn failed<E: Into<Cause>>(database: &str, action: &'static str) -> impl Fn(E) -> Error {
    let database = database.to_owned();
    move |source| Error::Query {
        database: database.clone(),
        action,
        source: source.into(),
    }
}

/// Runs prepared statements on a connection or in a transaction. The SQL is a `&'static str`:
/// each query's text is a constant (or one of a few built from constants), which is what makes
/// caching its statement per connection bounded.
pub(super) struct Session<'a, C> {
    client: &'a C,
    statements: &'a mut HashMap<&'static str, Statement>,
    database: &'a str,
}

/// A statement's parameters.
pub(super) type Params<'p> = [&'p (dyn ToSql + Sync)];

impl<C: GenericClient + Sync> Session<'_, C> {
    async fn prepared(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// The rows of `sql`, run for `action` (which a failure names).
    pub(super) async fn query(
        &mut self,
        action: &'static str,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, Error> {
        let rows = match self.prepared(sql).await {
            Ok(statement) => self.client.query(&statement, params).await,
            Err(error) => Err(error),
        };
        rows.map_err(self.failed(action))
    }

    /// The row of `sql`, if it returns one.
    pub(super) async fn query_opt(
        &mut self,
        action: &'static str,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, Error> {
        let row = match self.prepared(sql).await {
            Ok(statement) => self.client.query_opt(&statement, params).await,
            Err(error) => Err(error),
        };
        row.map_err(self.failed(action))
    }

    /// How many rows `sql` changed.
    pub(super) async fn execute(
        &mut self,
        action: &'static str,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<u64, Error> {
        let changed = match self.prepared(sql).await {
            Ok(statement) => self.client.execute(&statement, params).await,
            Err(error) => Err(error),
        };
        changed.map_err(self.failed(action))
    }

    /// Waits for, and takes until the transaction ends, the advisory lock of a whole `class`
    /// (`super::lock`): what it guards runs on one daemon at a time.
    pub(super) async fn lock_class(
        &mut self,
        action: &'static str,
        class: i32,
    ) -> Result<(), Error> {
        self.query(action, "SELECT pg_advisory_xact_lock($1, 0)", &[&class])
            .await
            .map(drop)
    }

    /// The database, as errors name it.
    pub(super) fn database(&self) -> &str {
        self.database
    }

    /// The mapping of a failure while doing `action` (a row that cannot be decoded, say).
    pub(super) fn failed<E: Into<Cause>>(&self, action: &'static str) -> impl Fn(E) -> Error {
        failed(self.database, action)
    }
}
