//! The plugins built into the `mecha` binary, so a fresh install runs with no other files.
//! `build.rs` compiles them from `plugins/` for wasm32-wasip2.
//!
//! Their names are reserved: the operator's settings, secrets and tokens for `github` (and
//! `GITHUB_API_URL`) are meant for the bundled `github`, so an installed plugin may not take a
//! bundled plugin's name (see `install.rs` and `registry.rs`).

use std::collections::BTreeSet;

use super::Error;
use super::loader::{LoadedPlugin, Loader, Origin};

/// (file label, component bytes) of each bundled plugin.
pub const BUNDLED: &[(&str, &[u8])] = &[
    (
        "github.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/github.wasm")),
    ),
    (
        "generic.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/generic.wasm")),
    ),
    (
        "gitlab.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/gitlab.wasm")),
    ),
    (
        "telegram.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/telegram.wasm")),
    ),
    (
        "slack.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/slack.wasm")),
    ),
    (
        "cron.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/cron.wasm")),
    ),
    (
        "rules.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/rules.wasm")),
    ),
    (
        "github-responder.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/github-responder.wasm")),
    ),
    (
        "gitlab-responder.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/gitlab-responder.wasm")),
    ),
];

/// Loads every bundled plugin.
pub async fn load(loader: &Loader) -> Result<Vec<LoadedPlugin>, Error> {
    let mut plugins = Vec::with_capacity(BUNDLED.len());
    for (label, wasm) in BUNDLED {
        plugins.push(loader.load(label, wasm, Origin::Bundled).await?);
    }
    Ok(plugins)
}

/// The names the bundled plugins give themselves, which installed plugins may not take.
pub fn names(bundled: &[LoadedPlugin]) -> BTreeSet<String> {
    bundled
        .iter()
        .map(|plugin| plugin.info.name.clone())
        .collect()
}
