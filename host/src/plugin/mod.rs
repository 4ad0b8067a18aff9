//! The plugin runtime: loads WebAssembly components, checks what they import, and calls them in
//! a sandbox.
//!
//! One [`Engine`](wasmtime::Engine) serves the process ([`engine`]). A component is compiled once
//! and cached on disk ([`cache`]), checked against the world it implements ([`world`]), and
//! pre-linked into one `InstancePre` ([`loader`]). Every call gets a fresh `Store` built from a
//! [`PluginState`](host::PluginState), so nothing leaks from one event to the next, with a
//! deadline and a memory cap ([`limits`]); a trap, a timeout or an exhausted limit fails that
//! call alone. What the daemon runs is assembled in [`registry`] from the bundled plugins
//! ([`bundled`]) and those the operator installed ([`install`]), brought from a file, a URL or
//! an OCI registry ([`fetch`]), checked against a digest or a trusted signature ([`trust`]), and
//! run with what the operator granted them ([`grants`]). Daemons on one database share what is
//! installed through it ([`shared`]).

pub mod bindings;
pub mod bundled;
pub mod cache;
pub mod component_file;
pub mod engine;
pub mod fetch;
pub mod grants;
pub mod host;
pub mod install;
pub mod limits;
pub mod loader;
pub mod newer;
pub mod oci;
pub mod policy;
pub mod registry;
pub mod responder;
pub mod shared;
pub mod source;
pub mod spare;
pub mod trigger;
pub mod trust;
pub mod world;
mod world_plugin;

use std::path::PathBuf;

pub use engine::Runtime;
pub use loader::{LoadedPlugin, Origin};
pub use registry::{LivePlugins, PluginRegistry};
pub use world::World;

/// Errors loading, installing or calling plugins. Each names the plugin and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not start the wasm engine: {0}")]
    Engine(String),
    #[error("{plugin} is not a valid WebAssembly component: {reason}")]
    Invalid { plugin: String, reason: String },
    #[error(
        "{plugin} exports no mecha world; a plugin must export one of mecha:plugin/source-api, \
         trigger-api, policy-api or responder-api (this daemon offers mecha:plugin@{offered})"
    )]
    NoWorld { plugin: String, offered: String },
    #[error(
        "{plugin} needs mecha:plugin@{needed}, but this daemon offers mecha:plugin@{offered}; \
         upgrade mecha or rebuild the plugin against {offered}"
    )]
    Version {
        plugin: String,
        needed: String,
        offered: String,
    },
    #[error(
        "{plugin} imports what a {world} plugin cannot have: {}; a {world} plugin may import \
         {allowed}",
        imports.join(", ")
    )]
    ForbiddenImports {
        plugin: String,
        imports: Vec<String>,
        world: World,
        allowed: String,
    },
    #[error("{plugin} is a {actual} plugin, not a {expected} plugin")]
    WrongWorld {
        plugin: String,
        expected: World,
        actual: World,
    },
    #[error("{plugin}: describe() failed: {reason}")]
    Describe { plugin: String, reason: String },
    #[error("compile cache at {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is {kind}, not a regular file; give the path of a plugin component (.wasm) built \
         for wasm32-wasip2"
    )]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "{path} is larger than {limit_mib} MiB, the most a plugin component may be; check that it \
         is the plugin you meant"
    )]
    TooLarge { path: PathBuf, limit_mib: u64 },
    #[error(
        "{plugin} calls itself {name}, the name of a bundled plugin; installed under that name it \
         would replace the bundled one and receive what config.yml and secrets.yml hold for it \
         (the `{name}` section's secrets and token). If that is what you want (a newer build of \
         {name}), install it again with --replace-bundled; otherwise give it another name in its \
         describe()"
    )]
    BundledName { plugin: String, name: String },
    #[error(
        "installed plugin {name} has the name of a bundled plugin but was not installed in its \
         place; remove it with `mecha plugin rm {name}`, then install it again with \
         --replace-bundled if it is meant to replace the bundled {name}"
    )]
    InstalledBundledName { name: String },
    #[error("no installed plugin named {0}; `mecha plugin ls` lists them")]
    NotInstalled(String),
    #[error("{0}")]
    Lock(String),
    #[error("sharing plugin installs through the database: {0}")]
    Shared(#[from] crate::store::Error),
}

/// How one call into a plugin went wrong. The daemon keeps serving whatever happens here. Each
/// limit names the `config.yml` setting that raises it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(
        "plugin {plugin} ran past its {limit_ms} ms deadline and was stopped \
         (plugins.{plugin}.timeout_ms raises it)"
    )]
    Timeout { plugin: String, limit_ms: u64 },
    #[error(
        "plugin {plugin} tried to use more than its {limit_mib} MiB of memory and was stopped \
         (plugins.{plugin}.memory_mib raises it)"
    )]
    Memory { plugin: String, limit_mib: u64 },
    #[error("plugin {plugin} was stopped by a host limit: {limit}")]
    Limit { plugin: String, limit: String },
    #[error("plugin {plugin} crashed: {reason}")]
    Trap { plugin: String, reason: String },
    #[error("plugin {plugin} used up its fuel ({fuel} units) and was stopped")]
    Fuel { plugin: String, fuel: u64 },
}
