//! Serving the router over TCP: HTTP/1.1 with a header deadline, a cap on open connections,
//! and a graceful stop.
//!
//! `axum::serve` offers none of these knobs: without a timer hyper waits forever for a
//! request's headers, and without a cap every connection is accepted, so a few hundred
//! senders that never finish hold as many tasks and buffers for as long as they like. Here:
//!
//! - a connection is accepted only while fewer than `http.max_connections` are open; the
//!   others wait in the kernel's listen queue and are served as slots free up;
//! - a request's headers must arrive within `http.header_timeout_ms` of the connection
//!   waiting for them (a kept-alive connection waiting for its next request included), or the
//!   connection is closed;
//! - the headers must fit [`MAX_HEAD_BYTES`], which also bounds each connection's read buffer.
//!
//! Bodies are limited where they are read ([`super::body`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// 64 KiB for a request line and its headers: providers send a few KiB, and common proxies
/// refuse more than 8-32 KiB. hyper's own default (about 400 KiB) would let each connection
/// hold several times that while it dawdles.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How connections are limited.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections served at once (`http.max_connections`).
    pub max_connections: usize,
    /// How long a request's headers may take (`http.header_timeout_ms`).
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish its request in flight, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    // Connections watch `stop` for the signal to wind down, and each holds a clone of
    // `finished`'s receiver, so that its sender knows when the last one has closed.
    let (stop, stopping) = watch::channel(false);
    let (finished, connections) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            () = &mut shutdown => break,
        };
        let Some((slot, stream, peer)) = accepted else {
            continue;
        };
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let mut stopping = stopping.clone();
        let open = connections.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let mut asked_to_stop = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(err) = served {
                            tracing::debug!(%peer, error = %err, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stopping.changed(), if !asked_to_stop => {
                        asked_to_stop = true;
                        if changed.is_ok() {
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            drop((slot, open));
        });
    }
    drop(listener);
    drop(connections);
    let _ = stop.send(true);
    finished.closed().await;
}

/// The next connection, once a slot is free. `None` when accepting failed; the loop tries again.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(
    tokio::sync::OwnedSemaphorePermit,
    tokio::net::TcpStream,
    SocketAddr,
)> {
    // The semaphore is never closed, so acquiring fails only in theory.
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => Some((slot, stream, peer)),
        Err(err) if is_connection_error(&err) => None,
        Err(err) => {
            // Most likely out of file descriptors: wait for some to be closed rather than spin.
            tracing::error!(error = %err, "could not accept a connection; retrying in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

/// Errors that concern one connection that went away before it was accepted.
fn is_connection_error(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
