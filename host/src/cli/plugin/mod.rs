//! `mecha plugin ls|install|upgrade|rollback|rm|share|inspect|test|new|trust|push`.
//!
//! Installing and upgrading are `install.rs`; the installed versions, and the atomic changes to
//! them, are `plugin::install`. A running daemon notices every change (`daemon::plugins`) and
//! switches to it without a restart. When the home's database is shared, each change is also
//! published to it for the other daemons ([`share`]).

mod install;
mod new;
mod push;
mod test;
mod trust;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{print_json, print_outcome, table};
use crate::config::home::Home;
use crate::config::server::ServerConfig;
use crate::plugin::engine::RuntimeOptions;
use crate::plugin::grants::{Grants, listed};
use crate::plugin::install::{Installed, LockEntry, Version};
use crate::plugin::loader::{LoadedPlugin, Loader, Origin};
use crate::plugin::shared::SharedInstalls;
use crate::plugin::{PluginRegistry, Runtime, component_file};

#[derive(Debug, Subcommand)]
pub enum Plugin {
    /// List the plugins the daemon would run: bundled ones and installed ones.
    Ls(List),
    /// Validate a plugin component (.wasm, at most 64 MiB) from a file, a URL or an OCI
    /// registry, show what it asks for, and install it once that is granted (on a terminal, or
    /// with --yes). An installed plugin of the same name is replaced and kept for rollback.
    Install(install::Install),
    /// Install the next version of a plugin from where it was installed from: the same file
    /// or URL read again, or the highest version tag of its OCI repository. Asks again if it
    /// wants origins or secrets its current version was not granted.
    Upgrade(install::Upgrade),
    /// Go back to the version an install or upgrade replaced (the last three are kept).
    Rollback(Rollback),
    /// Remove an installed plugin and the versions kept of it.
    Rm(Remove),
    /// Publish this home's install of a plugin (or its removal) to the database again, for
    /// the other daemons that use it; install, upgrade, rollback and rm do it themselves, and
    /// say when they could not.
    Share(Share),
    /// Show what a plugin is and asks for, from a .wasm file or by name.
    Inspect(Inspect),
    /// Create a plugin project (WIT, example code, a fixture, a test, a README) that builds
    /// and passes its test as it is.
    New(new::New),
    /// Run a plugin once, as the daemon would, against a fixture; print its outcome, log and
    /// figures. Exits non-zero when the call fails or the plugin answers with an error.
    Test(Box<test::Test>),
    /// Manage the minisign public keys whose signatures plugins are installed with.
    #[command(subcommand)]
    Trust(trust::Trust),
    /// Publish a plugin component to an OCI registry (oci://HOST/REPO:TAG) in the wasm OCI
    /// layout that `wkg` and `oras` read, with its minisign signature beside it if given.
    Push(push::Push),
}

impl Plugin {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        // Every command but `new` works in the mecha home.
        if !matches!(self, Plugin::New(_)) {
            home.ensure()?;
        }
        match self {
            Plugin::New(command) => command.run(),
            Plugin::Ls(command) => command.run(&home).await,
            Plugin::Install(command) => command.run(&home).await,
            Plugin::Upgrade(command) => command.run(&home).await,
            Plugin::Rollback(command) => command.run(&home).await,
            Plugin::Rm(command) => command.run(&home).await,
            Plugin::Share(command) => command.run(&home).await,
            Plugin::Inspect(command) => command.run(&home).await,
            Plugin::Test(command) => command.run(&home).await,
            Plugin::Trust(command) => command.run(&home),
            Plugin::Push(command) => command.run(&home).await,
        }
    }
}

/// What a plugin command changed, as its `--json` prints it. Versions are as
/// `plugins/lock.json` records them: `version`, `sha256`, `world`, `source`, `signer`,
/// `granted`...
#[derive(serde::Serialize)]
struct Change {
    name: String,
    /// The version that runs now; absent once removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<Version>,
    /// The version it took the place of (`install` and `upgrade` keep it for `rollback`), or
    /// that `rm` removed; absent when there was none or nothing changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<Version>,
    /// The number of the shared change that published it to the other daemons of the
    /// database ([`share`]); absent when installs are not shared.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<i64>,
}

/// Publishes `change` ([`share`]) and says what it was: `text` and where it was shared for
/// people, `change` with `json`. What was done locally is said even when sharing fails, whose
/// error follows.
async fn announce(home: &Home, mut change: Change, json: bool, text: &str) -> anyhow::Result<()> {
    if !json {
        println!("{text}");
    }
    let published = share(home, &change.name).await;
    change.shared = published.as_ref().ok().copied().flatten();
    match change.shared {
        _ if json => print_json(&change)?,
        Some(revision) => println!("{}", shared(revision)),
        None => {}
    }
    published.map(|_| ())
}

/// What people are told when a change went out as the shared change `revision`.
fn shared(revision: i64) -> String {
    format!("shared with every daemon of the database (change {revision})")
}

/// Publishes the change just made to the plugin `name` to the database, for the other daemons
/// that use it, when installs are shared through it (`plugin::shared`): when `database_url`
/// names it. The shared change's number, if it was.
async fn share(home: &Home, name: &str) -> anyhow::Result<Option<i64>> {
    let config = ServerConfig::load(&home.config_file())?;
    if config.database_url.is_none() {
        return Ok(None);
    }
    let not_shared = || {
        format!(
            "{name} was changed here but not shared with the other daemons of the database; \
             `mecha plugin share {name}` shares it"
        )
    };
    let store = super::open_store(home).await.with_context(not_shared)?;
    let published = SharedInstalls::new(store.clone(), Installed::new(home.plugins_dir()))
        .publish(name)
        .await;
    let closed = store.close().await;
    let revision = published.with_context(not_shared)?;
    closed?;
    Ok(Some(revision))
}

#[derive(Debug, Args)]
pub struct Share {
    /// The plugin's name.
    name: String,
    /// Print JSON: `name`, `current` (the version published; absent when its removal was) and
    /// `shared` (the shared change's number).
    #[arg(long)]
    json: bool,
}

impl Share {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let Some(revision) = share(home, &self.name).await? else {
            anyhow::bail!(
                "plugin installs are shared only through a database that database_url (or \
                 MECHA_DATABASE_URL) names; this home uses its own"
            );
        };
        let change = Change {
            current: Installed::new(home.plugins_dir())
                .entry(&self.name)
                .ok()
                .map(|entry| entry.current),
            name: self.name,
            replaced: None,
            shared: Some(revision),
        };
        print_outcome(self.json, &change, &shared(revision))
    }
}

/// A loader on the engine the daemon would run, from the home's `config.yml`.
fn loader(home: &Home) -> anyhow::Result<Loader> {
    loader_for(home, &ServerConfig::load(&home.config_file())?)
}

fn loader_for(home: &Home, config: &ServerConfig) -> anyhow::Result<Loader> {
    let runtime = Runtime::new(RuntimeOptions::from_config(config))?;
    Ok(Loader::new(Arc::new(runtime), Some(home.cache_dir()))?)
}

/// The lock entries of installed plugins, by the path of their component, for showing where
/// each came from (a file being inspected has no entry, even if it has an installed name).
fn lock_entries(home: &Home) -> anyhow::Result<BTreeMap<PathBuf, LockEntry>> {
    let dir = home.plugins_dir();
    Ok(Installed::new(dir.clone())
        .entries()?
        .into_iter()
        .map(|entry| (dir.join(&entry.current.file), entry))
        .collect())
}

/// A listed plugin with where it was installed from, what it was granted and the versions kept
/// for rollback, as `plugin ls --json` and `inspect --json` print it.
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    plugin: &'a LoadedPlugin,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    granted: Option<&'a Grants>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    replaces_bundled: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    previous: Vec<Kept<'a>>,
}

/// A version kept for rollback.
#[derive(serde::Serialize)]
struct Kept<'a> {
    version: &'a str,
    sha256: &'a str,
}

impl<'a> Listed<'a> {
    /// `plugin` with what its lock entry records, if it is installed.
    fn of(plugin: &'a LoadedPlugin, entries: &'a BTreeMap<PathBuf, LockEntry>) -> Listed<'a> {
        let entry = entry_of(entries, plugin);
        let current = entry.map(|entry| &entry.current);
        Listed {
            plugin,
            source: current.and_then(|version| version.source.as_deref()),
            signer: current.and_then(|version| version.signer.as_deref()),
            granted: current.and_then(|version| version.granted.as_ref()),
            replaces_bundled: current.is_some_and(|version| version.replaces_bundled),
            previous: entry
                .map(|entry| {
                    entry
                        .previous
                        .iter()
                        .map(|version| Kept {
                            version: &version.version,
                            sha256: &version.sha256,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The lock entry of `plugin` when it is an installed one.
fn entry_of<'a>(
    entries: &'a BTreeMap<PathBuf, LockEntry>,
    plugin: &LoadedPlugin,
) -> Option<&'a LockEntry> {
    match &plugin.origin {
        Origin::Installed(path) => entries.get(path),
        Origin::Bundled => None,
    }
}

#[derive(Debug, Args)]
pub struct List {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl List {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let loader = loader(home)?;
        let registry = PluginRegistry::load(&loader, &Installed::new(home.plugins_dir())).await?;
        let plugins: Vec<&LoadedPlugin> = registry.iter().map(|plugin| plugin.as_ref()).collect();
        let entries = lock_entries(home)?;
        if self.json {
            let listed: Vec<Listed> = plugins
                .iter()
                .map(|plugin| Listed::of(plugin, &entries))
                .collect();
            return print_json(&listed);
        }
        let rows: Vec<Vec<String>> = plugins
            .iter()
            .map(|plugin| {
                vec![
                    plugin.info.name.clone(),
                    plugin.world.to_string(),
                    plugin.info.version.clone(),
                    plugin.wit_version.clone(),
                    plugin.sha256[..12].to_owned(),
                    origin(&plugin.origin),
                    entry_of(&entries, plugin)
                        .and_then(|entry| entry.current.signer.clone())
                        .unwrap_or_else(|| "-".into()),
                    entry_of(&entries, plugin)
                        .and_then(|entry| entry.current.source.clone())
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(
                &[
                    "NAME", "KIND", "VERSION", "WIT", "SHA256", "ORIGIN", "SIGNER", "SOURCE"
                ],
                &rows
            )
        );
        Ok(())
    }
}

fn origin(origin: &Origin) -> String {
    match origin {
        Origin::Bundled => "bundled".into(),
        Origin::Installed(_) => "installed".into(),
    }
}

#[derive(Debug, Args)]
pub struct Remove {
    /// The installed plugin's name.
    name: String,
    /// Print JSON: `name`, `replaced` (the version removed) and `shared`.
    #[arg(long)]
    json: bool,
}

impl Remove {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let entry = Installed::new(home.plugins_dir()).remove(&self.name)?;
        let text = format!(
            "removed {} {}; a running daemon stops using it within a second",
            entry.name, entry.current.version
        );
        let change = Change {
            name: entry.name,
            current: None,
            replaced: Some(entry.current),
            shared: None,
        };
        announce(home, change, self.json, &text).await
    }
}

#[derive(Debug, Args)]
pub struct Rollback {
    /// The installed plugin's name.
    name: String,
    /// Print JSON: `name`, `current` (the version restored), `replaced` (the one it left) and
    /// `shared`.
    #[arg(long)]
    json: bool,
}

impl Rollback {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let (left, restored) = Installed::new(home.plugins_dir()).rollback(&self.name)?;
        let text = format!(
            "rolled {} back from {} to {}; a running daemon switches to it within a second",
            self.name,
            left.label(),
            restored.label()
        );
        let change = Change {
            name: self.name,
            current: Some(restored),
            replaced: Some(left),
            shared: None,
        };
        announce(home, change, self.json, &text).await
    }
}

#[derive(Debug, Args)]
pub struct Inspect {
    /// A .wasm file, or the name of a bundled or installed plugin.
    target: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl Inspect {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let loader = loader(home)?;
        let entries = lock_entries(home)?;
        let path = PathBuf::from(&self.target);
        let plugins = if path.is_file() {
            let wasm = component_file::read(&path)?;
            vec![
                loader
                    .load(&self.target, &wasm, Origin::Installed(path))
                    .await?,
            ]
        } else {
            let registry =
                PluginRegistry::load(&loader, &Installed::new(home.plugins_dir())).await?;
            let plugins: Vec<LoadedPlugin> = registry
                .named(&self.target)
                .map(|plugin| plugin.as_ref().clone())
                .collect();
            if plugins.is_empty() {
                anyhow::bail!(
                    "no file or plugin named {}; `mecha plugin ls` lists plugins",
                    self.target
                );
            }
            plugins
        };
        if self.json {
            // One object for one plugin; a list when a name is shared by several worlds (the
            // `github` source and responder).
            let listed: Vec<Listed> = plugins
                .iter()
                .map(|plugin| Listed::of(plugin, &entries))
                .collect();
            match listed.as_slice() {
                [plugin] => print_json(plugin)?,
                listed => print_json(&listed)?,
            }
        } else {
            let described: Vec<String> = plugins
                .iter()
                .map(|plugin| {
                    let mut text = describe(plugin);
                    if let Some(entry) = entry_of(&entries, plugin) {
                        let current = &entry.current;
                        text.push_str(&format!(
                            "source:    {}\nsigned by: {}\n",
                            current.source.as_deref().unwrap_or("not recorded"),
                            current.signer.as_deref().unwrap_or("nobody (unsigned)"),
                        ));
                        match &current.granted {
                            Some(granted) => {
                                text.push_str("granted:\n");
                                for line in granted.describe().lines() {
                                    text.push_str(&format!("  {line}\n"));
                                }
                            }
                            None => text.push_str(
                                "granted:   what it declares (installed before grants were recorded)\n",
                            ),
                        }
                        if !entry.previous.is_empty() {
                            let kept: Vec<String> =
                                entry.previous.iter().map(|version| version.label()).collect();
                            text.push_str(&format!("kept:      {}\n", kept.join(", ")));
                        }
                    }
                    text
                })
                .collect();
            print!("{}", described.join("\n"));
        }
        Ok(())
    }
}

fn describe(plugin: &LoadedPlugin) -> String {
    format!(
        "name:      {}\nkind:      {} (mecha:plugin@{})\nversion:   {}\nsummary:   {}\nsha256:    {}\n\
         secrets:   {}\nsettings:  {}\nhosts:     {}\n",
        plugin.info.name,
        plugin.world,
        plugin.wit_version,
        plugin.info.version,
        plugin.info.summary,
        plugin.sha256,
        listed(&plugin.info.secrets),
        listed(&plugin.info.settings),
        listed(&plugin.info.hosts),
    )
}
