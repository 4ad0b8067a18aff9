//! The command line: one file per command group, each command a struct with a `run`.
//!
//! Commands call the same functions as the daemon (`store/`, `plugin/`, `daemon`); none holds
//! SQL or pipeline decisions. Errors reach `main` as `anyhow` chains.

pub mod dev;
pub mod events;
pub mod plugin;
pub mod serve;
pub mod table;

use clap::{Parser, Subcommand};

use crate::config::home::Home;

const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MECHA_GIT_COMMIT"),
    ")"
);

/// mecha turns webhooks and schedules into tasks for AI-agent workers, through sandboxed
/// WebAssembly plugins.
///
/// Files live in $MECHA_HOME (default ~/.mecha): config.yml, secrets.yml (mode 0600),
/// mecha.db, plugins/.
#[derive(Debug, Parser)]
#[command(name = "mecha", version = VERSION, propagate_version = true)]
pub struct Cli {
    /// Log as JSON lines instead of text (also MECHA_LOG_FORMAT=json).
    #[arg(long, global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: receive webhooks, store events, serve the API.
    Serve(serve::Serve),
    /// List and inspect stored events.
    #[command(subcommand)]
    Events(events::Events),
    /// List, install, remove and inspect plugins.
    #[command(subcommand)]
    Plugin(plugin::Plugin),
    /// Tools for trying mecha out locally.
    #[command(subcommand)]
    Dev(dev::Dev),
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let home = Home::from_env();
        match self.command {
            Command::Serve(command) => command.run(home).await,
            Command::Events(command) => command.run(home).await,
            Command::Plugin(command) => command.run(home).await,
            Command::Dev(command) => command.run(home).await,
        }
    }
}
