//! The command line: one file per command group, each command a struct with a `run`.
//!
//! Commands call the same functions as the daemon (`store/`, `plugin/`, `daemon`); none holds
//! SQL or pipeline decisions. Errors reach `main` as `anyhow` chains.

pub mod dashboard;
pub mod dev;
pub mod doctor;
pub mod events;
pub mod http_client;
pub mod logs;
pub mod plugin;
pub mod serve;
pub mod show_config;
pub mod table;
pub mod tasks;
pub mod worker;

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::home::Home;
use crate::config::secrets::{Secret, Secrets};
use crate::config::server::ServerConfig;
use crate::redact::Redactor;
use crate::store::{Database, Durability, Store};

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
    /// Add, remove, start, stop and list workers.
    #[command(subcommand)]
    Worker(worker::Worker),
    /// Print stored worker definitions as YAML, or JSON with --json (secrets hidden).
    Config(show_config::ShowConfig),
    /// List, show and retry tasks.
    #[command(subcommand)]
    Tasks(tasks::Tasks),
    /// Show the audit trail.
    Logs(logs::Logs),
    /// Check the setup and every worker, and say what to fix.
    Doctor(doctor::Doctor),
    /// Print a one-time link that signs a browser in to the local daemon's dashboard (/ui).
    Dashboard(dashboard::Dashboard),
    /// Tools for trying mecha out locally.
    #[command(subcommand)]
    Dev(dev::Dev),
    /// Print a shell completion script.
    ///
    /// For example `mecha completions bash > /etc/bash_completion.d/mecha`,
    /// `mecha completions zsh > "${fpath[1]}/_mecha"` or
    /// `mecha completions fish > ~/.config/fish/completions/mecha.fish`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Writes the completion script for `shell` to stdout. It is made in memory first, because
/// clap_complete panics when it cannot write; a reader that stops early (`| head`) is not an
/// error.
fn print_completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    let mut command = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "mecha", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::anyhow!(
            "could not write the completion script: {err}"
        )),
        _ => Ok(()),
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let home = Home::from_env();
        match self.command {
            Command::Serve(command) => command.run(home).await,
            Command::Events(command) => command.run(home).await,
            Command::Plugin(command) => command.run(home).await,
            Command::Worker(command) => command.run(home).await,
            Command::Config(command) => command.run(home).await,
            Command::Tasks(command) => command.run(home).await,
            Command::Logs(command) => command.run(home).await,
            Command::Doctor(command) => command.run(home).await,
            Command::Dashboard(command) => command.run(home).await,
            Command::Dev(command) => command.run(home).await,
            Command::Completions { shell } => print_completions(shell),
        }
    }
}

/// Prints `value` as the one JSON document that a command's `--json` writes on stdout.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints what a command did: `value` as JSON with `--json`, else `text` for people.
fn print_outcome(json: bool, value: &impl serde::Serialize, text: &str) -> anyhow::Result<()> {
    if json {
        return print_json(value);
    }
    println!("{text}");
    Ok(())
}

/// Prints `text` for the person at the terminal while a command works: on stdout, or on stderr
/// with `--json`, whose stdout holds the JSON document alone.
fn print_note(json: bool, text: &str) {
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// The database, for commands that read or change it directly: the one `database_url` (or
/// `MECHA_DATABASE_URL`) names, as the daemon uses it.
async fn open_store(home: &Home) -> anyhow::Result<Arc<dyn Store>> {
    home.ensure()?;
    let database = database(home)?;
    database
        .open(Durability::Full)
        .await
        .with_context(|| format!("opening the database {}", database.describe()))
}

/// The database this home's daemon uses.
fn database(home: &Home) -> anyhow::Result<Database> {
    let config = ServerConfig::load(&home.config_file())?;
    Ok(Database::from_url(
        config.database_url.as_ref().map(Secret::expose),
        &home.database(),
    )?)
}

/// Posts to the running daemon's API at `url` with this home's key; the answer's body, or an
/// error with the daemon's status and answer.
async fn post_to_daemon(home: &Home, url: &str) -> anyhow::Result<String> {
    let mut request = http_client::client()?.post(url);
    if let Some(key) = api_key(home)? {
        request = request.header("X-API-Key", key.expose());
    }
    let response = http_client::send(request, url).await?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("the daemon answered {status}: {text}");
    }
    Ok(text)
}

/// The key this home's daemon requires, for commands that call its API: `MECHA_API_KEY`,
/// `api_key` in config.yml, or the key the daemon generated into the mecha directory.
fn api_key(home: &Home) -> anyhow::Result<Option<Secret>> {
    Ok(crate::config::api_key::for_client(
        home,
        std::env::var("MECHA_API_KEY").ok(),
    )?)
}

/// Hides credentials and the configured secrets in what commands print. A secrets file that
/// cannot be read still leaves the credential patterns.
fn redactor(home: &Home) -> Redactor {
    let secrets = Secrets::load(&home.secrets_file()).unwrap_or_default();
    let config = ServerConfig::load(&home.config_file()).unwrap_or_default();
    let mut values = crate::daemon::redacted_values(&secrets, &config);
    if let Ok(Some(key)) = api_key(home) {
        values.push(key.expose().to_owned());
    }
    Redactor::new(values)
}
