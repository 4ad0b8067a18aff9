//! mecha: turns webhooks and schedules into tasks for AI-agent workers.
//!
//! Events enter through source plugins (WebAssembly components, see [`plugin`]), are stored
//! durably ([`store`]) and acknowledged, then flow through the [`pipeline`]. The daemon's HTTP
//! surface is in [`api`], the command line in [`cli`], configuration and secrets in [`config`].

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod digest;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod plugin;
pub mod redact;
pub mod regular_file;
pub mod signature;
pub mod store;
pub mod template;
pub mod trace;
pub mod worker;
