//! SIGHUP: `secrets.yml` read again, and every credential the daemon holds rebuilt from it.
//! The same task notices changes to the installed plugins (`plugins.rs`), so that the two never
//! rebuild the sources and write-backs at once.
//!
//! Secrets live in more places than the file. The sources check signatures with webhook
//! secrets; the redactor hides every secret's value, and is shared by the worker clients, the
//! pipeline, the API and the plugins' log sink; the write-backs call GitHub and GitLab with
//! responder tokens; the container runner gives tokens to managed workers' containers; the
//! adapters call their upstreams with keys. A reload replaces each of them, so that no part
//! keeps using a rotated credential or fails to hide a new one. A file that cannot be read or
//! checked changes nothing, and the log says why without quoting any value.

use std::sync::Arc;

use super::adapters::Adapters;
use crate::config::home::Home;
use crate::config::secrets::Secrets;
use crate::config::server::ServerConfig;
use crate::pipeline::sources::{self, SourceTable};
use crate::pipeline::write_back::WriteBacks;
use crate::plugin::LivePlugins;
use crate::plugin::install::{Installed, Stamp};
use crate::plugin::loader::Loader;
use crate::plugin::shared::SharedInstalls;
use crate::redact::Redactor;
use crate::store::Database;
use crate::worker::docker::Containers;

/// Everything a reload replaces or restarts, and the secrets it was last built from.
pub(super) struct Holders {
    pub home: Home,
    pub config: ServerConfig,
    pub plugins: Arc<LivePlugins>,
    pub loader: Loader,
    pub installed: Installed,
    /// The lock file as the running plugins were loaded from it.
    pub stamp: Option<Stamp>,
    /// Where plugin installs are shared with other daemons, when they are, and the last error
    /// applying them (logged once, not at every poll).
    pub shared: Option<(SharedInstalls, Option<String>)>,
    pub sources: Arc<SourceTable>,
    pub redactor: Redactor,
    pub write_backs: Arc<WriteBacks>,
    pub containers: Arc<Containers>,
    pub adapters: Arc<Adapters>,
    pub secrets: Secrets,
}

/// The values the redactor hides: every secret in `secrets.yml`, the API key, and the database
/// URL with its password on its own. The CLI hides the same.
pub(crate) fn redacted_values(secrets: &Secrets, config: &ServerConfig) -> Vec<String> {
    let database = config.database_url.as_ref();
    secrets
        .values()
        .chain(config.api_key.as_ref())
        .chain(database)
        .map(|secret| secret.expose().to_owned())
        .chain(database.and_then(|url| Database::password_in(url.expose())))
        .collect()
}

/// SIGHUPs, caught from now on: a SIGHUP's default action ends the process, so this is called
/// before the daemon listens, and one sent as soon as it answers is kept for [`on_hangup`].
pub(super) struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    pub(super) fn catch() -> Hangups {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .inspect_err(|err| {
                    tracing::warn!(error = %err, "cannot listen for SIGHUP; restart mecha to reload secrets");
                })
                .ok();
            Hangups { signal }
        }
        #[cfg(not(unix))]
        Hangups {}
    }
}

/// Reloads `secrets.yml` on every SIGHUP, and the installed plugins whenever they change,
/// until the daemon stops.
pub(super) async fn on_changes(hangups: Hangups, mut holders: Holders) {
    let mut poll = tokio::time::interval(super::plugins::POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let mut signal = hangups.signal;
    #[cfg(not(unix))]
    let _ = hangups;
    loop {
        #[cfg(unix)]
        let hangup = async {
            match signal.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        let hangup = tokio::select! {
            received = hangup => Some(received),
            _ = poll.tick() => None,
        };
        match hangup {
            Some(Some(())) => holders.reload().await,
            // SIGHUPs can no longer be received: plugins are still watched.
            #[cfg(unix)]
            Some(None) => signal = None,
            #[cfg(not(unix))]
            Some(None) => {}
            None => holders.reload_plugins().await,
        }
    }
}

impl Holders {
    /// One reload: everything is checked before anything is replaced.
    async fn reload(&mut self) {
        let checked = Secrets::load(&self.home.secrets_file())
            .map_err(|err| err.to_string())
            .and_then(|secrets| {
                sources::instances(&self.plugins.current(), &self.config, &secrets)
                    .map(|slots| (secrets, slots))
                    .map_err(|err| err.to_string())
            });
        let (secrets, slots) = match checked {
            Ok(checked) => checked,
            Err(err) => {
                let err = self.redactor.redact(&err).into_owned();
                tracing::error!(error = %err, "could not reload secrets.yml; keeping every current secret");
                return;
            }
        };
        // The redactor first, so that whatever the other parts log is redacted with the new set.
        self.redactor
            .set_secrets(redacted_values(&secrets, &self.config));
        self.sources.replace(slots);
        self.write_backs.rebuild(&secrets);
        self.containers.set_secrets(secrets.clone());
        self.adapters.reload(&self.secrets, &secrets).await;
        self.secrets = secrets;
        tracing::info!(sources = %self.sources.ready_names().join(","), "reloaded secrets.yml");
    }
}
