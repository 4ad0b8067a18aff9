//! Source instances: a source plugin with the settings, secrets and limits the operator gave it,
//! served at `/webhook/{name}`.
//!
//! A source that declares secrets verifies its requests itself, so it is exempt from the
//! daemon's API key, but only once all its secrets are configured: a source whose secret is
//! missing is disabled with a message saying which setting to add, instead of running
//! unauthenticated.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::config::secrets::Secrets;
use crate::config::server::ServerConfig;
use crate::plugin::PluginRegistry;
use crate::plugin::limits::Limits;
use crate::plugin::loader::Runner;
use crate::plugin::source::{SourceCall, SourcePlugin};

/// A source the daemon serves.
pub struct SourceInstance {
    pub name: String,
    pub plugin: Arc<SourcePlugin>,
    pub call: SourceCall,
    /// True when the plugin verifies requests with secrets; such webhooks need no API key, but
    /// each request must pass a `verify` check.
    pub verifies: bool,
}

/// What `/webhook/{name}` leads to.
#[derive(Clone)]
pub enum SourceSlot {
    Ready(Arc<SourceInstance>),
    /// Known but not configured; the text says what to set.
    Disabled(String),
}

/// The sources a daemon serves. Replaced whole when `secrets.yml` is reloaded (SIGHUP), so a
/// request sees either the old set or the new one, never a mix.
pub struct SourceTable {
    slots: RwLock<Arc<BTreeMap<String, SourceSlot>>>,
}

impl SourceTable {
    pub fn new(slots: BTreeMap<String, SourceSlot>) -> SourceTable {
        SourceTable {
            slots: RwLock::new(Arc::new(slots)),
        }
    }

    fn current(&self) -> Arc<BTreeMap<String, SourceSlot>> {
        match self.slots.read() {
            Ok(slots) => slots.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn get(&self, name: &str) -> Option<SourceSlot> {
        self.current().get(name).cloned()
    }

    /// Names of the sources that accept webhooks.
    pub fn ready(&self) -> Vec<String> {
        self.current()
            .iter()
            .filter(|(_, slot)| matches!(slot, SourceSlot::Ready(_)))
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn replace(&self, slots: BTreeMap<String, SourceSlot>) {
        let slots = Arc::new(slots);
        match self.slots.write() {
            Ok(mut current) => *current = slots,
            Err(poisoned) => *poisoned.into_inner() = slots,
        }
    }
}

/// One instance per source plugin, named after it.
pub fn instances(
    registry: &PluginRegistry,
    config: &ServerConfig,
    secrets: &Secrets,
) -> BTreeMap<String, SourceSlot> {
    let mut slots = BTreeMap::new();
    for plugin in registry.iter() {
        let Runner::Source(runner) = &plugin.runner else {
            continue;
        };
        let name = plugin.info.name.clone();
        let plugin_config = config.plugin(&name);
        let configured = secrets.for_source(&name);
        let missing: Vec<&String> = plugin
            .info
            .secrets
            .iter()
            .filter(|secret| !configured.contains_key(*secret))
            .collect();
        if !missing.is_empty() {
            let settings: Vec<String> = missing
                .iter()
                .map(|secret| format!("{name}.{secret}"))
                .collect();
            let reason = format!(
                "source {name} is disabled: set {} in secrets.yml",
                settings.join(" and ")
            );
            tracing::warn!("{reason}");
            slots.insert(name, SourceSlot::Disabled(reason));
            continue;
        }
        let granted = configured
            .into_iter()
            .filter(|(secret, _)| plugin.info.secrets.contains(secret))
            .collect();
        let instance = SourceInstance {
            name: name.clone(),
            plugin: runner.clone(),
            call: SourceCall {
                settings: Arc::new(plugin_config.settings.clone()),
                secrets: Arc::new(granted),
                limits: Limits::from_config(&plugin_config),
            },
            verifies: !plugin.info.secrets.is_empty(),
        };
        slots.insert(name, SourceSlot::Ready(Arc::new(instance)));
    }
    slots
}
