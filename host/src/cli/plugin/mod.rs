//! `mecha plugin ls|install|rm|inspect|test|new|trust|push`.
//!
//! Installing brings the component from a file or a URL (`plugin::fetch`), checks its digest
//! and signature (`plugin::trust`) and validates it (its world, its imports, its description)
//! before it is copied in, and shows what the plugin asks for. A running daemon picks up
//! changes when it is restarted.

mod new;
mod push;
mod test;
mod trust;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::table;
use crate::config::home::Home;
use crate::config::server::ServerConfig;
use crate::plugin::engine::RuntimeOptions;
use crate::plugin::fetch::{FetchOptions, fetch};
use crate::plugin::install::{Installed, LockEntry, Provenance};
use crate::plugin::loader::{LoadedPlugin, Loader, Origin};
use crate::plugin::trust::{Requirements, TrustedKeys, parse_sha256, read_signature};
use crate::plugin::{PluginRegistry, Runtime, component_file};

#[derive(Debug, Subcommand)]
pub enum Plugin {
    /// List the plugins the daemon would run: bundled ones and installed ones.
    Ls(List),
    /// Validate a plugin component (.wasm, at most 64 MiB) from a file or a URL and install it,
    /// replacing an installed one of the same name. A bundled plugin's name is refused.
    Install(Install),
    /// Remove an installed plugin.
    Rm(Remove),
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
            Plugin::Rm(command) => command.run(&home),
            Plugin::Inspect(command) => command.run(&home).await,
            Plugin::Test(command) => command.run(&home).await,
            Plugin::Trust(command) => command.run(&home),
            Plugin::Push(command) => command.run(&home).await,
        }
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
        .map(|entry| (dir.join(&entry.file), entry))
        .collect())
}

/// A listed plugin with where it was installed from, as `plugin ls --json` prints it.
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    plugin: &'a LoadedPlugin,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<&'a str>,
}

impl<'a> Listed<'a> {
    /// `plugin` with the source and signer its lock entry records, if it is installed.
    fn of(plugin: &'a LoadedPlugin, entries: &'a BTreeMap<PathBuf, LockEntry>) -> Listed<'a> {
        let entry = entry_of(entries, plugin);
        Listed {
            plugin,
            source: entry.and_then(|entry| entry.source.as_deref()),
            signer: entry.and_then(|entry| entry.signer.as_deref()),
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
            println!("{}", serde_json::to_string_pretty(&listed)?);
            return Ok(());
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
                        .and_then(|entry| entry.signer.clone())
                        .unwrap_or_else(|| "-".into()),
                    entry_of(&entries, plugin)
                        .and_then(|entry| entry.source.clone())
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
pub struct Install {
    /// The plugin component, built for wasm32-wasip2: a file, or an https:// URL (which needs
    /// --sha256 or a signature by a trusted key; its signature is looked for at <URL>.minisig),
    /// or oci://HOST/REPO:TAG or oci://HOST/REPO@sha256:DIGEST (its signature is looked for
    /// under the tag sha256-<manifest digest>.minisig).
    source: String,
    /// The component's sha256 (64 hex digits, as `sha256sum` prints them); the download is
    /// refused before anything is written when it differs.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// A minisign signature of the component (`minisign -S` writes FILE.minisig), by a key
    /// trusted with `mecha plugin trust add`.
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
    /// Allow plain http:// to a host that is not loopback.
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    login: push::RegistryLogin,
}

impl Install {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let config = ServerConfig::load(&home.config_file())?;
        let sha256 = self.sha256.as_deref().map(parse_sha256).transpose()?;
        let given_signature = self.signature.as_deref().map(read_signature).transpose()?;
        let options = FetchOptions {
            insecure: self.insecure,
            signature_beside: given_signature.is_none(),
            registry: self.login.credentials()?,
            ..FetchOptions::default()
        };
        let fetched = fetch(&self.source, &options)
            .await
            .with_context(|| format!("installing {}", self.source))?;
        let requirements = Requirements {
            sha256: sha256.or(fetched.pinned_sha256.clone()),
            require_signature: config.plugins.require_signature,
            remote: self.source.contains("://"),
        };
        let signature = given_signature.or(fetched.signature);
        let signer = TrustedKeys::in_home(home.root())
            .admit(
                &fetched.source,
                &fetched.bytes,
                signature.as_deref(),
                &requirements,
            )
            .with_context(|| format!("installing {}", self.source))?;
        let label = fetched
            .source
            .rsplit('/')
            .next()
            .unwrap_or(&fetched.source)
            .to_owned();
        let provenance = Provenance {
            source: fetched.source,
            signer: signer.as_ref().map(|key| key.id.clone()),
        };
        let loader = loader_for(home, &config)?;
        let plugin = Installed::new(home.plugins_dir())
            .install_bytes(&loader, &label, &fetched.bytes, provenance)
            .await
            .with_context(|| format!("installing {}", self.source))?;
        print!("{}", describe(&plugin));
        if let Some(key) = &signer {
            println!("signed by: {} ({})", key.id, key.comment);
        }
        println!(
            "installed {} {}; restart `mecha serve` to use it",
            plugin.info.name, plugin.info.version
        );
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct Remove {
    /// The installed plugin's name.
    name: String,
}

impl Remove {
    fn run(self, home: &Home) -> anyhow::Result<()> {
        let entry = Installed::new(home.plugins_dir()).remove(&self.name)?;
        println!("removed {} {}", entry.name, entry.version);
        Ok(())
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
                [plugin] => println!("{}", serde_json::to_string_pretty(plugin)?),
                listed => println!("{}", serde_json::to_string_pretty(listed)?),
            }
        } else {
            let described: Vec<String> = plugins
                .iter()
                .map(|plugin| {
                    let mut text = describe(plugin);
                    if let Some(entry) = entry_of(&entries, plugin) {
                        text.push_str(&format!(
                            "source:    {}\nsigned by: {}\n",
                            entry.source.as_deref().unwrap_or("not recorded"),
                            entry.signer.as_deref().unwrap_or("nobody (unsigned)"),
                        ));
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
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    format!(
        "name:      {}\nkind:      {} (mecha:plugin@{})\nversion:   {}\nsummary:   {}\nsha256:    {}\n\
         secrets:   {}\nsettings:  {}\nhosts:     {}\n",
        plugin.info.name,
        plugin.world,
        plugin.wit_version,
        plugin.info.version,
        plugin.info.summary,
        plugin.sha256,
        list(&plugin.info.secrets),
        list(&plugin.info.settings),
        list(&plugin.info.hosts),
    )
}
