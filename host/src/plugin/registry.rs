//! The plugins a daemon runs: the bundled ones, overridden by installed ones of the same name.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Error;
use super::bundled::BUNDLED;
use super::install::Installed;
use super::loader::{LoadedPlugin, Loader, Origin};

pub struct PluginRegistry {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
}

impl PluginRegistry {
    /// Loads every bundled plugin, then every installed one. An installed plugin that cannot be
    /// loaded is an error: running the bundled plugin it was meant to replace instead would
    /// silently change what the operator asked for.
    pub async fn load(loader: &Loader, installed: &Installed) -> Result<PluginRegistry, Error> {
        let mut plugins = BTreeMap::new();
        for (label, wasm) in BUNDLED {
            let plugin = loader.load(label, wasm, Origin::Bundled).await?;
            plugins.insert(plugin.info.name.clone(), Arc::new(plugin));
        }
        for entry in installed.entries()? {
            let (path, wasm) = installed.read(&entry)?;
            let plugin = loader
                .load(&entry.name, &wasm, Origin::Installed(path))
                .await?;
            if plugin.info.name != entry.name {
                return Err(Error::Lock(format!(
                    "installed plugin {} now calls itself {}; reinstall it",
                    entry.name, plugin.info.name
                )));
            }
            plugins.insert(plugin.info.name.clone(), Arc::new(plugin));
        }
        Ok(PluginRegistry { plugins })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(name)
    }

    /// All plugins, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }
}
