//! Installed plugins changed while the daemon runs (`mecha plugin install`, `upgrade`,
//! `rollback`, `rm`): the daemon notices within [`POLL`] and switches without a restart.
//!
//! The lock file is the commit point of every change (`plugin::install`), so the daemon watches
//! its stamp (inode, size, time) and loads the plugins it names. The new registry, the source
//! instances built from it and the responders are all checked before any is swapped in; a
//! change that cannot run (a plugin that no longer loads, a configured source whose plugin was
//! removed) is logged and the daemon keeps what it runs. A call in flight holds its plugin, so
//! it finishes on the version it started with, and a webhook arriving during the switch is
//! served by one version or the other, never refused.

use std::sync::Arc;
use std::time::Duration;

use super::reload::Holders;
use crate::pipeline::sources;

/// 500 ms: a change is live well within the second `mecha plugin install` promises, for one
/// `stat` of the lock file per poll.
pub(super) const POLL: Duration = Duration::from_millis(500);

impl Holders {
    /// Loads the installed plugins again if the lock file changed since they were loaded.
    pub(super) async fn reload_plugins(&mut self) {
        let stamp = self.installed.stamp();
        if stamp == self.stamp {
            return;
        }
        // Recorded first: a change that cannot be loaded is reported once, and tried again
        // when the lock file changes again.
        self.stamp = stamp;
        let registry = match self
            .plugins
            .current()
            .reloaded(&self.loader, &self.installed)
            .await
        {
            Ok(registry) => Arc::new(registry),
            Err(err) => {
                let err = self.redactor.redact(&err.to_string()).into_owned();
                tracing::error!(error = %err, "the installed plugins changed but cannot be loaded; the daemon keeps running the ones it had");
                return;
            }
        };
        let slots = match sources::instances(&registry, &self.config, &self.secrets) {
            Ok(slots) => slots,
            Err(err) => {
                let err = self.redactor.redact(&err.to_string()).into_owned();
                tracing::error!(error = %err, "the installed plugins changed but the configured sources cannot run with them; the daemon keeps running the plugins it had");
                return;
            }
        };
        let running: Vec<String> = registry
            .iter()
            .filter(|plugin| matches!(plugin.origin, crate::plugin::Origin::Installed(_)))
            .map(|plugin| format!("{}@{}", plugin.info.name, plugin.info.version))
            .collect();
        self.plugins.replace(registry);
        self.sources.replace(slots);
        self.write_backs.rebuild(&self.secrets);
        tracing::info!(installed = %running.join(","), sources = %self.sources.ready_names().join(","), "installed plugins changed; now running them");
    }
}
