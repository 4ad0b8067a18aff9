//! `mecha worker add|remove|start|stop|ls`.

use std::sync::Arc;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::{open_store, redactor, table};
use crate::config::home::Home;
use crate::config::worker::{self as definitions, WorkerKind};
use crate::store::{AuditEntry, AuditLog, EventStore, SqliteStore, WorkerState, WorkerStore};
use crate::worker::client::{Health, WorkerClient};
use crate::worker::registry::{Workers, process_environment};
use crate::worker::view::views;

/// 5 s per health probe, as `mecha worker ls` waits for all of them at once.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Subcommand)]
pub enum Worker {
    /// Validate worker definitions (a YAML file or a directory of them) and add them, all or
    /// none.
    Add(Add),
    /// Remove a worker; it must be stopped first.
    Remove(Remove),
    /// Mark a live worker online (after a health check); adapter workers start with `mecha serve`.
    Start(Start),
    /// Mark a worker offline: its tasks fail instead of being sent.
    Stop(Stop),
    /// List workers with their state and a live health check.
    Ls(List),
}

impl Worker {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        let store = open_store(&home)?;
        let result = match self {
            Worker::Add(command) => command.run(&store).await,
            Worker::Remove(command) => command.run(&store).await,
            Worker::Start(command) => command.run(&home, &store).await,
            Worker::Stop(command) => command.run(&store).await,
            Worker::Ls(command) => command.run(&home, store.clone()).await,
        };
        store.close().await?;
        result
    }
}

#[derive(Debug, Args)]
pub struct Add {
    /// A worker YAML file, or a directory whose *.yml and *.yaml files are all added.
    path: PathBuf,
}

impl Add {
    async fn run(self, store: &Arc<SqliteStore>) -> anyhow::Result<()> {
        let workers =
            definitions::load(&self.path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
        let mut rows = Vec::with_capacity(workers.len());
        for worker in &workers {
            // Stored as written; checked as the daemon will resolve it, with this environment.
            let resolved = worker.interpolate(&|name| std::env::var(name).ok())?;
            resolved
                .validate_host()
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            rows.push((worker.name.clone(), serde_json::to_value(worker)?));
        }
        store.add_workers(rows).await?;
        for worker in &workers {
            let entry = AuditEntry::new(format!("worker:{}", worker.name), "worker.state")
                .worker(&worker.name)
                .detail(serde_json::json!({ "state": "offline", "reason": "added" }));
            store.record(entry).await?;
            println!(
                "added {} ({})",
                worker.name,
                crate::worker::view::kind_label(worker.kind())
            );
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct Remove {
    name: String,
}

impl Remove {
    async fn run(self, store: &Arc<SqliteStore>) -> anyhow::Result<()> {
        store.remove_worker(&self.name).await?;
        println!("removed {}", self.name);
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct Start {
    name: String,
}

impl Start {
    async fn run(self, home: &Home, store: &Arc<SqliteStore>) -> anyhow::Result<()> {
        let workers = Workers::new(store.clone(), process_environment());
        let worker = match workers.get(&self.name).await? {
            Some(worker) => worker,
            None => match workers.problem(&self.name).await? {
                Some(problem) => bail!("cannot start {}: {problem}", self.name),
                None => bail!(
                    "no worker named {}; `mecha worker ls` lists them",
                    self.name
                ),
            },
        };
        match worker.def.kind() {
            WorkerKind::Adapter => bail!(
                "{} is an adapter worker: `mecha serve` starts it (and stops it at shutdown)",
                self.name
            ),
            WorkerKind::Managed => bail!(
                "{} is a managed (Docker) worker; this build of mecha does not run Docker workers yet",
                self.name
            ),
            WorkerKind::Live => {}
        }
        // Probed before it is marked online, so the daemon never sends to it untested.
        let endpoint = worker.endpoint.clone().unwrap_or_default();
        let client = WorkerClient::new(redactor(home));
        let (state, error, message) = match client.health(&endpoint, PROBE_TIMEOUT).await {
            Health::Healthy => (WorkerState::Online, None, format!("started {}", self.name)),
            health => (
                WorkerState::Error,
                Some(format!("health check failed: {health:?}")),
                format!(
                    "started {} (warning: health check failed; mecha keeps probing and uses it once healthy)",
                    self.name
                ),
            ),
        };
        store
            .set_worker_state(&self.name, &[WorkerState::Offline], state, error)
            .await
            .with_context(|| format!("{} must be offline to start", self.name))?;
        println!("{message}");
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct Stop {
    name: String,
}

impl Stop {
    async fn run(self, store: &Arc<SqliteStore>) -> anyhow::Result<()> {
        store
            .set_worker_state(
                &self.name,
                &[WorkerState::Online, WorkerState::Busy, WorkerState::Error],
                WorkerState::Offline,
                None,
            )
            .await?;
        println!("stopped {}", self.name);
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct List {
    /// Print JSON (with sanitized definitions) instead of a table.
    #[arg(long)]
    json: bool,
}

impl List {
    async fn run(self, home: &Home, store: Arc<SqliteStore>) -> anyhow::Result<()> {
        let redactor = redactor(home);
        let workers = views(store.as_ref(), &redactor).await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&workers)?);
            return Ok(());
        }
        let client = WorkerClient::new(redactor.clone());
        let probes: Vec<_> = workers
            .iter()
            .map(|worker| {
                let (client, state, endpoint) =
                    (client.clone(), worker.state, worker.endpoint.clone());
                let error = redactor.redact(&worker.error).into_owned();
                tokio::spawn(async move {
                    match state {
                        WorkerState::Offline => "-".to_owned(),
                        WorkerState::Error => error,
                        _ if endpoint.is_empty() => "no endpoint".to_owned(),
                        _ => match client.health(&endpoint, PROBE_TIMEOUT).await {
                            Health::Healthy => "ok".to_owned(),
                            Health::Busy => "busy".to_owned(),
                            Health::Unhealthy(_) => "unreachable".to_owned(),
                        },
                    }
                })
            })
            .collect();
        let mut health = Vec::with_capacity(probes.len());
        for probe in probes {
            health.push(probe.await.unwrap_or_else(|_| "unknown".to_owned()));
        }
        let rows: Vec<Vec<String>> = workers
            .iter()
            .zip(health)
            .map(|(worker, health)| {
                vec![
                    worker.name.clone(),
                    worker.kind.to_owned(),
                    worker.state.as_str().to_owned(),
                    worker.endpoint.clone(),
                    health,
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(&["NAME", "TYPE", "STATE", "ENDPOINT", "HEALTH"], &rows)
        );
        Ok(())
    }
}
