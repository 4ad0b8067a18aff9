//! The way of an event, one step per module. Handlers and commands call these functions; the
//! decisions live here, not in `api/` or `cli/`.
//!
//! [`ingest`] takes a webhook through its source plugin ([`sources`]) into the store;
//! [`process`] matches the stored event ([`matching`]), renders prompts ([`render`]) and creates
//! tasks; [`dispatch`] sends them, with [`backoff`] and [`rate_limit`]; [`write_back`] filters
//! each result through its worker's policies ([`policy_chain`]) and writes the rest back;
//! [`recovery`] resumes after a crash; [`retention`] prunes; [`operator`] serves requests made
//! by hand.

pub mod backoff;
pub mod dispatch;
pub mod ingest;
pub mod matching;
pub mod operator;
pub mod policy_chain;
pub mod process;
pub mod rate_limit;
pub mod recovery;
pub mod render;
pub mod retention;
pub mod sources;
pub mod write_back;
