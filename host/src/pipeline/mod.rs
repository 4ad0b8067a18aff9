//! The way of an event, one step per module. Handlers and commands call these functions; the
//! decisions live here, not in `api/` or `cli/`.
//!
//! So far: [`sources`] (the source instances a daemon serves) and [`ingest`] (a webhook request
//! through its source plugin into the store).

pub mod ingest;
pub mod sources;
