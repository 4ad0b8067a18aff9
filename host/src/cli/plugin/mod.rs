//! `mecha plugin ls|install|rm|inspect|test|new`.
//!
//! Installing validates the component (its world, its imports, its description) before it is
//! copied in, and shows what the plugin asks for. A running daemon picks up changes when it is
//! restarted.

mod new;
mod test;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::table;
use crate::config::home::Home;
use crate::config::server::ServerConfig;
use crate::plugin::engine::RuntimeOptions;
use crate::plugin::install::Installed;
use crate::plugin::loader::{LoadedPlugin, Loader, Origin};
use crate::plugin::{PluginRegistry, Runtime, component_file};

#[derive(Debug, Subcommand)]
pub enum Plugin {
    /// List the plugins the daemon would run: bundled ones and installed ones.
    Ls(List),
    /// Validate a plugin component (.wasm, at most 64 MiB) and install it, replacing an
    /// installed one of the same name. A bundled plugin's name is refused.
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
        }
    }
}

/// A loader on the engine the daemon would run, from the home's `config.yml`.
fn loader(home: &Home) -> anyhow::Result<Loader> {
    let config = ServerConfig::load(&home.config_file())?;
    let runtime = Runtime::new(RuntimeOptions::from_config(&config))?;
    Ok(Loader::new(Arc::new(runtime), Some(home.cache_dir()))?)
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
        if self.json {
            println!("{}", serde_json::to_string_pretty(&plugins)?);
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
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(
                &["NAME", "KIND", "VERSION", "WIT", "SHA256", "ORIGIN"],
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
    /// The plugin component, built for wasm32-wasip2.
    file: PathBuf,
}

impl Install {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let loader = loader(home)?;
        let plugin = Installed::new(home.plugins_dir())
            .install(&loader, &self.file)
            .await
            .with_context(|| format!("installing {}", self.file.display()))?;
        print!("{}", describe(&plugin));
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
            match plugins.as_slice() {
                [plugin] => println!("{}", serde_json::to_string_pretty(plugin)?),
                plugins => println!("{}", serde_json::to_string_pretty(plugins)?),
            }
        } else {
            let described: Vec<String> = plugins.iter().map(describe).collect();
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
