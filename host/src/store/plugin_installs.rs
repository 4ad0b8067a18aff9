//! Plugin installs shared through the database by the daemons that use it (`plugin::shared`).
//!
//! Each plugin has one row: its lock entry as the last `mecha plugin install`, `upgrade`,
//! `rollback` or `rm` on any daemon's home left it (none once removed), and a revision. Every
//! publication takes the next revision, one at a time, so a daemon that has applied every
//! change up to revision `r` asks only for those after `r`, and finds them in the order they
//! were made. The components the entry's versions name are stored beside it, each once per
//! plugin; those no version names any more are dropped with the publication that stops
//! naming them.
//!
//! The store reads an entry as opaque text: what it means is `plugin::install`'s business.

use super::{Error, StoreFuture};

/// One plugin's shared install, as of `revision`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInstall {
    pub revision: i64,
    pub name: String,
    /// Its lock entry (JSON), or `None` when it was removed.
    pub entry: Option<String>,
}

/// A change of one plugin's install, to be shared.
#[derive(Debug, Clone, Default)]
pub struct PluginPublication {
    pub name: String,
    /// The new lock entry (JSON), or `None` for a removal.
    pub entry: Option<String>,
    /// The sha256 of every component the entry names: each must be stored once this commits.
    pub named: Vec<String>,
    /// Components to store, (sha256, bytes): those of `named` that
    /// [`PluginInstallStore::missing_components`] reported missing.
    pub components: Vec<(String, Vec<u8>)>,
}

impl PluginPublication {
    /// The error of a publication that names a component neither given nor stored: another
    /// publication dropped it since it was asked for.
    pub(super) fn missing(&self, sha256: &str) -> Error {
        Error::PluginComponentMissing {
            name: self.name.clone(),
            sha256: sha256.to_owned(),
        }
    }
}

/// Storage of the shared plugin installs.
pub trait PluginInstallStore: Send + Sync + 'static {
    /// Records `publication` under the next revision, which it returns once committed. Fails
    /// with [`Error::PluginComponentMissing`], and changes nothing, when a named component is
    /// neither given nor stored.
    fn publish_plugin(&self, publication: PluginPublication) -> StoreFuture<'_, i64>;

    /// The plugins whose last change is after revision `after`, oldest change first.
    fn plugin_installs(&self, after: i64) -> StoreFuture<'_, Vec<PluginInstall>>;

    /// Those of `sha256s` not stored for plugin `name`.
    fn missing_components(&self, name: &str, sha256s: Vec<String>) -> StoreFuture<'_, Vec<String>>;

    /// The component of plugin `name` with this sha256, if it is stored.
    fn plugin_component(&self, name: &str, sha256: &str) -> StoreFuture<'_, Option<Vec<u8>>>;
}
