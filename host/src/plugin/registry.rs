//! The plugins a daemon runs: the bundled ones and the installed ones. Names are unique per
//! world: the `github` source and the `github` responder are two plugins, the one that reads
//! GitHub's webhooks and the one that writes back to it.
//!
//! An installed plugin takes a bundled plugin's name only when the operator installed it in the
//! bundled one's place (`mecha plugin install --replace-bundled`), having been shown that it
//! receives what `config.yml` and `secrets.yml` hold under that name; it then replaces the
//! bundled plugin of its world. Each installed plugin runs with what it was granted
//! (`grants.rs`), not with whatever it declares.
//!
//! A running daemon holds its registry in [`LivePlugins`] and swaps in a new one when the
//! installed plugins change; a call in flight keeps the plugin it started with.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::Error;
use super::bundled;
use super::install::{Installed, LockEntry, Version};
use super::loader::{LoadedPlugin, Loader, Origin};
use super::world::World;

pub struct PluginRegistry {
    plugins: BTreeMap<(World, String), Arc<LoadedPlugin>>,
    /// The bundled plugins, kept to build the next registry without loading them again.
    bundled: Vec<Arc<LoadedPlugin>>,
    /// Each installed plugin with the lock record it was loaded from, so that the next registry
    /// reuses those whose record did not change instead of loading them again.
    installed: Vec<(Version, Arc<LoadedPlugin>)>,
}

impl PluginRegistry {
    /// Loads every bundled plugin, then every installed one. An installed plugin that cannot be
    /// loaded is an error, and so is one with a bundled plugin's name that was not installed in
    /// its place: running something else than what the operator installed would silently
    /// change what they asked for.
    pub async fn load(loader: &Loader, installed: &Installed) -> Result<PluginRegistry, Error> {
        let bundled = bundled::load(loader)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        PluginRegistry::with_installed(bundled, &[], loader, installed).await
    }

    /// A registry of this one's bundled plugins and the plugins installed now; those whose
    /// lock record is unchanged are this registry's, not loaded again.
    pub async fn reloaded(
        &self,
        loader: &Loader,
        installed: &Installed,
    ) -> Result<PluginRegistry, Error> {
        PluginRegistry::with_installed(self.bundled.clone(), &self.installed, loader, installed)
            .await
    }

    async fn with_installed(
        bundled: Vec<Arc<LoadedPlugin>>,
        loaded: &[(Version, Arc<LoadedPlugin>)],
        loader: &Loader,
        installed: &Installed,
    ) -> Result<PluginRegistry, Error> {
        let mut plugins = BTreeMap::new();
        for plugin in &bundled {
            plugins.insert((plugin.world, plugin.info.name.clone()), plugin.clone());
        }
        let mut now_installed = Vec::new();
        for entry in installed.entries()? {
            let reused = loaded
                .iter()
                .find(|(version, plugin)| {
                    *version == entry.current && plugin.info.name == entry.name
                })
                .map(|(_, plugin)| plugin.clone());
            let plugin = match reused {
                Some(plugin) => plugin,
                None => Arc::new(load_installed(loader, installed, &entry).await?),
            };
            plugins.insert((plugin.world, plugin.info.name.clone()), plugin.clone());
            now_installed.push((entry.current, plugin));
        }
        Ok(PluginRegistry {
            plugins,
            bundled,
            installed: now_installed,
        })
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

/// The current version of the installed plugin `entry`, narrowed to what it was granted.
async fn load_installed(
    loader: &Loader,
    installed: &Installed,
    entry: &LockEntry,
) -> Result<LoadedPlugin, Error> {
    let version = &entry.current;
    if bundled::is_reserved(&entry.name) && !version.replaces_bundled {
        return Err(Error::InstalledBundledName {
            name: entry.name.clone(),
        });
    }
    let (path, wasm) = installed.read(&entry.name, version)?;
    let mut plugin = loader
        .load(&entry.name, &wasm, Origin::Installed(path))
        .await?;
    if plugin.info.name != entry.name {
        return Err(Error::Lock(format!(
            "installed plugin {} now calls itself {}; reinstall it",
            entry.name, plugin.info.name
        )));
    }
    if let Some(granted) = &version.granted {
        granted.narrow(&mut plugin.info);
    }
    Ok(plugin)
}

/// The registry a running daemon uses now.
pub struct LivePlugins {
    current: RwLock<Arc<PluginRegistry>>,
}

impl LivePlugins {
    pub fn new(registry: Arc<PluginRegistry>) -> LivePlugins {
        LivePlugins {
            current: RwLock::new(registry),
        }
    }

    pub fn current(&self) -> Arc<PluginRegistry> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn replace(&self, registry: Arc<PluginRegistry>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = registry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Runtime;
    use crate::plugin::engine::RuntimeOptions;
    use crate::plugin::grants::Grants;
    use crate::plugin::install::Provenance;

    #[tokio::test]
    async fn a_reload_reuses_the_installed_plugins_whose_record_did_not_change() {
        let runtime = Arc::new(Runtime::new(RuntimeOptions::with_pool(2)).expect("runtime"));
        let loader = Loader::new(runtime, None).expect("loader");
        let dir = tempfile::tempdir().expect("temp dir");
        let installed = Installed::new(dir.path().to_owned());
        // The bundled github source's bytes, installed in its place.
        let (label, wasm) = bundled::BUNDLED[0];
        let plugin = loader
            .load(label, wasm, Origin::Bundled)
            .await
            .expect("loads");
        let version = |granted: Grants| {
            Version::of(
                &plugin,
                Provenance {
                    source: "/github.wasm".into(),
                    granted,
                    replaces_bundled: true,
                    ..Provenance::default()
                },
            )
        };
        let all = Grants::requested(&plugin.info);
        installed
            .install("github", version(all.clone()), wasm)
            .expect("installed");
        let first = PluginRegistry::load(&loader, &installed)
            .await
            .expect("loads");
        let running = |registry: &PluginRegistry| {
            registry
                .get(World::Source, "github")
                .expect("github runs")
                .clone()
        };
        assert!(matches!(running(&first).origin, Origin::Installed(_)));

        let second = first.reloaded(&loader, &installed).await.expect("reloads");
        assert!(Arc::ptr_eq(&running(&first), &running(&second)), "reused");

        // A new grant is a new record: loaded again, and narrowed to it.
        installed
            .install("github", version(Grants::default()), wasm)
            .expect("installed");
        let third = second.reloaded(&loader, &installed).await.expect("reloads");
        assert!(!Arc::ptr_eq(&running(&second), &running(&third)));
        assert!(running(&third).info.secrets.is_empty());
        assert!(!running(&second).info.secrets.is_empty());
    }
}
