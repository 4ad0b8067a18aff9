//! Durable storage of events (SQLite).
//!
//! This module owns every byte mecha keeps on disk about events: the schema and its migrations,
//! the SQL, and the promise behind a webhook's 202, namely that once [`EventStore::insert`]
//! returns, the event is committed to disk. It knows nothing of plugins, rules or HTTP: the
//! pipeline and the API call the [`EventStore`] trait and never hold SQL themselves.
//!
//! The trait is the seam: today [`SqliteStore`] implements it on one file, with a single
//! group-commit writer thread (see `writer.rs`) for throughput and pooled read connections; a
//! PostgreSQL store for several daemons sharing one database can be added beside it without
//! touching its callers. Methods return boxed futures ([`StoreFuture`]) so that the store can be
//! shared as `Arc<dyn EventStore>`.
//!
//! ```no_run
//! # async fn example() -> Result<(), mecha::store::Error> {
//! use std::sync::Arc;
//! use mecha::store::{Durability, EventStore, InsertOutcome, NewEvent, SqliteStore};
//!
//! let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(
//!     std::path::Path::new("/var/lib/mecha/mecha.db"),
//!     Durability::Full,
//! )?);
//! let event = NewEvent {
//!     source: "github".into(),
//!     event_type: "pull_request".into(),
//!     delivery_id: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
//!     ..NewEvent::default()
//! };
//! match store.insert(event).await? {
//!     InsertOutcome::Inserted(record) => println!("stored {}", record.id),
//!     InsertOutcome::Duplicate { existing } => println!("already have it as {existing}"),
//! }
//! store.close().await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;

mod error;
mod event_id;
mod event_state;
mod events;
mod migrations;
mod sqlite;
pub mod timestamp;
mod writer;

pub use error::Error;
pub use event_id::EventId;
pub use event_state::EventState;
pub use events::{
    DEFAULT_LIST_LIMIT, EventFilter, EventRecord, InsertOutcome, MAX_LIST_LIMIT, NewEvent,
};
pub use sqlite::{Durability, SqliteStore};
pub use writer::WriterStats;

/// The future every [`EventStore`] method returns: boxed and `Send`, so that the trait stays
/// object-safe and usable across tokio tasks.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Storage of events, whatever the database behind it.
pub trait EventStore: Send + Sync + 'static {
    /// Stores a new event in state `received`, or reports the earlier event it duplicates (same
    /// source and delivery id, or a dedup key held by an unfinished event). When this returns
    /// `Ok`, the outcome is durable.
    fn insert(&self, event: NewEvent) -> StoreFuture<'_, InsertOutcome>;

    /// The event with this id, if it is stored.
    fn get(&self, id: &EventId) -> StoreFuture<'_, Option<EventRecord>>;

    /// Events matching `filter`, newest first.
    fn list(&self, filter: EventFilter) -> StoreFuture<'_, Vec<EventRecord>>;

    /// Moves an event from `from` to `to`, only if it is in `from` now; otherwise fails with
    /// [`Error::InvalidTransition`]. Guards against two tasks moving the same event at once.
    fn transition(&self, id: &EventId, from: EventState, to: EventState) -> StoreFuture<'_, ()>;

    /// Stops accepting writes, finishes the writes already queued, and releases the writer.
    /// Reads keep working. Called once on graceful shutdown; calling it again does nothing.
    fn close(&self) -> StoreFuture<'_, ()>;
}
