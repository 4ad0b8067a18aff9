//! Support for the end-to-end tests.

pub mod chat_apps;
pub mod daemon;
pub mod docker;
pub mod fixtures;
pub mod forge;
pub mod llm;
pub mod minisign;
pub mod otlp;
pub mod plugins;
pub mod registry;
pub mod sources;
pub mod stand_in;
pub mod toolchains;
pub mod worker;
