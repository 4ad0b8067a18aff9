//! Turning component bytes into a plugin the daemon can call.
//!
//! Loading compiles (or fetches from the cache), reads the world from the component's exports,
//! checks its imports, links it once into an `InstancePre`, and asks the plugin to describe
//! itself. Anything wrong is an error that names the plugin and the problem, before the plugin
//! ever handles an event.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use wasmtime::component::Linker;

use super::bindings::policy::PolicyPre;
use super::bindings::responder::ResponderPre;
use super::bindings::source::{SourcePre, types};
use super::bindings::trigger::TriggerPre;
use super::cache::CompileCache;
use super::engine::Runtime;
use super::host::log::PluginLog;
use super::host::{self, PluginState};
use super::limits::Limits;
use super::policy::PolicyPlugin;
use super::responder::ResponderPlugin;
use super::source::SourcePlugin;
use super::trigger::TriggerPlugin;
use super::world::{self, World};
use super::{CallError, Error};
use crate::config::name::is_safe_name;
use crate::digest::sha256_hex;

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum Origin {
    Bundled,
    Installed(PathBuf),
}

/// What a plugin says about itself (its `describe`), in the host's own types.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub secrets: Vec<String>,
    pub settings: Vec<String>,
    pub hosts: Vec<String>,
}

impl From<types::PluginInfo> for PluginInfo {
    fn from(info: types::PluginInfo) -> Self {
        PluginInfo {
            name: info.name,
            version: info.version,
            summary: info.summary,
            secrets: info.secrets,
            settings: info.settings,
            hosts: info.hosts,
        }
    }
}

/// A plugin ready to run.
#[derive(Clone, Serialize)]
pub struct LoadedPlugin {
    #[serde(flatten)]
    pub info: PluginInfo,
    pub world: World,
    /// The `mecha:plugin` version it was built against.
    pub wit_version: String,
    pub sha256: String,
    pub origin: Origin,
    #[serde(skip)]
    pub runner: Runner,
}

/// The callable side of a plugin, by world.
#[derive(Clone)]
pub enum Runner {
    Source(Arc<SourcePlugin>),
    Policy(Arc<PolicyPlugin>),
    Responder(Arc<ResponderPlugin>),
    Trigger(Arc<TriggerPlugin>),
}

/// Loads plugins into one runtime.
pub struct Loader {
    runtime: Arc<Runtime>,
    linker: Linker<PluginState>,
    cache: CompileCache,
    /// The linker and cache of the fuel-metered engine, for policies.
    fuel_linker: Linker<PluginState>,
    fuel_cache: CompileCache,
}

impl Loader {
    /// A loader whose compiled code is cached in `cache_dir` (none: compile every time).
    pub fn new(runtime: Arc<Runtime>, cache_dir: Option<PathBuf>) -> Result<Loader, Error> {
        let engine_error = |err: wasmtime::Error| Error::Engine(format!("{err:#}"));
        let linker = host::linker(runtime.engine()).map_err(engine_error)?;
        let fuel_linker = host::linker(runtime.fuel_engine()).map_err(engine_error)?;
        let cache = CompileCache::new(cache_dir.clone(), runtime.compatibility_key());
        let fuel_cache = CompileCache::new(cache_dir, runtime.fuel_compatibility_key());
        Ok(Loader {
            runtime,
            linker,
            cache,
            fuel_linker,
            fuel_cache,
        })
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Loads the component `wasm`; `label` names it in errors until it has told its name.
    pub async fn load(
        &self,
        label: &str,
        wasm: &[u8],
        origin: Origin,
    ) -> Result<LoadedPlugin, Error> {
        // Policies run on the fuel-metered engine; the world is read from the bytes first so
        // that each component is compiled once, for the engine it runs on.
        let metered = world::declared(wasm) == Some(World::Policy);
        let (engine, cache, linker) = if metered {
            (
                self.runtime.fuel_engine(),
                &self.fuel_cache,
                &self.fuel_linker,
            )
        } else {
            (self.runtime.engine(), &self.cache, &self.linker)
        };
        let component = cache.component(engine, label, wasm)?;
        let shape = world::inspect(engine, &component, label)?;
        let invalid = |err: wasmtime::Error| Error::Invalid {
            plugin: label.to_owned(),
            reason: format!("{err:#}"),
        };
        let log = || PluginLog::new(Arc::from(label), self.runtime.log_sink().clone());
        let gate = self.runtime.gate().clone();
        let limits = Limits::default();
        let (info, runner) = match shape.world {
            World::Policy if !metered => {
                return Err(Error::Invalid {
                    plugin: label.to_owned(),
                    reason: "its exports could not be read before compiling it".to_owned(),
                });
            }
            World::Source => {
                let pre = linker.instantiate_pre(&component).map_err(invalid)?;
                let plugin = SourcePlugin::new(log(), SourcePre::new(pre).map_err(invalid)?, gate);
                let info = described(label, plugin.describe(limits).await)?;
                let runner = Runner::Source(Arc::new(plugin.renamed(&info.name)));
                (info, runner)
            }
            World::Policy => {
                let pre = linker.instantiate_pre(&component).map_err(invalid)?;
                let plugin = PolicyPlugin::new(log(), PolicyPre::new(pre).map_err(invalid)?, gate);
                let info = described(label, plugin.describe(limits).await)?;
                let runner = Runner::Policy(Arc::new(plugin.renamed(&info.name)));
                (info, runner)
            }
            World::Responder => {
                let pre = linker.instantiate_pre(&component).map_err(invalid)?;
                let pre = ResponderPre::new(pre).map_err(invalid)?;
                let plugin = ResponderPlugin::new(log(), pre, gate);
                let info = described(label, plugin.describe(limits).await)?;
                let runner = Runner::Responder(Arc::new(plugin.renamed(&info.name)));
                (info, runner)
            }
            World::Trigger => {
                let pre = linker.instantiate_pre(&component).map_err(invalid)?;
                let plugin =
                    TriggerPlugin::new(log(), TriggerPre::new(pre).map_err(invalid)?, gate);
                let info = described(label, plugin.describe(limits).await)?;
                let runner = Runner::Trigger(Arc::new(plugin.renamed(&info.name)));
                (info, runner)
            }
        };
        Ok(LoadedPlugin {
            info,
            world: shape.world,
            wit_version: shape.version,
            sha256: sha256_hex(wasm),
            origin,
            runner,
        })
    }
}

/// The plugin's answer to `describe`, in the host's types, with its name checked.
fn described(
    label: &str,
    answer: Result<types::PluginInfo, CallError>,
) -> Result<PluginInfo, Error> {
    let info = PluginInfo::from(answer.map_err(|err| Error::Describe {
        plugin: label.to_owned(),
        reason: err.to_string(),
    })?);
    validate_name(label, &info.name)?;
    Ok(info)
}

fn validate_name(label: &str, name: &str) -> Result<(), Error> {
    if is_safe_name(name) {
        Ok(())
    } else {
        Err(Error::Describe {
            plugin: label.to_owned(),
            reason: format!(
                "its name {name:?} is not valid: use 1-64 lower-case letters, digits, - and _"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::validate_name;

    #[test]
    fn names_must_be_safe_for_paths() {
        assert!(validate_name("x", "github").is_ok());
        assert!(validate_name("x", "my-source_2").is_ok());
        for bad in ["", "GitHub", "../etc", "a/b", "-x", "a b"] {
            assert!(validate_name("x", bad).is_err(), "{bad:?} accepted");
        }
    }
}
