//! The way of an event, one step per module. Handlers and commands call these functions; the
//! decisions live here, not in `api/` or `cli/`.
//!
//! [`ingest`] takes a webhook through its source plugin ([`sources`]) into the store, as
//! [`triggers`] do with clock ticks; [`process`] matches the stored event ([`matching`]),
//! hydrates it through its source, renders prompts (`crate::template`) and creates tasks;
//! [`dispatch`] sends them, with [`backoff`] and [`rate_limit`]; [`finish`] ends an event
//! once its tasks have; [`write_back`] filters
//! each result through its worker's policies ([`policy_chain`]) and writes the rest back, with
//! [`api_access`] deciding which API and credential a plugin gets;
//! [`recovery`] resumes after a crash; [`retention`] prunes; [`operator`] serves requests made
//! by hand.

pub mod api_access;
pub mod backoff;
pub mod dispatch;
pub mod finish;
pub mod ingest;
pub mod matching;
pub mod operator;
pub mod plugin_event;
pub mod policy_chain;
pub mod process;
pub mod rate_limit;
pub mod recovery;
pub mod retention;
pub mod sources;
pub mod triggers;
pub mod write_back;
