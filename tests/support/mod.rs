//! Support for the end-to-end tests.

pub mod daemon;
pub mod fixtures;
pub mod plugins;
pub mod worker;
