//! `mecha worker add|remove|start|stop|ls`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::{open_store, redactor, table};
use crate::config::home::Home;
use crate::config::secrets::Secrets;
use crate::config::worker::{self as definitions, Lifecycle, WorkerKind, policy};
use crate::plugin::World;
use crate::plugin::install::Installed;
use crate::store::{AuditEntry, AuditLog, EventStore, SqliteStore, WorkerState, WorkerStore};
use crate::worker::client::{Health, WorkerClient};
use crate::worker::docker::{Containers, HostUser, LifecycleError, Timing, owner_id};
use crate::worker::registry::{Worker as RegisteredWorker, Workers, process_environment};
use crate::worker::view::views;

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
        let store = open_store(&home)?;
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

#[derive(Debug, Args)]
pub struct Add {
    /// A worker YAML file, or a directory whose *.yml and *.yaml files are all added.
    path: PathBuf,
}

impl Add {
    async fn run(self, home: &Home, store: &Arc<SqliteStore>) -> anyhow::Result<()> {
        let (workers, rows) = checked(home, &self.path)?;
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
pub struct Update {
    /// A worker YAML file, or a directory whose *.yml and *.yaml files all name added workers.
    path: PathBuf,
}

impl Update {
    async fn run(self, home: &Home, store: &Arc<SqliteStore>) -> anyhow::Result<()> {
        let (workers, rows) = checked(home, &self.path)?;
        for (name, _) in &rows {
            if store.get_worker(name).await?.is_none() {
                bail!("no worker named {name}; add it with `mecha worker add`");
            }
        }
        for (worker, (name, definition)) in workers.iter().zip(rows) {
            store.replace_definition(&name, definition).await?;
            let entry = AuditEntry::new(format!("worker:{name}"), "worker.updated")
                .worker(&name)
                .detail(serde_json::json!({ "reason": "definition replaced" }));
            store.record(entry).await?;
            println!(
                "updated {name} ({}); a running daemon applies its events, rate limit, concurrency \
                 and policy from the next task, its container settings when it is restarted",
                crate::worker::view::kind_label(worker.kind())
            );
        }
        Ok(())
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
}

impl Remove {
    async fn run(self, home: &Home, store: &Arc<SqliteStore>) -> anyhow::Result<()> {
        let workers = Workers::new(store.clone(), process_environment());
        if let Some(worker) = workers.get(&self.name).await?
            && worker.def.kind() == WorkerKind::Managed
        {
            match managed(home)?.remove(&worker.def, &worker.container).await {
                Ok(()) => {}
                Err(err) if self.force => {
                    eprintln!("warning: the container was not removed: {err}");
                }
                Err(err) => {
                    return Err(anyhow::anyhow!(err).context(format!(
                        "could not remove the container of {}; nothing was removed (--force removes the worker anyway)",
                        self.name
                    )));
                }
            }
            store
                .set_worker_runtime(&self.name, "", "", WorkerState::Offline)
                .await?;
        }
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
            WorkerKind::Managed => return start_managed(home, store, &worker).await,
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

/// Starts a managed worker from `offline` or `error`. A persistent worker gets its container,
/// healthy, or the reason it could not; a disposable one is checked (definition, token,
/// engine, image) and marked online, since its containers come with its tasks.
async fn start_managed(
    home: &Home,
    store: &Arc<SqliteStore>,
    worker: &RegisteredWorker,
) -> anyhow::Result<()> {
    let name = worker.name();
    if !matches!(worker.state, WorkerState::Offline | WorkerState::Error) {
        bail!(
            "{name} is {}; `mecha worker stop {name}` first",
            worker.state.as_str()
        );
    }
    let Some(docker) = &worker.def.docker else {
        bail!("{name} has no docker section");
    };
    let containers = managed(home)?;
    let mut progress = PullProgress::new(&docker.image);
    let outcome = match docker.lifecycle {
        Lifecycle::Disposable => start_disposable(&containers, worker, &mut progress)
            .await
            .map(|()| (String::new(), String::new())),
        Lifecycle::Persistent => containers
            .start_persistent(&worker.def, |done, total| progress.show(done, total))
            .await
            .map(|running| (running.container_id, running.endpoint)),
    };
    progress.finish();
    let (container, endpoint) = match outcome {
        Ok(started) => started,
        Err(err) => {
            let reason = redactor(home).redact(&err.to_string()).into_owned();
            store
                .set_worker_state(
                    name,
                    &[WorkerState::Offline, WorkerState::Error],
                    WorkerState::Error,
                    Some(reason.clone()),
                )
                .await?;
            bail!("could not start {name}: {reason}");
        }
    };
    store
        .set_worker_runtime(name, &container, &endpoint, WorkerState::Online)
        .await?;
    // An operator's start gives the new container a fresh restart budget.
    store.set_worker_restarts(name, 0).await?;
    let entry = AuditEntry::new(format!("worker:{name}"), "worker.state")
        .worker(name)
        .detail(
            serde_json::json!({ "state": "online", "reason": "started", "container": container }),
        );
    store.record(entry).await?;
    if container.is_empty() {
        println!("started {name} (disposable: one container per task)");
    } else {
        println!(
            "started {name} (container {} at {endpoint})",
            short_id(&container)
        );
    }
    Ok(())
}

/// Checks what a disposable worker's containers will need, so that its first task does not
/// fail on it.
async fn start_disposable(
    containers: &Containers,
    worker: &RegisteredWorker,
    progress: &mut PullProgress,
) -> Result<(), LifecycleError> {
    containers.check(&worker.def)?;
    let docker = worker.def.docker.as_ref();
    let engine = containers
        .engine(docker.and_then(|docker| docker.host.as_deref()))
        .await?;
    let image = docker
        .map(|docker| docker.image.as_str())
        .unwrap_or_default();
    containers
        .ensure_image(&engine, image, |done, total| progress.show(done, total))
        .await
}

/// The container runner for CLI commands, with this user's secrets.
fn managed(home: &Home) -> anyhow::Result<Containers> {
    let secrets = Secrets::load(&home.secrets_file())?;
    let redactor = redactor(home);
    Ok(Containers::new(
        owner_id(home.root()),
        secrets,
        HostUser::current(),
        WorkerClient::new(redactor.clone()),
        redactor,
        Timing::default(),
    ))
}

/// Docker's short form of a container id.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
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
}

impl Stop {
    async fn run(self, home: &Home, store: &Arc<SqliteStore>) -> anyhow::Result<()> {
        let workers = Workers::new(store.clone(), process_environment());
        let worker = workers.get(&self.name).await?;
        if let Some(worker) = &worker
            && let Some(docker) = &worker.def.docker
            && !worker.container.is_empty()
        {
            managed(home)?
                .stop(docker, &worker.container)
                .await
                .with_context(|| format!("could not stop the container of {}", self.name))?;
            // The container id is kept, so `mecha worker remove` can remove it.
            store
                .set_worker_runtime(&self.name, &worker.container, "", WorkerState::Offline)
                .await?;
            println!("stopped {} (container)", self.name);
            return Ok(());
        }
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
                    (client.clone(), worker.state, worker.reachable_at.clone());
                let error = redactor.redact(&worker.error).into_owned();
                // An adapter answers its own daemon only (it asks for a key that daemon keeps
                // in memory), so its state, which that daemon keeps, is its health.
                let adapter = worker.kind == "adapter";
                tokio::spawn(async move {
                    match state {
                        WorkerState::Offline => "-".to_owned(),
                        WorkerState::Error => error,
                        _ if adapter => "checked by mecha serve".to_owned(),
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
