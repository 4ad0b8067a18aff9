//! Source instances: a source plugin with the settings, secrets and limits the operator gave it,
//! served at `/webhook/{name}`.
//!
//! Every source plugin gets an instance under its own name; `sources:` in `config.yml` declares
//! more (two GitHub apps, several generic hooks), each with the secrets of its own `secrets.yml`
//! section. A source that declares secrets verifies its requests itself, so it is exempt from
//! the daemon's API key, but only once all its secrets are configured: an instance the operator
//! declared without them stops the daemon from starting, and an undeclared one is disabled with
//! a message saying which setting to add. Neither ever runs unauthenticated.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::api_access::{ApiRequest, api_access};
use crate::config::secrets::Secrets;
use crate::config::server::{PluginConfig, ServerConfig, SourceConfig};
use crate::plugin::host::http::Origin;
use crate::plugin::limits::Limits;
use crate::plugin::loader::{LoadedPlugin, Runner};
use crate::plugin::source::{HydrateCall, SourceCall, SourcePlugin};
use crate::plugin::{PluginRegistry, World};

/// A minute for hydration: it makes several API calls (a diff, pages of files), each of which
/// may take seconds on a large pull request.
const HYDRATE_TIMEOUT: Duration = Duration::from_secs(60);

/// A source the daemon serves.
pub struct SourceInstance {
    pub name: String,
    pub plugin: Arc<SourcePlugin>,
    pub call: SourceCall,
    /// True when the plugin verifies requests with secrets; such webhooks need no API key, but
    /// each request must pass a `verify` check.
    pub verifies: bool,
    /// How to call `hydrate`, when the plugin calls an API and a token is configured.
    pub hydrate: Option<HydrateCall>,
}

/// What `/webhook/{name}` leads to.
#[derive(Clone)]
pub enum SourceSlot {
    Ready(Arc<SourceInstance>),
    /// Known but not configured; the text says what to set.
    Disabled(String),
}

/// Why the configured sources cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "sources.{instance}: there is no source plugin named {plugin}; `mecha plugin ls` lists them"
    )]
    UnknownPlugin { instance: String, plugin: String },
    #[error(
        "sources.{instance} cannot verify its webhooks: set {missing} in secrets.yml \
         (or remove the instance from config.yml)"
    )]
    MissingSecret { instance: String, missing: String },
    #[error("sources.{instance}.api_url: {reason}")]
    Api { instance: String, reason: String },
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

    /// The instance `name`, if it accepts webhooks.
    pub fn ready(&self, name: &str) -> Option<Arc<SourceInstance>> {
        match self.get(name)? {
            SourceSlot::Ready(instance) => Some(instance),
            SourceSlot::Disabled(_) => None,
        }
    }

    /// Names of the sources that accept webhooks.
    pub fn ready_names(&self) -> Vec<String> {
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

/// Every instance: one per source plugin under its own name, then those `sources:` declares
/// (which replace a plugin's own instance of the same name).
pub fn instances(
    registry: &PluginRegistry,
    config: &ServerConfig,
    secrets: &Secrets,
) -> Result<BTreeMap<String, SourceSlot>, SourceError> {
    let mut slots = BTreeMap::new();
    let undeclared = registry
        .iter()
        .filter(|loaded| !config.sources.contains_key(&loaded.info.name))
        .filter_map(|loaded| Some((loaded, source_plugin(loaded)?)));
    for (loaded, plugin) in undeclared {
        let name = loaded.info.name.clone();
        let declared = SourceConfig::default();
        let slot = match instance(&name, loaded, plugin, &declared, config, secrets) {
            Ok(instance) => SourceSlot::Ready(Arc::new(instance)),
            Err(SourceError::MissingSecret { missing, .. }) => {
                let reason = format!("source {name} is disabled: set {missing} in secrets.yml");
                tracing::info!("{reason}");
                SourceSlot::Disabled(reason)
            }
            Err(err) => return Err(err),
        };
        slots.insert(name, slot);
    }
    for (name, declared) in &config.sources {
        let plugin_name = declared.plugin.as_deref().unwrap_or(name);
        let loaded = registry.get(World::Source, plugin_name);
        let Some((loaded, plugin)) =
            loaded.and_then(|loaded| Some((loaded, source_plugin(loaded)?)))
        else {
            return Err(SourceError::UnknownPlugin {
                instance: name.clone(),
                plugin: plugin_name.to_owned(),
            });
        };
        let instance = instance(name, loaded, plugin, declared, config, secrets)?;
        slots.insert(name.clone(), SourceSlot::Ready(Arc::new(instance)));
    }
    Ok(slots)
}

fn source_plugin(loaded: &LoadedPlugin) -> Option<&Arc<SourcePlugin>> {
    match &loaded.runner {
        Runner::Source(plugin) => Some(plugin),
        _ => None,
    }
}

/// The instance `name` of the source plugin `loaded`, or why it cannot run: the `secrets.yml`
/// settings it lacks (`github.webhook_secret`), or an API it cannot use.
fn instance(
    name: &str,
    loaded: &LoadedPlugin,
    plugin: &Arc<SourcePlugin>,
    declared: &SourceConfig,
    config: &ServerConfig,
    secrets: &Secrets,
) -> Result<SourceInstance, SourceError> {
    let configured = secrets.for_source(name);
    let missing: Vec<String> = loaded
        .info
        .secrets
        .iter()
        .filter(|secret| {
            configured
                .get(*secret)
                .is_none_or(|value| value.expose().trim().is_empty())
        })
        .map(|secret| format!("{name}.{secret}"))
        .collect();
    if !missing.is_empty() {
        return Err(SourceError::MissingSecret {
            instance: name.to_owned(),
            missing: missing.join(" and "),
        });
    }
    let granted = configured
        .into_iter()
        .filter(|(secret, _)| loaded.info.secrets.contains(secret))
        .collect();
    let defaults = config.plugin(&loaded.info.name);
    let mut settings = defaults.settings.clone();
    settings.extend(declared.settings.clone());
    let limits = Limits::from_config(&PluginConfig {
        timeout_ms: declared.timeout_ms.or(defaults.timeout_ms),
        memory_mib: declared.memory_mib.or(defaults.memory_mib),
        settings: BTreeMap::new(),
        ..defaults.clone()
    });
    let hydrate = hydration(name, loaded, declared, &settings, limits, secrets)?;
    Ok(SourceInstance {
        name: name.to_owned(),
        plugin: plugin.clone(),
        call: SourceCall {
            settings: Arc::new(settings),
            secrets: Arc::new(granted),
            limits,
            clock: None,
        },
        verifies: !loaded.info.secrets.is_empty(),
        hydrate,
    })
}

/// How the instance hydrates events: only plugins that declare an API origin, and only with a
/// token, since the providers' APIs (GitHub's diff and files) answer little without one. An
/// `api_url` the operator set must be usable: silently not hydrating would hide the mistake.
fn hydration(
    name: &str,
    loaded: &LoadedPlugin,
    declared: &SourceConfig,
    settings: &BTreeMap<String, String>,
    limits: Limits,
    secrets: &Secrets,
) -> Result<Option<HydrateCall>, SourceError> {
    let unusable = |reason: String| SourceError::Api {
        instance: name.to_owned(),
        reason,
    };
    let Some(plugin_default) = loaded.info.hosts.first().map(String::as_str) else {
        return match declared.api_url {
            Some(_) => Err(unusable(format!(
                "the {} plugin calls no API; remove api_url",
                loaded.info.name
            ))),
            None => Ok(None),
        };
    };
    if let Some(url) = &declared.api_url {
        Origin::parse(url).map_err(unusable)?;
    }
    let field = format!("sources.{name}");
    let request = ApiRequest {
        plugin: &loaded.info.name,
        section: name,
        field: &field,
        api_url: declared.api_url.as_deref(),
        plugin_default: Some(plugin_default),
        auth: None,
        allow_private_network: declared.allow_private_network,
        purpose: "to hydrate events",
    };
    match api_access(&request, secrets) {
        Ok(access) => {
            let mut settings = settings.clone();
            settings.insert("api_url".to_owned(), access.api_url);
            Ok(Some(HydrateCall {
                settings: Arc::new(settings),
                grant: Arc::new(access.grant),
                limits: Limits {
                    timeout: limits.timeout.max(HYDRATE_TIMEOUT),
                    ..limits
                },
            }))
        }
        Err(reason) => {
            // Said out loud only when the operator seems to want hydration.
            if declared.api_url.is_some() {
                tracing::warn!(source = %name, %reason, "events of this source are not hydrated");
            }
            Ok(None)
        }
    }
}
