//! The plugins built into the `mecha` binary, so a fresh install runs with no other files.
//! `build.rs` compiles them from `plugins/` for wasm32-wasip2.
//!
//! Their names are reserved: the operator's settings, secrets and tokens for `github` (and
//! `GITHUB_API_URL`) are meant for the bundled `github`, so an installed plugin may not take a
//! bundled plugin's name (see `install.rs` and `registry.rs`).

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
    (
        "slack-responder.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/slack-responder.wasm")),
    ),
    (
        "telegram-responder.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/telegram-responder.wasm")),
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

/// The names the bundled plugins give themselves (`describe`), which installed plugins may not
/// take. Written out so that an install need not load every bundled plugin to learn them; a
/// test checks them against what the plugins say.
pub const RESERVED_NAMES: &[&str] = &[
    "cron", "generic", "github", "gitlab", "rules", "slack", "telegram",
];

/// Whether `name` is a bundled plugin's.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::plugin::Runtime;
    use crate::plugin::engine::RuntimeOptions;

    #[tokio::test]
    async fn the_reserved_names_are_those_the_bundled_plugins_give() {
        let runtime = Arc::new(Runtime::new(RuntimeOptions::with_pool(2)).expect("runtime"));
        let loader = Loader::new(runtime, None).expect("loader");
        let named: BTreeSet<String> = load(&loader)
            .await
            .expect("bundled plugins load")
            .into_iter()
            .map(|plugin| plugin.info.name)
            .collect();
        let reserved: BTreeSet<String> =
            RESERVED_NAMES.iter().map(|name| name.to_string()).collect();
        assert_eq!(named, reserved);
    }
}
