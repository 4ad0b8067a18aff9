//! `mecha doctor`: checks what mecha needs and says what to fix.

use clap::Args;
use serde::Serialize;

use crate::config::home::Home;
use crate::config::secrets::Secrets;
use crate::config::server::ServerConfig;
use crate::pipeline::sources::{self, SourceSlot};
use crate::pipeline::triggers;
use crate::plugin::engine::RuntimeOptions;
use crate::plugin::install::Installed;
use crate::plugin::loader::Loader;
use crate::plugin::{PluginRegistry, Runtime};
use crate::redact::without_url_credentials;
use crate::store::{Durability, Store};
use crate::worker::client::WorkerClient;
use crate::worker::docker::{Containers, Engine, HostUser, Timing, engine};
use crate::worker::registry::{Worker, Workers, process_environment};
use crate::worker::runtime::{Finding, Parts, Runtimes};
use crate::worker::state::WorkerStates;

/// Check the config directory, database, secrets, plugins and every worker. Exits 1 when
/// something failed; warnings ([!!]) do not fail.
#[derive(Debug, Args)]
pub struct Doctor {
    /// Print the checks as JSON once all have run: `failed` (whether one did, as the exit code
    /// says) and `checks`, each with its `name`, `status` (ok, warn or fail) and `message`.
    #[arg(long)]
    json: bool,
}

/// How one check came out.
#[derive(Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// The line's mark in the text output.
    fn mark(self) -> &'static str {
        match self {
            Status::Ok => "[ok]  ",
            Status::Warn => "[!!]  ",
            Status::Fail => "[FAIL]",
        }
    }
}

/// One check: what was checked (`config`, `source github`, `worker reviewer`...) and what
/// was found.
#[derive(Serialize)]
struct Check {
    name: String,
    status: Status,
    message: String,
}

/// The checks so far. For people each is printed as it comes, since some wait on Docker or a
/// worker; for scripts (`--json`) they are kept and printed together at the end.
#[derive(Serialize)]
struct Report {
    failed: bool,
    checks: Vec<Check>,
    #[serde(skip)]
    json: bool,
}

/// Every message names endpoints and upstreams as resolved, so a URL's credentials are hidden.
impl Report {
    fn new(json: bool) -> Report {
        Report {
            failed: false,
            checks: Vec::new(),
            json,
        }
    }

    fn ok(&mut self, name: &str, what: &str) {
        self.add(name, Status::Ok, what);
    }

    fn warn(&mut self, name: &str, what: &str) {
        self.add(name, Status::Warn, what);
    }

    fn fail(&mut self, name: &str, what: &str) {
        self.add(name, Status::Fail, what);
    }

    fn add(&mut self, name: &str, status: Status, what: &str) {
        let message = without_url_credentials(what).into_owned();
        self.failed |= status == Status::Fail;
        if !self.json {
            println!("{} {message}", status.mark());
        }
        self.checks.push(Check {
            name: name.to_owned(),
            status,
            message,
        });
    }
}

impl Doctor {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        let mut report = Report::new(self.json);
        match home.ensure() {
            Ok(()) => report.ok(
                "home",
                &format!("mecha directory {}", home.root().display()),
            ),
            Err(err) => report.fail("home", &err.to_string()),
        }
        let config = match ServerConfig::load(&home.config_file()) {
            Ok(config) => {
                report.ok(
                    "config",
                    &format!("config.yml (listens on {})", config.addr),
                );
                Some(config)
            }
            Err(err) => {
                report.fail("config", &err.to_string());
                None
            }
        };
        let secrets = match Secrets::load(&home.secrets_file()) {
            Ok(secrets) if !home.secrets_file().exists() => {
                report.warn(
                    "secrets",
                    "no secrets.yml: sources that verify signatures (github, gitlab, slack, telegram) stay disabled",
                );
                secrets
            }
            Ok(secrets) => {
                report.ok(
                    "secrets",
                    &format!("secrets.yml ({} token groups)", secrets.token_groups()),
                );
                secrets
            }
            Err(err) => {
                report.fail("secrets", &err.to_string());
                Secrets::default()
            }
        };
        if let Some(registry) = self.check_plugins(&home, &mut report).await
            && let Some(config) = &config
        {
            check_sources(&registry, config, &secrets, &mut report);
        }
        let redactor = super::redactor(&home);
        let opened = match super::database(&home) {
            Ok(database) => database
                .open(Durability::Full)
                .await
                .map_err(anyhow::Error::from),
            Err(err) => Err(err),
        };
        match opened {
            Ok(store) => {
                check_database(&*store, &mut report).await;
                match store.list_workers().await {
                    Ok(rows) => {
                        report.ok("workers", &format!("{} workers", rows.len()));
                        let workers = Workers::new(store.clone(), process_environment());
                        let client = WorkerClient::new(redactor.clone());
                        let containers = Containers::new(
                            home.id(),
                            secrets.clone(),
                            HostUser::current(),
                            client.clone(),
                            redactor.clone(),
                            Timing::default(),
                        );
                        let runtimes = Runtimes::new(Parts {
                            client,
                            containers: std::sync::Arc::new(containers),
                            states: WorkerStates::new(store.clone(), redactor.clone()),
                            store: store.clone(),
                            redactor: redactor.clone(),
                        });
                        let all = workers.all().await.unwrap_or_default();
                        check_docker(&all, &mut report).await;
                        for row in rows {
                            check_worker(&workers, &runtimes, &row.name, &mut report).await;
                        }
                    }
                    Err(err) => {
                        report.fail("workers", &redactor.redact(&format!("database: {err}")))
                    }
                }
                let _ = store.close().await;
            }
            Err(err) => report.fail("database", &redactor.redact(&format!("database: {err:#}"))),
        }
        if self.json {
            super::print_json(&report)?;
        }
        if report.failed {
            anyhow::bail!("some checks failed");
        }
        Ok(())
    }

    async fn check_plugins(&self, home: &Home, report: &mut Report) -> Option<PluginRegistry> {
        let runtime = match Runtime::new(RuntimeOptions::with_pool(2)) {
            Ok(runtime) => runtime,
            Err(err) => {
                report.fail("plugins", &err.to_string());
                return None;
            }
        };
        let loaded = match Loader::new(std::sync::Arc::new(runtime), Some(home.cache_dir())) {
            Ok(loader) => PluginRegistry::load(&loader, &Installed::new(home.plugins_dir())).await,
            Err(err) => Err(err),
        };
        match loaded {
            Ok(registry) => {
                report.ok(
                    "plugins",
                    &format!("{} plugins load", registry.iter().count()),
                );
                Some(registry)
            }
            Err(err) => {
                report.fail("plugins", &format!("plugins: {err}"));
                None
            }
        }
    }
}

/// Which webhook endpoints and schedules `mecha serve` would run, and what keeps the others
/// from running.
fn check_sources(
    registry: &PluginRegistry,
    config: &ServerConfig,
    secrets: &Secrets,
    report: &mut Report,
) {
    match sources::instances(registry, config, secrets) {
        Ok(slots) => {
            for (name, slot) in slots {
                let check = format!("source {name}");
                match slot {
                    SourceSlot::Ready(instance) => {
                        let hydrates = if instance.hydrate.is_some() {
                            ", hydrates events"
                        } else {
                            ""
                        };
                        report.ok(&check, &format!("source {name}: /webhook/{name}{hydrates}"));
                    }
                    SourceSlot::Disabled(reason) => report.warn(&check, &reason),
                }
            }
        }
        Err(err) => report.fail("sources", &err.to_string()),
    }
    match triggers::scheduled(registry, config) {
        Ok(all) => {
            for scheduled in all {
                let next = scheduled
                    .schedule
                    .next_after(jiff::Timestamp::now())
                    .map_or_else(|| "never".to_owned(), |at| at.to_string());
                report.ok(
                    &format!("trigger {}", scheduled.name),
                    &format!(
                        "trigger {}: {} ({}), next tick {next}",
                        scheduled.name, scheduled.schedule, scheduled.plugin
                    ),
                );
            }
        }
        Err(err) => report.fail("triggers", &err.to_string()),
    }
}

/// Pings every Docker engine the managed workers use (the default one when there are none) and
/// reports its version. An unreachable engine fails only when a worker needs it.
async fn check_docker(workers: &[Worker], report: &mut Report) {
    let mut addresses: Vec<String> = workers
        .iter()
        .filter_map(|worker| worker.def.docker.as_ref())
        .map(|docker| engine::address(docker.host.as_deref()))
        .collect();
    let needed = !addresses.is_empty();
    if !needed {
        addresses.push(engine::address(None));
    }
    addresses.sort();
    addresses.dedup();
    for address in addresses {
        let version = match Engine::connect(&address).await {
            Ok(engine) => engine.version().await,
            Err(err) => Err(err),
        };
        match version {
            Ok(version) => report.ok(
                "docker",
                &format!(
                    "Docker {} (API {}) at {address}",
                    version.version, version.api_version
                ),
            ),
            Err(err) if needed => report.fail("docker", &err.to_string()),
            Err(err) => report.warn(
                "docker",
                &format!("{err} (only managed workers need Docker, and there are none)"),
            ),
        }
    }
}

async fn check_worker(workers: &Workers, runtimes: &Runtimes, name: &str, report: &mut Report) {
    let check = format!("worker {name}");
    let worker = match workers.get(name).await {
        Ok(Some(worker)) => worker,
        Ok(None) => {
            let problem = workers
                .problem(name)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            return report.fail(&check, &format!("worker {name}: {problem}"));
        }
        Err(err) => return report.fail(&check, &format!("worker {name}: {err}")),
    };
    for finding in runtimes.of(&worker.def).diagnose(&worker).await {
        match finding {
            Finding::Ok(text) => report.ok(&check, &text),
            Finding::Warn(text) => report.warn(&check, &text),
            Finding::Fail(text) => report.fail(&check, &text),
        }
    }
}

/// The database answers, and its schema is the one this build knows (opening it migrated it,
/// unless a newer mecha had).
async fn check_database(store: &dyn Store, report: &mut Report) {
    match store.about().await {
        Ok(about) if about.schema == about.known => report.ok(
            "database",
            &format!(
                "database {} ({}, schema version {})",
                about.database, about.server, about.schema
            ),
        ),
        Ok(about) => report.fail(
            "database",
            &format!(
                "database {} ({}) is at schema version {}, this mecha expects {}",
                about.database, about.server, about.schema, about.known
            ),
        ),
        Err(err) => report.fail("database", &format!("database: {err}")),
    }
}
