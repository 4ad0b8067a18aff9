//! `mecha worker add|update|remove|start|stop|ls`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{open_store, print_json, redactor, table};
use crate::config::home::Home;
use crate::config::secrets::Secrets;
use crate::config::worker::{self as definitions, policy};
use crate::plugin::World;
use crate::plugin::install::Installed;
use crate::store::{AuditEntry, Store, WorkerState};
use crate::worker::client::{Health, WorkerClient};
use crate::worker::docker::{Containers, HostUser, Timing};
use crate::worker::registry::{Worker as RegisteredWorker, Workers, process_environment};
use crate::worker::runtime::{Parts, Runtimes};
use crate::worker::state::WorkerStates;
use crate::worker::view::{WorkerView, views};

/// 5 s per health probe, as `mecha worker ls` waits for all of them at once.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Subcommand)]
pub enum Worker {
    /// Validate worker definitions (a YAML file or a directory of them) and add them, all or
    /// none.
    Add(Add),
    /// Replace the definitions of added workers (a YAML file or a directory of them), checked
    /// as `add` checks them; a running daemon uses them from the next task on, without a
    /// restart.
    Update(Update),
    /// Remove a worker. A managed worker's container is removed with it; other workers must be
    /// stopped first.
    Remove(Remove),
    /// Start a worker: a managed worker's container is created and started (its image pulled
    /// if missing) and waited for until healthy, up to 90 s; a live worker is health-checked
    /// and marked online. Adapter workers start with `mecha serve`.
    Start(Start),
    /// Stop a worker: a managed worker's container is stopped; its tasks fail instead of being
    /// sent until it is started again.
    Stop(Stop),
    /// List workers with their state and a live health check.
    Ls(List),
}

impl Worker {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        let store = open_store(&home).await?;
        let result = match self {
            Worker::Add(command) => command.run(&home, &store).await,
            Worker::Update(command) => command.run(&home, &store).await,
            Worker::Remove(command) => command.run(&home, &store).await,
            Worker::Start(command) => command.run(&home, &store).await,
            Worker::Stop(command) => command.run(&home, &store).await,
            Worker::Ls(command) => command.run(&home, store.clone()).await,
        };
        store.close().await?;
        result
    }
}

/// What a worker command did to one worker, as its `--json` prints it.
#[derive(Serialize)]
struct Outcome {
    /// `added`, `updated`, `removed`, `started` or `stopped`.
    action: &'static str,
    /// The worker as `worker ls --json` shows it, secrets hidden: as the command left it, or
    /// as it was when removed.
    #[serde(flatten)]
    worker: WorkerView,
    /// What the text output says of it.
    message: String,
}

/// The outcome of `action` on the worker `name`, with the worker as it is now.
async fn outcome(
    home: &Home,
    store: &Arc<dyn Store>,
    action: &'static str,
    name: &str,
    message: String,
) -> anyhow::Result<Outcome> {
    let worker = views(store.as_ref(), &redactor(home))
        .await?
        .into_iter()
        .find(|view| view.name == name)
        .with_context(|| format!("no worker named {name}; `mecha worker ls` lists them"))?;
    Ok(Outcome {
        action,
        worker,
        message,
    })
}

/// Says what `action` did to the worker `name`: `message` for people, its outcome with `json`.
async fn print_one(
    home: &Home,
    store: &Arc<dyn Store>,
    json: bool,
    action: &'static str,
    name: &str,
    message: String,
) -> anyhow::Result<()> {
    if json {
        return print_json(&outcome(home, store, action, name, message).await?);
    }
    println!("{message}");
    Ok(())
}

/// Says what `action` did to each worker of `done` (a name with what to tell of it): the
/// messages for people, the list of outcomes with `json`.
async fn print_all(
    home: &Home,
    store: &Arc<dyn Store>,
    json: bool,
    action: &'static str,
    done: Vec<(String, String)>,
) -> anyhow::Result<()> {
    if !json {
        for (_, message) in &done {
            println!("{message}");
        }
        return Ok(());
    }
    let mut outcomes = Vec::with_capacity(done.len());
    for (name, message) in done {
        outcomes.push(outcome(home, store, action, &name, message).await?);
    }
    print_json(&outcomes)
}

#[derive(Debug, Args)]
pub struct Add {
    /// A worker YAML file, or a directory whose *.yml and *.yaml files are all added.
    path: PathBuf,
    /// Print a JSON list with an object per added worker: `action`, `message` and the worker
    /// as `worker ls --json` shows it (`name`, `kind`, `state`, ...).
    #[arg(long)]
    json: bool,
}

impl Add {
    async fn run(self, home: &Home, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        let (workers, rows) = checked(home, &self.path)?;
        store.add_workers(rows).await?;
        let states = WorkerStates::new(store.clone(), redactor(home));
        let mut done = Vec::with_capacity(workers.len());
        for worker in &workers {
            states.added(&worker.name).await?;
            let message = format!("added {} ({})", worker.name, worker.kind().label());
            done.push((worker.name.clone(), message));
        }
        print_all(home, store, self.json, "added", done).await
    }
}

#[derive(Debug, Args)]
pub struct Update {
    /// A worker YAML file, or a directory whose *.yml and *.yaml files all name added workers.
    path: PathBuf,
    /// Print a JSON list with an object per updated worker, as `add --json` does.
    #[arg(long)]
    json: bool,
}

impl Update {
    async fn run(self, home: &Home, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        let (workers, rows) = checked(home, &self.path)?;
        for (name, _) in &rows {
            if store.get_worker(name).await?.is_none() {
                bail!("no worker named {name}; add it with `mecha worker add`");
            }
        }
        let mut done = Vec::with_capacity(workers.len());
        for (worker, (name, definition)) in workers.iter().zip(rows) {
            store.replace_definition(&name, definition).await?;
            let entry = AuditEntry::new(format!("worker:{name}"), "worker.updated")
                .worker(&name)
                .detail(serde_json::json!({ "reason": "definition replaced" }));
            store.record(entry).await?;
            let message = format!(
                "updated {name} ({}); a running daemon applies its events, rate limit, concurrency \
                 and policy from the next task, its container settings when it is restarted",
                worker.kind().label()
            );
            done.push((name, message));
        }
        print_all(home, store, self.json, "updated", done).await
    }
}

/// Worker definitions, and the rows that store them (name, definition as written).
type Checked = (
    Vec<definitions::WorkerDef>,
    Vec<(String, serde_json::Value)>,
);

/// The definitions at `path`, checked as `add` and `update` accept them: their shape, their
/// policy plugins (those of this home, so that a misspelt name is refused now rather than deny
/// every action at write-back), and their host paths; with the rows to store.
fn checked(home: &Home, path: &std::path::Path) -> anyhow::Result<Checked> {
    let workers = definitions::load(path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let policies = policy_plugins(home)?;
    let mut rows = Vec::with_capacity(workers.len());
    for worker in &workers {
        for step in policy::steps(worker.policy.as_ref()).unwrap_or_default() {
            if !policies.contains(&step.plugin) {
                bail!(
                    "worker {}: policy plugin {} is not installed (policy plugins here: {}); \
                     fix the name, or install it with `mecha plugin install`",
                    worker.name,
                    step.plugin,
                    policies.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        // Stored as written; checked as the daemon will resolve it, with this environment.
        let resolved = worker.interpolate(&|name| std::env::var(name).ok())?;
        resolved
            .validate_host()
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        rows.push((worker.name.clone(), serde_json::to_value(worker)?));
    }
    Ok((workers, rows))
}

/// The names of the policy plugins of `home`: the bundled `rules` and the installed policies.
fn policy_plugins(home: &Home) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let mut names = std::collections::BTreeSet::from([policy::RULES.to_owned()]);
    for entry in Installed::new(home.plugins_dir()).entries()? {
        if entry.current.world == World::Policy {
            names.insert(entry.name);
        }
    }
    Ok(names)
}

#[derive(Debug, Args)]
pub struct Remove {
    name: String,
    /// Remove the worker even when its container cannot be removed (Docker is unreachable);
    /// the container is then left for `docker rm -f`.
    #[arg(long)]
    force: bool,
    /// Print JSON: `action`, `message` and the worker as it was when removed (as `worker ls
    /// --json` shows it).
    #[arg(long)]
    json: bool,
}

impl Remove {
    async fn run(self, home: &Home, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        let message = format!("removed {}", self.name);
        // Taken before: once removed, there is nothing left to show.
        let removed = if self.json {
            Some(outcome(home, store, "removed", &self.name, message.clone()).await?)
        } else {
            None
        };
        let workers = Workers::new(store.clone(), process_environment());
        if let Some(worker) = workers.get(&self.name).await? {
            let runtimes = runtimes(home, store, Secrets::default());
            let removed = runtimes.of(&worker.def).remove(&worker, self.force).await;
            if let Some(warning) = removed.map_err(|reason| anyhow::anyhow!(reason))? {
                eprintln!("warning: {warning}");
            }
        }
        store.remove_worker(&self.name).await?;
        match removed {
            Some(outcome) => print_json(&outcome),
            None => {
                println!("{message}");
                Ok(())
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct Start {
    name: String,
    /// Print JSON: `action`, `message` and the worker as it is now (as `worker ls --json` shows
    /// it, with its `state` and `endpoint`). A pull's progress stays on stderr.
    #[arg(long)]
    json: bool,
}

impl Start {
    async fn run(self, home: &Home, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        let worker = resolved(store, &self.name, "start").await?;
        let runtimes = runtimes(home, store, Secrets::load(&home.secrets_file())?);
        let mut progress = PullProgress::new(
            worker
                .def
                .docker
                .as_ref()
                .map_or("", |docker| docker.image.as_str()),
        );
        let mut show = |done, total| progress.show(done, total);
        let started = runtimes.of(&worker.def).start(&worker, &mut show).await;
        progress.finish();
        let message = started.map_err(|reason| anyhow::anyhow!(reason))?;
        print_one(home, store, self.json, "started", &self.name, message).await
    }
}

/// The worker `name` as the daemon resolves it, or why it cannot be `doing`.
async fn resolved(
    store: &Arc<dyn Store>,
    name: &str,
    doing: &str,
) -> anyhow::Result<RegisteredWorker> {
    let workers = Workers::new(store.clone(), process_environment());
    match workers.get(name).await? {
        Some(worker) => Ok(worker),
        None => match workers.problem(name).await? {
            Some(problem) => bail!("cannot {doing} {name}: {problem}"),
            None => bail!("no worker named {name}; `mecha worker ls` lists them"),
        },
    }
}

/// The worker runtimes for CLI commands; they record the moves of workers' states in `store`.
/// `secrets` go into the containers they start: `start` loads this user's, while `stop`,
/// `remove` and `ls` start nothing and pass none, so that a `secrets.yml` they cannot read
/// (one others may read, say) does not stop them.
fn runtimes(home: &Home, store: &Arc<dyn Store>, secrets: Secrets) -> Runtimes {
    let redactor = redactor(home);
    let client = WorkerClient::new(redactor.clone());
    let containers = Containers::new(
        home.id(),
        secrets,
        HostUser::current(),
        client.clone(),
        redactor.clone(),
        Timing::default(),
    );
    let store: Arc<dyn Store> = store.clone();
    Runtimes::new(Parts {
        client,
        containers: Arc::new(containers),
        states: WorkerStates::new(store.clone(), redactor.clone()),
        store,
        redactor,
    })
}

/// A one-line progress bar for an image pull, on a terminal only.
struct PullProgress {
    image: String,
    terminal: bool,
    shown: bool,
}

impl PullProgress {
    fn new(image: &str) -> PullProgress {
        PullProgress {
            image: image.to_owned(),
            terminal: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn show(&mut self, done: u64, total: u64) {
        if !self.terminal || total == 0 {
            return;
        }
        const WIDTH: u64 = 30;
        let filled = (done.min(total) * WIDTH / total) as usize;
        eprint!(
            "\rpulling {} [{}{}] {:.1}/{:.1} MB",
            self.image,
            "#".repeat(filled),
            " ".repeat(WIDTH as usize - filled),
            done as f64 / 1e6,
            total as f64 / 1e6
        );
        self.shown = true;
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

#[derive(Debug, Args)]
pub struct Stop {
    name: String,
    /// Print JSON, as `start --json` does.
    #[arg(long)]
    json: bool,
}

impl Stop {
    async fn run(self, home: &Home, store: &Arc<dyn Store>) -> anyhow::Result<()> {
        let worker = resolved(store, &self.name, "stop").await?;
        let stopped = runtimes(home, store, Secrets::default())
            .of(&worker.def)
            .stop(&worker)
            .await;
        let message = stopped.map_err(|reason| anyhow::anyhow!(reason))?;
        print_one(home, store, self.json, "stopped", &self.name, message).await
    }
}

#[derive(Debug, Args)]
pub struct List {
    /// Print JSON (with sanitized definitions) instead of a table.
    #[arg(long)]
    json: bool,
}

impl List {
    async fn run(self, home: &Home, store: Arc<dyn Store>) -> anyhow::Result<()> {
        let redactor = redactor(home);
        let workers = views(store.as_ref(), &redactor).await?;
        if self.json {
            return print_json(&workers);
        }
        let runtimes = Arc::new(runtimes(home, &store, Secrets::default()));
        let mut resolved: HashMap<String, RegisteredWorker> =
            Workers::new(store.clone(), process_environment())
                .all()
                .await?
                .into_iter()
                .map(|worker| (worker.name().to_owned(), worker))
                .collect();
        let probes: Vec<_> = workers
            .iter()
            .map(|view| {
                let (runtimes, state) = (runtimes.clone(), view.state);
                let error = view.error.clone().unwrap_or_default();
                let worker = resolved.remove(&view.name);
                tokio::spawn(async move {
                    match (state, worker) {
                        (WorkerState::Offline, _) => "-".to_owned(),
                        (WorkerState::Error, _) => error,
                        (_, None) => "definition does not resolve".to_owned(),
                        (_, Some(worker)) => {
                            let runtime = runtimes.of(&worker.def);
                            match runtime.health(&worker, PROBE_TIMEOUT).await {
                                Ok(Health::Healthy) => "ok".to_owned(),
                                Ok(Health::Busy) => "busy".to_owned(),
                                Ok(Health::Unhealthy(_)) => "unreachable".to_owned(),
                                Err(why) => why.to_owned(),
                            }
                        }
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
                    worker.endpoint.clone().unwrap_or_else(|| "-".to_owned()),
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
