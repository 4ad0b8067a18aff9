//! Adapters: in-process workers that bridge the worker contract to an LLM server (reference
//! section 3, "Adapters").
//!
//! An adapter worker has no container: `mecha serve` calls [`start`], which checks the upstream
//! address ([`validate_upstream`]), binds a small HTTP server on `127.0.0.1:0` and returns its
//! endpoint and the random key the server asks of every request. From then on the adapter is a
//! worker like any other; the dispatcher reaches it through [`crate::worker::client`], sending
//! the key as it sends a managed worker's `api_key`, and never knows the difference.
//!
//! - `address`: which upstreams an adapter may reach (no link-local or metadata addresses,
//!   as [`crate::net::address`] decides);
//! - `upstream`: the Ollama and OpenAI calls;
//! - `server`: the worker contract, single flight and body limits;
//! - `connection`: the read and idle timeouts of the server's connections.
//!
//! The upstream API key lives in a [`Secret`] and in the upstream client's headers; every error
//! and log line passes through a [`Redactor`] that knows it.

mod address;
mod connection;
mod server;
mod upstream;

#[cfg(test)]
mod standin;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::secrets::Secret;
use crate::redact::Redactor;

pub use address::{ValidatedUpstream, validate_upstream};

/// 5 s: how long [`RunningAdapter::stop`] lets a running task finish before cutting it off.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The kind of LLM server behind an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    /// Ollama's native API (`/api/chat`).
    Ollama,
    /// The OpenAI chat completions API, or any server compatible with it.
    OpenAi,
}

impl std::fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AdapterKind::Ollama => "ollama",
            AdapterKind::OpenAi => "openai",
        })
    }
}

/// What an adapter needs to run: the resolved `adapter:` block of a worker.
#[derive(Debug, Clone)]
pub struct AdapterSettings {
    pub kind: AdapterKind,
    /// Base URL of the LLM server, e.g. `http://127.0.0.1:11434`.
    pub upstream: String,
    pub model: String,
    /// Sent to OpenAI-compatible servers as `Authorization: Bearer <key>`.
    pub api_key: Option<Secret>,
}

/// Why an adapter could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("adapter upstream is not a usable URL: {reason}; use http://host:port")]
    InvalidUpstream { reason: String },
    #[error("adapter upstream host `{host}` could not be resolved: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("adapter upstream host `{host}` resolved to no address")]
    NoAddress { host: String },
    #[error(
        "adapter upstream host `{host}` resolves to {address}, {reason}; point upstream at the \
         model server itself"
    )]
    ForbiddenAddress {
        host: String,
        address: IpAddr,
        reason: crate::net::address::Reason,
    },
    #[error("could not build the adapter's HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("could not listen on 127.0.0.1 for the adapter: {0}")]
    Bind(#[source] std::io::Error),
    #[error("could not generate the adapter's key from the system's random source: {0}")]
    Key(getrandom::Error),
}

/// The server timeouts of reference section 3 (the Go adapter's `http.Server`).
#[derive(Debug, Clone, Copy)]
struct ServerTimeouts {
    /// A request (head, then body) must arrive within this.
    read: Duration,
    /// A task must be answered within this, or the adapter gives up with 504.
    write: Duration,
    /// A connection with no request in progress is closed after this.
    idle: Duration,
}

impl ServerTimeouts {
    /// Read 30 s, write 10 min, idle 60 s, as the Go adapter. Write matches the default task
    /// timeout, so the worker's deadline, not the adapter's, normally ends a long task.
    const DEFAULT: ServerTimeouts = ServerTimeouts {
        read: Duration::from_secs(30),
        write: Duration::from_secs(10 * 60),
        idle: Duration::from_secs(60),
    };
}

/// A started adapter. Dropping it without [`RunningAdapter::stop`] aborts the server.
#[derive(Debug)]
pub struct RunningAdapter {
    /// Where the adapter answers the worker contract: `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The bearer key the adapter asks of every request: random, made at start, kept in
    /// memory only (never stored, logged or shown), so only this daemon can send it tasks.
    pub key: Secret,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Starts an adapter: checks `settings.upstream`, then serves the worker contract on a free port
/// of 127.0.0.1. `client_timeout` bounds each upstream call (10 min in the reference).
pub async fn start(
    settings: AdapterSettings,
    client_timeout: Duration,
) -> Result<RunningAdapter, AdapterError> {
    start_with(settings, client_timeout, ServerTimeouts::DEFAULT).await
}

async fn start_with(
    settings: AdapterSettings,
    client_timeout: Duration,
    timeouts: ServerTimeouts,
) -> Result<RunningAdapter, AdapterError> {
    let validated = validate_upstream(&settings.upstream).await?;
    let redactor = Redactor::new(settings.api_key.iter().map(|key| key.expose().to_owned()));
    let upstream = upstream::Upstream::new(&settings, &validated, client_timeout, redactor)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(AdapterError::Bind)?;
    let address = listener.local_addr().map_err(AdapterError::Bind)?;
    let endpoint = format!("http://{address}");
    let key = Secret::random().map_err(AdapterError::Key)?;
    let (shutdown, signal) = oneshot::channel();
    let app = server::router(upstream, timeouts, key.clone());
    let listener = connection::TimedListener::new(listener, timeouts);
    let log_endpoint = endpoint.clone();
    let server = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<connection::ConnectionActivity>(),
        )
        .with_graceful_shutdown(async {
            // A dropped sender means the same as a sent signal: stop.
            let _ = signal.await;
        })
        .await;
        if let Err(err) = served {
            tracing::warn!(endpoint = %log_endpoint, error = %err, "adapter server stopped");
        }
    });
    tracing::info!(
        kind = %settings.kind,
        model = %settings.model,
        endpoint = %endpoint,
        "adapter started"
    );
    Ok(RunningAdapter {
        endpoint,
        key,
        shutdown: Some(shutdown),
        server: Some(server),
    })
}

impl RunningAdapter {
    /// Stops accepting connections, lets a running task finish for up to 5 s, then cuts it off.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(STOP_GRACE, &mut server).await.is_err()
        {
            tracing::warn!(endpoint = %self.endpoint, "adapter did not stop within 5 s; aborted");
            server.abort();
        }
    }
}

impl Drop for RunningAdapter {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
