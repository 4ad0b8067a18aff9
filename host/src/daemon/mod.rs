//! `mecha serve`: assembles the store, the plugins, the pipeline and the API, serves until
//! SIGINT or SIGTERM, then stops accepting, lets in-flight requests finish and the store commit
//! what they wrote.

mod adapters;
mod loops;
mod plugins;
mod reload;

pub(crate) use reload::redacted_values;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::api::body::BodyBudget;
use crate::api::server::ConnectionLimits;
use crate::api::{self, AllowedHosts, ApiState, BodyLimits};
use crate::config::api_key;
use crate::config::home::Home;
use crate::config::secrets::{Secret, Secrets};
use crate::config::server::{self, ServerConfig};
use crate::metrics::Metrics;
use crate::pipeline::backoff::Backoff;
use crate::pipeline::dispatch::{DispatchOptions, Dispatcher, DispatcherParts};
use crate::pipeline::matching::LoopGuard;
use crate::pipeline::process::Processor;
use crate::pipeline::recovery;
use crate::pipeline::sources::{self, SourceTable};
use crate::pipeline::triggers;
use crate::pipeline::write_back::{WriteBackParts, WriteBacks};
use crate::plugin::engine::RuntimeOptions;
use crate::plugin::install::Installed;
use crate::plugin::loader::Loader;
use crate::plugin::shared::{Admission, SharedInstalls};
use crate::plugin::{LivePlugins, PluginRegistry, Runtime};
use crate::redact::Redactor;
use crate::store::{self, Database};
use crate::trace::{Tracer, otlp};
use crate::worker::client::WorkerClient;
use crate::worker::docker::{Containers, HostUser, Timing};
use crate::worker::registry::{Workers, process_environment};
use crate::worker::runtime::{Parts as RuntimeParts, Runtimes};
use crate::worker::state::WorkerStates;

/// How long shutdown waits for tasks in flight to get their answers recorded. Tasks still
/// running after that are sent again at the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Plugin(#[from] crate::plugin::Error),
    #[error(transparent)]
    Sources(#[from] sources::SourceError),
    #[error(transparent)]
    Triggers(#[from] triggers::TriggerError),
    #[error(
        "could not listen on {addr}: {source}; is another mecha running? choose another with --addr"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Command-line overrides of `config.yml`.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub addr: Option<SocketAddr>,
    pub api_key: Option<Secret>,
}

/// Runs the daemon until a shutdown signal.
pub async fn serve(home: Home, overrides: Overrides) -> Result<(), StartError> {
    let started = Instant::now();
    home.ensure()?;
    let mut config = ServerConfig::load(&home.config_file())?;
    if let Some(addr) = overrides.addr {
        config.addr = addr;
    }
    if let Some(key) = overrides.api_key {
        config.api_key = Some(key);
    }
    let api_key = match config.api_key.clone() {
        Some(key) => key,
        None => generated_api_key(&home)?,
    };
    config.api_key = Some(api_key.clone());
    let secrets = Secrets::load(&home.secrets_file())?;
    // Shared by every part that redacts, and given new secrets on SIGHUP (see `reload`).
    let redactor = Redactor::new(reload::redacted_values(&secrets, &config));
    let database = Database::from_url(
        config.database_url.as_ref().map(Secret::expose),
        &home.database(),
    )?;
    let store = database.open(durability(config.durability)).await?;
    tracing::info!(database = %database.describe(), "opened the database");
    let runtime = Arc::new(Runtime::new(RuntimeOptions::from_config(&config))?);
    runtime.log_sink().set_redactor(redactor.clone());
    let loader = Loader::new(runtime, Some(home.cache_dir()))?;
    let allocator = loader.runtime().allocator();
    let installed = Installed::new(home.plugins_dir());
    let shared = config
        .database_url
        .is_some()
        .then(|| SharedInstalls::new(store.clone(), installed.clone()));
    if let Some(shared) = &shared {
        let admission = Admission::of(&home, &config);
        plugins::share_at_start(shared, &admission, &redactor).await;
    }
    // Taken before loading: a change made while loading is noticed at the first poll.
    let plugins_stamp = installed.stamp();
    let registry = PluginRegistry::load(&loader, &installed).await?;
    let sources = Arc::new(SourceTable::new(sources::instances(
        &registry, &config, &secrets,
    )?));
    let schedules = triggers::scheduled(&registry, &config)?;
    let plugins = Arc::new(LivePlugins::new(Arc::new(registry)));

    let metrics = Arc::new(Metrics::default());
    let tracer = match config.otlp_traces_url() {
        Ok(Some(url)) => {
            tracing::info!(%url, "exporting a trace per event over OTLP");
            Tracer::export(
                url,
                otlp::Resource {
                    instance: home.daemon_id(),
                },
                redactor.clone(),
            )
        }
        // Checked when the configuration was read.
        Ok(None) | Err(_) => Tracer::off(),
    };
    let workers = Arc::new(Workers::new(store.clone(), process_environment()));
    let client = WorkerClient::new(redactor.clone());
    let containers = Arc::new(Containers::new(
        home.id(),
        secrets.clone(),
        HostUser::current(),
        client.clone(),
        redactor.clone(),
        Timing::default(),
    ));
    let runtimes = Arc::new(Runtimes::new(RuntimeParts {
        client: client.clone(),
        containers: containers.clone(),
        states: WorkerStates::new(store.clone(), redactor.clone()),
        store: store.clone(),
        redactor: redactor.clone(),
    }));
    let completed = Arc::new(Notify::new());
    let dispatcher = Dispatcher::new(
        DispatcherParts {
            store: store.clone(),
            workers: workers.clone(),
            runtimes: runtimes.clone(),
            metrics: metrics.clone(),
            redactor: redactor.clone(),
            completed: completed.clone(),
            holder: home.daemon_id(),
            tracer: tracer.clone(),
        },
        dispatch_options(&config),
    );
    let write_backs = Arc::new(WriteBacks::new(
        WriteBackParts {
            store: store.clone(),
            workers: workers.clone(),
            plugins: plugins.clone(),
            config: config.clone(),
            redactor: redactor.clone(),
            backoff: dispatch_options(&config).backoff,
            holder: home.daemon_id(),
            tracer: tracer.clone(),
        },
        &secrets,
    ));
    let processor = Arc::new(Processor {
        store: store.clone(),
        workers: workers.clone(),
        sources: sources.clone(),
        dispatcher: dispatcher.clone(),
        guard: LoopGuard {
            identities: config.identities.clone(),
        },
        metrics,
        redactor: redactor.clone(),
        tracer: tracer.clone(),
    });

    // Before listening, as in the Go mecha: once the daemon answers, nothing of an earlier run
    // is left to be mistaken for this one's.
    remove_orphan_containers(&workers, &containers).await;
    if config.addr.ip().is_unspecified() && config.http.allowed_hosts.is_empty() {
        tracing::info!(addr = %config.addr, "listening on every address: webhooks answer under any name, the API only under localhost or a loopback address until http.allowed_hosts names others");
    }
    let hangups = reload::Hangups::catch();
    let stop = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(config.addr);
    let adapters = Arc::new(adapters::Adapters::new(
        store.clone(),
        workers.clone(),
        redactor.clone(),
        home.daemon_id(),
    ));
    let adapter_count = adapters.start_all(&secrets).await;
    let recovery = {
        let processor = processor.clone();
        tokio::spawn(async move {
            match recovery::recover(&processor, &processor.dispatcher).await {
                Ok(found) if found.events + found.tasks > 0 => {
                    tracing::info!(
                        events = found.events,
                        tasks = found.tasks,
                        "recovered unfinished work"
                    );
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = %err, "recovery failed; unfinished work resumes at the next start")
                }
            }
        })
    };
    let mut loops = loops::start(
        processor.clone(),
        runtimes.clone(),
        Duration::from_millis(config.dispatch.health_interval_ms),
        Duration::from_secs(u64::from(config.retention.logs_days) * 86_400),
        Duration::from_secs(u64::from(config.retention.events_days) * 86_400),
    );
    loops.push(recovery);
    loops.push(tokio::spawn(loops::write_backs(
        write_backs.clone(),
        completed,
        store.task_notices(),
    )));
    let schedule_count = schedules.len();
    for scheduled in schedules {
        loops.push(tokio::spawn(triggers::run(
            scheduled,
            plugins.clone(),
            processor.clone(),
        )));
    }
    loops.push(tokio::spawn(reload::on_changes(
        hangups,
        reload::Holders {
            home: home.clone(),
            config: config.clone(),
            plugins: plugins.clone(),
            loader,
            installed,
            stamp: plugins_stamp,
            shared: shared.map(|shared| (shared, None)),
            sources: sources.clone(),
            redactor: redactor.clone(),
            write_backs,
            containers,
            adapters: adapters.clone(),
            secrets,
        },
    )));
    tracing::info!(
        %addr,
        sources = %sources.ready_names().join(","),
        triggers = schedule_count,
        adapters = adapter_count,
        allocator = ?allocator,
        startup_ms = started.elapsed().as_millis() as u64,
        "mecha is ready"
    );

    let state = ApiState {
        processor,
        sources,
        api_key: Arc::new(api_key),
        bodies: BodyLimits {
            max_bytes: config.max_body_bytes,
            timeout: Duration::from_millis(config.http.body_timeout_ms),
            budget: BodyBudget::new(config.http.body_memory_bytes),
        },
        hosts: Arc::new(AllowedHosts::new(addr, &config.http.allowed_hosts)),
        round_robin: Arc::default(),
        plugins,
        ui: Arc::default(),
        runtimes,
        installed: Installed::new(home.plugins_dir()),
    };
    let header_timeout = Duration::from_millis(config.http.header_timeout_ms);
    let body_timeout = Duration::from_millis(config.http.body_timeout_ms);
    let limits = ConnectionLimits {
        max_connections: config.http.max_connections,
        max_connections_per_ip: config.http.max_connections_per_ip,
        header_timeout,
        write_timeout: body_timeout,
        lifetime: Duration::from_millis(config.http.connection_lifetime_ms),
        // Time for a request in flight to finish arriving and be answered.
        closing_grace: header_timeout.saturating_add(body_timeout),
    };
    api::server::serve(listener, api::router(state), limits, stop).await;
    for handle in loops {
        handle.abort();
    }
    dispatcher.drain(SHUTDOWN_GRACE).await;
    adapters.stop_all().await;
    // The spans of the last stages, sent before the runtime ends.
    tracer.flush(SHUTDOWN_GRACE).await;
    // Every acknowledged request has been answered; let the writer finish what is queued.
    store.close().await?;
    tracing::info!("mecha stopped");
    Ok(())
}

/// The key in `<home>/api_key`, generated at the first start: the daemon never serves an open
/// API (see [`crate::config::api_key`]).
fn generated_api_key(home: &Home) -> Result<Secret, StartError> {
    let (key, provenance) = api_key::load_or_generate(home)?;
    if provenance == api_key::Provenance::Generated {
        tracing::info!(
            file = %home.api_key_file().display(),
            "generated the API key; the CLI reads it from this file, other clients send it as X-API-Key"
        );
    }
    Ok(key)
}

/// Removes the disposable containers an earlier run left behind (it stopped mid-task), on every
/// engine a managed worker uses. Without managed workers Docker is not needed, and not asked.
async fn remove_orphan_containers(workers: &Workers, containers: &Containers) {
    let all = match workers.all().await {
        Ok(all) => all,
        Err(err) => {
            tracing::warn!(error = %err, "could not list workers to look for left-over containers");
            return;
        }
    };
    let removed = containers
        .remove_orphans(all.iter().filter_map(|worker| worker.def.docker.as_ref()))
        .await;
    if removed > 0 {
        tracing::info!(
            removed,
            "removed disposable containers left by an earlier run"
        );
    }
}

fn dispatch_options(config: &ServerConfig) -> DispatchOptions {
    DispatchOptions {
        global_limit: config.dispatch.concurrency as usize,
        backoff: Backoff {
            base: Duration::from_millis(config.dispatch.retry_base_ms),
            max: Duration::from_millis(config.dispatch.retry_max_ms),
        },
        error_poll: Duration::from_millis(config.dispatch.health_interval_ms.min(1000)),
        lease: Duration::from_millis(config.dispatch.lease_ms),
    }
}

fn durability(durability: server::Durability) -> store::Durability {
    match durability {
        server::Durability::Full => store::Durability::Full,
        server::Durability::Normal => store::Durability::Normal,
    }
}

/// Resolves on SIGTERM or SIGINT. The signals are caught from this call on, not from the first
/// poll: it is made before the port opens, so a signal sent as soon as the daemon answers stops
/// it cleanly instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM or SIGINT; stop mecha with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
