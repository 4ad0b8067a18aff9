//! `mecha serve`: assembles the store, the plugins and the API, serves until SIGINT or SIGTERM,
//! then stops accepting, lets in-flight requests finish and the store commit what they wrote.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::api::{self, ApiState};
use crate::config::home::Home;
use crate::config::secrets::{Secret, Secrets};
use crate::config::server::{self, ServerConfig};
use crate::pipeline::sources::{self, SourceSlot};
use crate::plugin::engine::RuntimeOptions;
use crate::plugin::install::Installed;
use crate::plugin::loader::Loader;
use crate::plugin::{PluginRegistry, Runtime};
use crate::store::{self, EventStore, SqliteStore};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Plugin(#[from] crate::plugin::Error),
    #[error(
        "could not listen on {addr}: {source}; is another mecha running? choose another with --addr"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
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
    let secrets = Secrets::load(&home.secrets_file())?;
    let store = Arc::new(SqliteStore::open(
        &home.database(),
        durability(config.durability),
    )?);
    let runtime = Arc::new(Runtime::new(runtime_options(&config))?);
    let loader = Loader::new(runtime, Some(home.cache_dir()))?;
    let registry = PluginRegistry::load(&loader, &Installed::new(home.plugins_dir())).await?;
    let sources = sources::instances(&registry, &config, &secrets);

    if config.api_key.is_none() && !config.addr.ip().is_loopback() {
        tracing::warn!(addr = %config.addr, "listening beyond this machine without an API key: anyone who can reach it can use the API");
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(config.addr);
    let ready: Vec<&str> = sources
        .iter()
        .filter(|(_, slot)| matches!(slot, SourceSlot::Ready(_)))
        .map(|(name, _)| name.as_str())
        .collect();
    tracing::info!(
        %addr,
        sources = %ready.join(","),
        allocator = ?loader.runtime().allocator(),
        startup_ms = started.elapsed().as_millis() as u64,
        "mecha is ready"
    );

    let state = ApiState {
        store: store.clone(),
        sources: Arc::new(sources),
        api_key: config.api_key.map(Arc::new),
        max_body_bytes: config.max_body_bytes,
    };
    let served = axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    // Every acknowledged request has been answered; let the writer finish what is queued.
    store.close().await?;
    tracing::info!("mecha stopped");
    served.map_err(StartError::Serve)
}

fn durability(durability: server::Durability) -> store::Durability {
    match durability {
        server::Durability::Full => store::Durability::Full,
        server::Durability::Normal => store::Durability::Normal,
    }
}

fn runtime_options(config: &ServerConfig) -> RuntimeOptions {
    let largest_mib = config
        .plugins
        .values()
        .filter_map(|plugin| plugin.memory_mib)
        .chain([server::DEFAULT_PLUGIN_MEMORY_MIB])
        .max()
        .unwrap_or(server::DEFAULT_PLUGIN_MEMORY_MIB);
    RuntimeOptions {
        concurrent_calls: config.plugin_pool,
        max_memory_bytes: largest_mib.saturating_mul(1024 * 1024),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; stop mecha with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
