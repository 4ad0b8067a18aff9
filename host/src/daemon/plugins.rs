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
//!
//! When installs are shared through the database (`plugin::shared`), each poll first applies
//! the changes other daemons published, which changes the lock file like a local install.

use std::sync::Arc;
use std::time::Duration;

use super::reload::Holders;
use crate::pipeline::sources;
use crate::plugin::shared::{Admission, SharedInstalls};
use crate::redact::Redactor;

/// 500 ms: a change is live well within the second `mecha plugin install` promises, for one
/// `stat` of the lock file per poll.
pub(super) const POLL: Duration = Duration::from_millis(500);

/// At start, before the plugins are loaded: applies what other daemons published, then
/// publishes what this home holds that the database has never seen. A failure is logged; the
/// daemon starts with the plugins its home has.
pub(super) async fn share_at_start(
    shared: &SharedInstalls,
    admission: &Admission,
    redactor: &Redactor,
) {
    let outcome = match shared.apply(admission).await {
        Ok(applied) => shared
            .publish_unknown()
            .await
            .map(|published| (applied, published)),
        Err(err) => Err(err),
    };
    match outcome {
        Ok((applied, published)) => {
            if !applied.is_empty() || !published.is_empty() {
                tracing::info!(applied = %applied.join(","), published = %published.join(","), "plugin installs shared through the database");
            }
        }
        Err(err) => {
            let err = redactor.redact(&err.to_string()).into_owned();
            tracing::error!(error = %err, "could not share plugin installs through the database; starting with the plugins installed here");
        }
    }
}

impl Holders {
    /// Applies the plugin changes other daemons published, when installs are shared; an error
    /// is logged when it first occurs, and the change is tried again at the next poll.
    async fn apply_shared(&mut self) {
        let Some((shared, last_error)) = &mut self.shared else {
            return;
        };
        match shared.apply(&Admission::of(&self.home, &self.config)).await {
            Ok(applied) => {
                *last_error = None;
                if !applied.is_empty() {
                    tracing::info!(plugins = %applied.join(","), "applied plugin changes made through another daemon");
                }
            }
            Err(err) => {
                let err = self.redactor.redact(&err.to_string()).into_owned();
                if last_error.as_ref() != Some(&err) {
                    tracing::error!(error = %err, "could not apply plugin changes made through another daemon; trying again");
                    *last_error = Some(err);
                }
            }
        }
    }

    /// Loads the installed plugins again if the lock file changed since they were loaded.
    pub(super) async fn reload_plugins(&mut self) {
        self.apply_shared().await;
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
