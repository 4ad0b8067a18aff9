//! `mecha events ls|show|replay`.

use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::table;
use crate::config::home::Home;
use crate::config::server::ServerConfig;
use crate::store::timestamp;
use crate::store::{EventFilter, EventId, EventState, EventSummary, Store};

#[derive(Debug, Subcommand)]
pub enum Events {
    /// List stored events, newest first.
    Ls(List),
    /// Show one event with its attributes and raw body.
    Show(Show),
    /// Process a stored event again, as a new event linked to it in the audit trail. Needs a
    /// running daemon.
    Replay(Replay),
}

impl Events {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        // Replaying asks the running daemon, which owns the pipeline; the others read the store.
        let reader = match self {
            Events::Replay(command) => return command.run(&home).await,
            Events::Ls(command) => Reader::List(command),
            Events::Show(command) => Reader::Show(command),
        };
        let store = super::open_store(&home).await?;
        let result = match reader {
            Reader::List(command) => command.run(&store).await,
            Reader::Show(command) => command.run(&store).await,
        };
        store.close().await?;
        result
    }
}

/// The commands that read the store.
enum Reader {
    List(List),
    Show(Show),
}

#[derive(Debug, Args)]
pub struct List {
    /// Only events in this state (received, matched, dispatched, completed, skipped, failed,
    /// write_back_failed).
    #[arg(long)]
    state: Option<EventState>,
    /// Only events from this source.
    #[arg(long)]
    source: Option<String>,
    /// At most this many events (1-1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl List {
    async fn run(self, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        // Summaries: a list never loads bodies, which may be megabytes each.
        let events = store
            .list_summaries(EventFilter {
                state: self.state,
                source: self.source,
                limit: self.limit,
                ..EventFilter::default()
            })
            .await?;
        if self.json {
            return super::print_json(&events);
        }
        let rows: Vec<Vec<String>> = events.iter().map(row).collect();
        print!(
            "{}",
            table::render(
                &[
                    "ID", "SOURCE", "TYPE", "ACTOR", "SUBJECT", "STATE", "CREATED"
                ],
                &rows
            )
        );
        Ok(())
    }
}

fn row(event: &EventSummary) -> Vec<String> {
    vec![
        event.id.to_string(),
        event.source.clone(),
        event.event_type.clone(),
        event.actor.clone(),
        event.subject.clone(),
        event.state.as_str().to_owned(),
        timestamp::rfc3339(event.created_at),
    ]
}

#[derive(Debug, Args)]
pub struct Show {
    /// The event's id (32 hex characters).
    id: EventId,
    /// Print JSON (the default prints the same, without the raw body).
    #[arg(long)]
    json: bool,
}

impl Show {
    async fn run(self, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        let event = store.get(&self.id).await?.with_context(|| {
            format!("no event with id {}; `mecha events ls` lists them", self.id)
        })?;
        let mut json = serde_json::to_value(&event)?;
        if !self.json
            && let Some(object) = json.as_object_mut()
        {
            object.remove("raw");
        }
        super::print_json(&json)
    }
}

#[derive(Debug, Args)]
pub struct Replay {
    /// The event's id.
    id: EventId,
    /// The daemon's address (default: addr from config.yml).
    #[arg(long)]
    addr: Option<String>,
    /// Print the daemon's answer as JSON: `replay_of` (the original's id) and `event` (the new
    /// event, with its id and state).
    #[arg(long)]
    json: bool,
}

impl Replay {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let config = ServerConfig::load(&home.config_file())?;
        let addr = self.addr.unwrap_or_else(|| config.addr.to_string());
        let url = format!("http://{addr}/events/{}/replay", self.id);
        let text = super::post_to_daemon(home, &url).await?;
        let reply: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("the daemon's answer is not JSON: {text}"))?;
        super::print_outcome(
            self.json,
            &reply,
            &format!(
                "replayed {} as {}",
                self.id,
                reply["event"]["id"].as_str().unwrap_or("?")
            ),
        )
    }
}
