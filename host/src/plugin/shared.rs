//! Plugin installs shared by the daemons of one database.
//!
//! Each daemon keeps its installed plugins in its own home (`install.rs`), where its loader
//! reads them. When several daemons use one database, a change made through any of them
//! (`mecha plugin install`, `upgrade`, `rollback`, `rm`) is published to the database
//! (`store::PluginInstallStore`): the plugin's new lock entry and the components its versions
//! name. Every daemon's plugin poll applies the changes published after the last it applied,
//! in order, to its own home, through the same lock-file transaction as a local install; the
//! daemon then switches to them as it does for a local change.
//!
//! Sharing is on when `database_url` names the database (a PostgreSQL server, or a SQLite file
//! given on purpose): that is how daemons come to share one. The embedded default is one
//! daemon's own file, and its plugins are not copied into it.
//!
//! What one operator installs, with the grant given then, runs on every daemon of the
//! database: the database is trusted as the daemons' configuration is. An entry read from it
//! must still name files the way mecha does, and each component must match its sha256.

use std::collections::HashMap;
use std::sync::Arc;

use super::Error;
use super::install::{Installed, LockEntry, versions};
use crate::store::{PluginPublication, Store};

/// A home's installed plugins and the database they are shared through.
#[derive(Clone)]
pub struct SharedInstalls {
    store: Arc<dyn Store>,
    installed: Installed,
}

impl SharedInstalls {
    pub fn new(store: Arc<dyn Store>, installed: Installed) -> SharedInstalls {
        SharedInstalls { store, installed }
    }

    /// Publishes the current entry of `name` in this home (its removal, when it has none), with
    /// the components the database lacks; returns the revision it was given.
    pub async fn publish(&self, name: &str) -> Result<i64, Error> {
        let entry = match self.installed.entry(name) {
            Ok(entry) => Some(entry),
            Err(Error::NotInstalled(_)) => None,
            Err(err) => return Err(err),
        };
        let named: Vec<String> = entry
            .iter()
            .flat_map(versions)
            .map(|version| version.sha256.clone())
            .collect();
        let missing = self.store.missing_components(name, named.clone()).await?;
        let mut components = Vec::with_capacity(missing.len());
        if let Some(entry) = &entry {
            for version in versions(entry).filter(|version| missing.contains(&version.sha256)) {
                let (_, bytes) = self.installed.read(name, version)?;
                components.push((version.sha256.clone(), bytes));
            }
        }
        let encoded = entry
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|err| Error::Lock(format!("could not encode the entry of {name}: {err}")))?;
        let revision = self
            .store
            .publish_plugin(PluginPublication {
                name: name.to_owned(),
                entry: encoded,
                named,
                components,
            })
            .await?;
        self.installed.shared_as(revision)?;
        Ok(revision)
    }

    /// Applies, in order, every change published after the last one this home applied; returns
    /// the names of the plugins changed. A change that cannot be applied stops there (it is
    /// tried again at the next call) and is the error.
    pub async fn apply(&self) -> Result<Vec<String>, Error> {
        let after = self.installed.shared_revision()?;
        let mut changed = Vec::new();
        for install in self.store.plugin_installs(after).await? {
            let name = &install.name;
            let entry = install
                .entry
                .as_deref()
                .map(serde_json::from_str::<LockEntry>)
                .transpose()
                .map_err(|err| {
                    Error::Lock(format!(
                        "the shared install of {name:?} in the database cannot be read ({err}); \
                         it was not applied"
                    ))
                })?;
            let mut components = HashMap::new();
            if let Some(entry) = &entry {
                for version in self.installed.lacking(entry) {
                    let bytes = self
                        .store
                        .plugin_component(name, &version.sha256)
                        .await?
                        .ok_or_else(|| crate::store::Error::PluginComponentMissing {
                            name: name.clone(),
                            sha256: version.sha256.clone(),
                        })?;
                    components.insert(version.sha256.clone(), bytes);
                }
            }
            self.installed
                .adopt(name, entry, install.revision, &components)?;
            changed.push(install.name);
        }
        Ok(changed)
    }

    /// Publishes the plugins of this home that the database has never seen (installed before
    /// this home used it); returns their names. Run after [`SharedInstalls::apply`], so a
    /// plugin another daemon removed is not brought back.
    pub async fn publish_unknown(&self) -> Result<Vec<String>, Error> {
        let known: Vec<String> = self
            .store
            .plugin_installs(0)
            .await?
            .into_iter()
            .map(|install| install.name)
            .collect();
        let mut published = Vec::new();
        for entry in self.installed.entries()? {
            if !known.contains(&entry.name) {
                self.publish(&entry.name).await?;
                published.push(entry.name);
            }
        }
        Ok(published)
    }
}
