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
//! must still name files the way mecha does, each component must match its sha256, and a
//! daemon whose `config.yml` requires signatures takes only versions signed by a key it trusts.
//! A change a daemon refuses is logged and passed over, so that the changes after it still
//! apply.

use std::collections::HashMap;
use std::sync::Arc;

use super::Error;
use super::install::{Installed, LockEntry, check_shared, versions};
use super::trust::TrustedKeys;
use crate::config::home::Home;
use crate::config::server::ServerConfig;
use crate::store::{self, PluginInstall, PluginPublication, Store};

/// Publications tried again when another daemon's change to the same plugin dropped a
/// component between the question of what is missing and the publication.
const PUBLISH_TRIES: usize = 3;

/// A home's installed plugins and the database they are shared through.
#[derive(Clone)]
pub struct SharedInstalls {
    store: Arc<dyn Store>,
    installed: Installed,
}

/// What this home requires of a plugin before it runs it, applied to what other daemons
/// share as to what its own operator installs: with `plugins.require_signature`, a version
/// signed by a key this home trusts (`mecha plugin trust`).
pub struct Admission {
    pub require_signature: bool,
    pub trusted: TrustedKeys,
}

impl Admission {
    /// What the home `home`, configured by `config`, requires.
    pub fn of(home: &Home, config: &ServerConfig) -> Admission {
        Admission {
            require_signature: config.plugins.require_signature,
            trusted: TrustedKeys::in_home(home.root()),
        }
    }
}

impl SharedInstalls {
    pub fn new(store: Arc<dyn Store>, installed: Installed) -> SharedInstalls {
        SharedInstalls { store, installed }
    }

    /// Publishes the current entry of `name` in this home (its removal, when it has none), with
    /// the components the database lacks; returns the revision it was given.
    pub async fn publish(&self, name: &str) -> Result<i64, Error> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.publish_once(name).await {
                Err(Error::Shared(store::Error::PluginComponentMissing { .. }))
                    if tries < PUBLISH_TRIES => {}
                outcome => return outcome,
            }
        }
    }

    async fn publish_once(&self, name: &str) -> Result<i64, Error> {
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
        Ok(self
            .store
            .publish_plugin(PluginPublication {
                name: name.to_owned(),
                entry: encoded,
                named,
                components,
            })
            .await?)
    }

    /// Applies, in order, every change published after the last one this home applied
    /// (its own included: applying it again changes nothing); returns the names of the plugins
    /// changed. A change this home refuses (unreadable, not as mecha writes entries, or not
    /// signed as `admission` requires) is logged and passed over; any other failure stops
    /// there, and the change is tried again at the next call.
    pub async fn apply(&self, admission: &Admission) -> Result<Vec<String>, Error> {
        let after = self.installed.shared_revision()?;
        let mut changed = Vec::new();
        for install in self.store.plugin_installs(after).await? {
            let entry = match admitted(&install, admission) {
                Ok(entry) => entry,
                Err(reason) => {
                    tracing::error!(plugin = %install.name, %reason, "a plugin change made through another daemon is refused here; this daemon keeps what it had installed");
                    self.installed.pass_over(install.revision)?;
                    continue;
                }
            };
            let name = &install.name;
            let mut components = HashMap::new();
            if let Some(entry) = &entry {
                for version in self.installed.lacking(name, entry)? {
                    let bytes = self
                        .store
                        .plugin_component(name, &version.sha256)
                        .await?
                        .ok_or_else(|| store::Error::PluginComponentMissing {
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

/// The entry `install` shares, if this home takes it; why not, otherwise.
fn admitted(install: &PluginInstall, admission: &Admission) -> Result<Option<LockEntry>, String> {
    let Some(text) = &install.entry else {
        return Ok(None);
    };
    let entry: LockEntry = serde_json::from_str(text)
        .map_err(|err| format!("its entry in the database cannot be read: {err}"))?;
    check_shared(&install.name, &entry).map_err(|err| err.to_string())?;
    if admission.require_signature {
        let trusted = admission.trusted.list().map_err(|err| err.to_string())?;
        let signer = entry.current.signer.as_deref();
        if !trusted.iter().any(|key| Some(key.id.as_str()) == signer) {
            return Err(format!(
                "{} is not signed by a key this daemon trusts, and plugins.require_signature \
                 in its config.yml requires one (`mecha plugin trust add`)",
                entry.current.label()
            ));
        }
    }
    Ok(Some(entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::World;
    use crate::plugin::install::Version;

    fn install(entry: Option<&LockEntry>) -> PluginInstall {
        PluginInstall {
            revision: 1,
            name: "echo".into(),
            entry: entry.map(|entry| serde_json::to_string(entry).unwrap()),
        }
    }

    #[test]
    fn a_home_that_requires_signatures_refuses_an_unsigned_shared_version() {
        let dir = tempfile::tempdir().unwrap();
        let sha256 = "ab".repeat(32);
        let entry = LockEntry {
            name: "echo".into(),
            current: Version {
                file: format!("echo-{}.wasm", &sha256[..16]),
                sha256,
                world: World::Source,
                version: "1.0.0".into(),
                wit_version: "0.1.0".into(),
                source: None,
                signer: None,
                granted: None,
                replaces_bundled: false,
            },
            previous: Vec::new(),
        };
        let open = Admission {
            require_signature: false,
            trusted: TrustedKeys::in_home(dir.path()),
        };
        assert_eq!(
            admitted(&install(Some(&entry)), &open),
            Ok(Some(entry.clone()))
        );
        assert_eq!(admitted(&install(None), &open), Ok(None));

        let strict = Admission {
            require_signature: true,
            ..open
        };
        let refused = admitted(&install(Some(&entry)), &strict).unwrap_err();
        assert!(refused.contains("plugins.require_signature"), "{refused}");
        let mut signed = entry.clone();
        signed.current.signer = Some("0123456789ABCDEF".into());
        assert!(
            admitted(&install(Some(&signed)), &strict).is_err(),
            "a key not trusted here"
        );
        // A removal needs no signature.
        assert_eq!(admitted(&install(None), &strict), Ok(None));

        let mut unreadable = install(Some(&entry));
        unreadable.entry = Some("{".into());
        assert!(
            admitted(&unreadable, &strict)
                .unwrap_err()
                .contains("cannot be read")
        );
    }
}
