//! The store's one error type.
//!
//! Every variant names what failed and on which database (a SQLite file's path, or a PostgreSQL
//! URL without its password), and its message ends with the next step for the operator or the
//! caller. The variants common to both backends carry their cause boxed ([`Cause`]), so that
//! callers match on what went wrong, never on which database client reported it. Errors that
//! must reach several waiters at once (a failed batch commit) carry the cause as text, because
//! `rusqlite::Error` cannot be cloned.

use std::path::{Path, PathBuf};

use super::{EventId, EventState, TaskId, TaskState, WorkerState};

/// The database client's own error behind a [`Error::Query`], [`Error::Migration`] or
/// [`Error::Connect`].
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong in [`crate::store`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file could not be created or opened.
    #[error(
        "cannot open the database at {path}: {source}; check that the directory exists and is \
         writable by this user"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// The database file could not be created, or its permissions could not be set.
    #[error(
        "cannot create the database file {path} with owner-only permissions: {source}; check the \
         directory's ownership and permissions"
    )]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A connection setting (`PRAGMA`) was refused.
    #[error(
        "cannot set {pragma} on the database at {path}: {source}; the file may be on a file system \
         without locking support (use a local disk)"
    )]
    Pragma {
        path: PathBuf,
        pragma: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    /// SQLite kept another journal mode than WAL (some network file systems cannot do WAL).
    #[error(
        "the database at {path} stays in journal mode {mode} instead of WAL; put it on a local \
         file system"
    )]
    JournalMode { path: PathBuf, mode: String },

    /// A schema migration failed; its transaction was rolled back.
    #[error(
        "migration {name} (schema version {version}) failed on {database}: {source}; the \
         database was left at the previous version; restore a backup or report this as a bug"
    )]
    Migration {
        database: String,
        version: u32,
        name: &'static str,
        #[source]
        source: Cause,
    },

    /// The database was written by a newer mecha than this one.
    #[error(
        "database at {database} was written by a newer mecha (schema version {found}, this build \
         knows {known}); upgrade mecha"
    )]
    SchemaTooNew {
        database: String,
        found: i64,
        known: u32,
    },

    /// A query or statement failed.
    #[error("{action} on {database} failed: {source}; check the database and the log, then retry")]
    Query {
        database: String,
        action: &'static str,
        #[source]
        source: Cause,
    },

    /// No connection to the database server could be made.
    #[error(
        "cannot connect to the database at {database}: {source}; check that the server is \
         running and that database_url names it with the right user and password"
    )]
    Connect {
        database: String,
        #[source]
        source: Cause,
    },

    /// `database_url` is not a URL this mecha can open. The URL itself is not repeated: it may
    /// hold a password.
    #[error(
        "database_url is not usable: {reason}; expected sqlite://PATH or \
         postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    InvalidUrl { reason: String },

    /// The transaction carrying a batch of writes did not commit; none of them is stored.
    #[error(
        "the write batch on {database} did not commit, nothing in it was stored: {reason}; the sender \
         should retry"
    )]
    Commit { database: String, reason: String },

    /// An insert changed no row, and neither deduplication rule explains why.
    #[error(
        "event {id} was not stored in {database} and no earlier event explains why (an id \
         collision?); retry the delivery"
    )]
    NotInserted { database: String, id: EventId },

    /// The store no longer accepts writes: [`super::EventStore::close`] was called.
    #[error(
        "the store at {database} is closed because mecha is shutting down; retry after restart"
    )]
    Closed { database: String },

    /// The writer thread stopped without answering.
    #[error("the writer thread for {path} stopped unexpectedly; restart mecha and check the log")]
    WriterGone { path: PathBuf },

    /// The writer thread could not be started.
    #[error(
        "cannot start the writer thread for {path}: {source}; the system may be out of threads"
    )]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A blocking read task was cancelled or panicked.
    #[error(
        "a database task on {path} did not finish: {reason}; retry, and report it if it recurs"
    )]
    Task { path: PathBuf, reason: String },

    /// A lock around shared store state was poisoned by a panic elsewhere.
    #[error("the {what} lock of the store at {path} was poisoned by a panic; restart mecha")]
    Poisoned { path: PathBuf, what: &'static str },

    /// The system random source failed while making an event id.
    #[error("cannot make a random event id: {reason}; check the system's random source")]
    Random { reason: String },

    /// An event's attributes could not be encoded as JSON.
    #[error("cannot encode the attributes of an event from {source_name} as JSON: {reason}")]
    Encode { source_name: String, reason: String },

    /// A string is not an event id.
    #[error("{value:?} is not an event id; an id is 32 hexadecimal characters")]
    InvalidEventId { value: String },

    /// A string is not an event state.
    #[error(
        "{value:?} is not an event state; expected one of received, matched, dispatched, \
         completed, skipped, failed, write_back_failed"
    )]
    UnknownState { value: String },

    /// A guarded state change found the event missing or in another state.
    #[error(
        "event {id} does not exist or is not {from}, so it cannot move to {to}; fetch the event to \
         see its current state"
    )]
    InvalidTransition {
        id: EventId,
        from: EventState,
        to: EventState,
    },

    /// A value bound for a JSON column (a worker definition, a task context, an audit detail)
    /// could not be encoded.
    #[error("cannot encode {what} as JSON: {reason}; report this as a bug")]
    EncodeJson { what: String, reason: String },

    /// A string is not a task id.
    #[error("{value:?} is not a task id; an id is 32 hexadecimal characters")]
    InvalidTaskId { value: String },

    /// A string is not a worker state.
    #[error("{value:?} is not a worker state; expected one of offline, online, busy, error")]
    UnknownWorkerState { value: String },

    /// A string is not a task state.
    #[error(
        "{value:?} is not a task state; expected one of pending, dispatched, completed, failed"
    )]
    UnknownTaskState { value: String },

    /// A string is not a write-back state.
    #[error("{value:?} is not a write-back state; expected one of '', pending, done, failed")]
    UnknownWriteBackState { value: String },

    /// A stored body names a codec this mecha does not know.
    #[error("{value:?} is not a body codec; expected one of identity, zstd")]
    UnknownBodyCodec { value: String },

    /// A string is not an audit outcome.
    #[error("{value:?} is not an audit outcome; expected one of ok, fail, skip, retry, deny")]
    UnknownAuditOutcome { value: String },

    /// A worker being added has the name of one already stored; none of the batch was added.
    #[error(
        "a worker named {name} already exists, so none of the workers were added; rename the new \
         worker or remove the old one first"
    )]
    WorkerExists { name: String },

    /// No worker has this name.
    #[error("no worker is named {name:?}; check the name against the list of workers")]
    WorkerNotFound { name: String },

    /// A shared plugin change named a component that another change has dropped since.
    #[error(
        "a component of plugin {name} (sha256 {sha256}) is no longer in the database: another \
         daemon's change to {name} replaced it meanwhile; run the command again"
    )]
    PluginComponentMissing { name: String, sha256: String },

    /// Only an offline worker can be removed.
    #[error("worker {name} is {state}; stop it (so that it is offline) before removing it")]
    WorkerNotOffline { name: String, state: WorkerState },

    /// A guarded worker state change found the worker in a state it may not leave that way.
    #[error(
        "worker {name} is not in a state from which it can become {to}; fetch the worker to see \
         its current state"
    )]
    InvalidWorkerTransition { name: String, to: WorkerState },

    /// A guarded task state change found the task missing or in another state.
    #[error(
        "task {id} does not exist or cannot become {to} from its current state; fetch the task to \
         see its state"
    )]
    InvalidTaskTransition { id: TaskId, to: TaskState },

    /// A task insert changed no row, and no earlier task with its dedup key explains why.
    #[error(
        "task {id} was not stored in {database} and no earlier task explains why (an id \
         collision?); retry"
    )]
    TaskNotInserted { database: String, id: TaskId },
}

/// The mapping of a failed statement to [`Error::Query`], for `map_err`.
pub(super) fn query_error(path: &Path, action: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    let database = path.display().to_string();
    move |source| Error::Query {
        database: database.clone(),
        action,
        source: Box::new(source),
    }
}

/// `value` as JSON text for a column; `what` names it in the error.
pub(super) fn encode_json(
    value: &serde_json::Value,
    what: impl FnOnce() -> String,
) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|error| Error::EncodeJson {
        what: what(),
        reason: error.to_string(),
    })
}

/// Longest user-supplied value quoted back in an error message.
///
/// 64 characters: twice an event id, enough to recognise a value without echoing a whole body.
pub(super) const QUOTE_LIMIT: usize = 64;

/// `value`, cut to [`QUOTE_LIMIT`] characters for an error message.
pub(super) fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_too_new_says_what_to_do() {
        let error = Error::SchemaTooNew {
            database: "/var/lib/mecha/mecha.db".into(),
            found: 9,
            known: 1,
        };
        assert_eq!(
            error.to_string(),
            "database at /var/lib/mecha/mecha.db was written by a newer mecha (schema version 9, \
             this build knows 1); upgrade mecha"
        );
    }

    #[test]
    fn quote_cuts_long_values() {
        assert_eq!(quote("abc"), "abc");
        let long = "x".repeat(100);
        assert_eq!(quote(&long), format!("{}...", "x".repeat(QUOTE_LIMIT)));
    }
}
