//! The plugins a daemon runs: the bundled ones and the installed ones. Names are unique per
//! world: the `github` source and the `github` responder are two plugins, the one that reads
//! GitHub's webhooks and the one that writes back to it. An installed plugin never takes a
//! bundled plugin's name, in any world: what the operator configured under that name (its
//! secrets, its token, its API origin) is meant for the bundled plugin.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Error;
use super::bundled;
use super::install::Installed;
use super::loader::{LoadedPlugin, Loader, Origin};
use super::world::World;

pub struct PluginRegistry {
    plugins: BTreeMap<(World, String), Arc<LoadedPlugin>>,
}

impl PluginRegistry {
    /// Loads every bundled plugin, then every installed one. An installed plugin that cannot be
    /// loaded is an error, and so is one with a bundled plugin's name (installed before such
    /// names were refused): running something else than what the operator installed would
    /// silently change what they asked for.
    pub async fn load(loader: &Loader, installed: &Installed) -> Result<PluginRegistry, Error> {
        let bundled = bundled::load(loader).await?;
        let mut plugins = BTreeMap::new();
        for plugin in bundled {
            plugins.insert((plugin.world, plugin.info.name.clone()), Arc::new(plugin));
        }
        for entry in installed.entries()? {
            if bundled::is_reserved(&entry.name) {
                return Err(Error::InstalledBundledName { name: entry.name });
            }
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
            plugins.insert((plugin.world, plugin.info.name.clone()), Arc::new(plugin));
        }
        Ok(PluginRegistry { plugins })
    }

    pub fn get(&self, world: World, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(&(world, name.to_owned()))
    }

    /// Every plugin named `name`, whatever its world.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Arc<LoadedPlugin>> {
        self.plugins
            .iter()
            .filter(move |((_, plugin), _)| plugin == name)
            .map(|(_, plugin)| plugin)
    }

    /// All plugins, by world and name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }
}
