//! Serving the router over TCP: HTTP/1.1 with deadlines on every way a peer can stall, caps on
//! open connections (in all and per peer address), and a stop that ends.
//!
//! `axum::serve` offers none of these knobs: without a timer hyper waits forever for a
//! request's headers, and for a peer to take its answers; without a cap every connection is
//! accepted. A connection slot must never be held for as long as a peer likes, or the cap
//! itself becomes the lock-out. Here:
//!
//! - a connection is accepted only while fewer than `http.max_connections` are open; the
//!   others wait in the kernel's listen queue and are served as slots free up;
//! - one peer address holds at most `http.max_connections_per_ip` of them (an IPv6 peer counts
//!   by its /64, which one host commonly owns whole); a connection past that is answered 503
//!   and closed, so one peer cannot take the slots of all others;
//! - a request's headers must arrive within `http.header_timeout_ms` of the connection
//!   waiting for them (a kept-alive connection waiting for its next request included), or the
//!   connection is closed;
//! - a write to the peer that makes no progress for `write_timeout` (`http.body_timeout_ms`)
//!   fails the connection ([`Deadlined`]): a peer that sends requests but never reads the
//!   answers (pipelining thousands of `GET /health`) would otherwise block hyper's write
//!   forever once the socket buffers are full, with no timer running;
//! - a connection lives at most `http.connection_lifetime_ms`: then it finishes the request in
//!   flight and closes, and one that has not closed [`ConnectionLimits::closing_grace`] later
//!   is cut off. This bounds a peer that reads its answers just fast enough to make progress;
//! - the headers must fit [`MAX_HEAD_BYTES`], which also bounds each connection's read buffer;
//! - on shutdown every connection finishes its request in flight within the same grace, after
//!   which the ones left are aborted, so stopping always ends.
//!
//! Bodies are limited where they are read ([`super::body`]).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

/// 64 KiB for a request line and its headers: providers send a few KiB, and common proxies
/// refuse more than 8-32 KiB. hyper's own default (about 400 KiB) would let each connection
/// hold several times that while it dawdles.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What a connection past its peer's cap is told before it is closed.
const TOO_MANY_FROM_PEER: &str =
    "too many connections from your address (http.max_connections_per_ip); retry later\n";

/// The whole answer to a connection past its peer's cap.
fn too_many_from_peer() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{TOO_MANY_FROM_PEER}",
        TOO_MANY_FROM_PEER.len()
    )
}

/// One connection, as hyper serves it.
type Connection = http1::Connection<TokioIo<Deadlined<TcpStream>>, TowerToHyperService<Router>>;

/// How connections are limited.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections served at once (`http.max_connections`).
    pub max_connections: usize,
    /// Open connections of one peer address (`http.max_connections_per_ip`).
    pub max_connections_per_ip: usize,
    /// How long a request's headers may take (`http.header_timeout_ms`).
    pub header_timeout: Duration,
    /// How long a write to the peer may make no progress (`http.body_timeout_ms`).
    pub write_timeout: Duration,
    /// How long a connection is kept (`http.connection_lifetime_ms`).
    pub lifetime: Duration,
    /// How long a connection asked to close (at the end of its lifetime, or on shutdown) may
    /// take to finish its request in flight before it is cut off.
    pub closing_grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish its request in flight (within [`ConnectionLimits::closing_grace`]), and
/// returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let peers = Arc::new(Peers::new(limits.max_connections_per_ip));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    // Connections watch `stop` for the signal to wind down.
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                report_panic(ended);
                continue;
            }
            () = &mut shutdown => break,
        };
        let Some((slot, stream, peer)) = accepted else {
            continue;
        };
        let Some(peer_slot) = peers.enter(peer.ip()) else {
            tracing::debug!(%peer, "refused a connection past http.max_connections_per_ip");
            // Best effort, without waiting: the peer learns why, and the slot is free at once.
            let _ = stream.try_write(too_many_from_peer().as_bytes());
            drop((stream, slot));
            continue;
        };
        let connection = builder.serve_connection(
            TokioIo::new(Deadlined::new(stream, limits.write_timeout)),
            TowerToHyperService::new(router.clone()),
        );
        let stopping = stopping.clone();
        connections.spawn(async move {
            drive(connection, stopping, limits, peer).await;
            drop((slot, peer_slot));
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection cuts itself off after the grace; this is the backstop for one that
    // does not (a task that never yields), so that stopping always ends.
    let drained = tokio::time::timeout(
        limits.closing_grace.saturating_add(Duration::from_secs(1)),
        async {
            while let Some(ended) = connections.join_next().await {
                report_panic(ended);
            }
        },
    )
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "connections still open after the shutdown grace; aborting them"
        );
        connections.shutdown().await;
    }
}

/// Runs one connection: to its end, or until it is asked to close (its lifetime is over or
/// the daemon stops) and then at most `limits.closing_grace` more.
async fn drive(
    connection: Connection,
    mut stopping: watch::Receiver<bool>,
    limits: ConnectionLimits,
    peer: SocketAddr,
) {
    tokio::pin!(connection);
    let lifetime = tokio::time::sleep(limits.lifetime);
    tokio::pin!(lifetime);
    let cut_off = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(cut_off);
    let mut closing = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            // Either the signal, or `serve` is gone: both mean stop.
            _ = stopping.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
                cut_off.as_mut().reset(after(limits.closing_grace));
            }
            () = &mut lifetime, if !closing => {
                tracing::debug!(%peer, "connection lived http.connection_lifetime_ms; closing");
                closing = true;
                connection.as_mut().graceful_shutdown();
                cut_off.as_mut().reset(after(limits.closing_grace));
            }
            () = &mut cut_off, if closing => {
                tracing::debug!(%peer, "connection did not close within its grace; cut off");
                return;
            }
        }
    }
}

/// `duration` from now; settings are not checked for size, so a huge one means a year.
fn after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}

fn report_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(err) = ended
        && err.is_panic()
    {
        tracing::error!(error = %err, "a connection task panicked");
    }
}

/// The next connection, once a slot is free. `None` when accepting failed; the loop tries again.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(OwnedSemaphorePermit, TcpStream, SocketAddr)> {
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
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Open connections per peer address, under a cap.
///
/// Loopback counts like any other address: the daemon listens on loopback by default, where
/// every client (other users' processes, a tunnel or proxy forwarding the internet) is a
/// loopback peer, so exempting it would leave the cap doing nothing where the daemon runs
/// most. Behind a reverse proxy on the same machine, all its connections share one address:
/// raise the cap up to `http.max_connections` there, and let the proxy limit each client.
#[derive(Debug)]
struct Peers {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its peer's count; leaves it when dropped.
#[derive(Debug)]
struct PeerSlot {
    peers: Arc<Peers>,
    peer: IpAddr,
}

impl Peers {
    fn new(cap: usize) -> Peers {
        Peers {
            cap: cap.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more connection of `address`, unless its peer has `cap` open.
    fn enter(self: &Arc<Self>, address: IpAddr) -> Option<PeerSlot> {
        let peer = peer_of(address);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(peer).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: self.clone(),
            peer,
        })
    }

    #[cfg(test)]
    fn open(&self, address: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&peer_of(address)).copied().unwrap_or(0)
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self
            .peers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// Who is behind an address, for the per-peer cap: an IPv4 address (mapped into IPv6 or not),
/// or an IPv6 /64, which one host commonly owns whole and can pick addresses from at will.
fn peer_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// A stream whose writes must make progress: a write, flush or shutdown that stays pending for
/// `limit` fails with [`io::ErrorKind::TimedOut`], which ends the connection. Any progress
/// restarts the clock, so a large answer to a slow but reading peer is never cut.
///
/// Reads need no such clock here: hyper's header timeout covers a connection waiting for a
/// request, [`super::body`]'s deadline a body being read, and the lifetime everything else.
struct Deadlined<S> {
    inner: S,
    limit: Duration,
    /// Runs while a write is pending; `armed` says whether it is set for the current stall.
    stall: Pin<Box<Sleep>>,
    armed: bool,
}

impl<S> Deadlined<S> {
    fn new(inner: S, limit: Duration) -> Deadlined<S> {
        Deadlined {
            inner,
            limit,
            stall: Box::pin(tokio::time::sleep(limit)),
            armed: false,
        }
    }

    /// Passes on what a write-side poll gave, failing it once it has been pending too long.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.armed = false;
            return polled;
        }
        if !self.armed {
            self.armed = true;
            self.stall.as_mut().reset(after(self.limit));
        }
        match self.stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the peer took none of the answer for {} ms; closing the connection",
                    self.limit.as_millis()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlined<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlined<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Bounds every wait of these tests, so that a server that never ends fails them instead
    /// of hanging; nothing here measures how fast anything is.
    const PATIENCE: Duration = Duration::from_secs(30);

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 8,
            max_connections_per_ip: 8,
            header_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            lifetime: Duration::from_secs(600),
            closing_grace: Duration::from_millis(200),
        }
    }

    /// A server whose `/hang` never answers (telling `entered` when a request is in it) and
    /// whose `/ok` does; stopped when `stop` is sent or dropped.
    async fn start(
        limits: ConnectionLimits,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::sync::mpsc::UnboundedReceiver<()>,
        tokio::task::JoinHandle<()>,
    ) {
        use axum::routing::get;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (entered, entries) = tokio::sync::mpsc::unbounded_channel();
        let router = Router::new().route("/ok", get(|| async { "ok" })).route(
            "/hang",
            get(move || {
                let _ = entered.send(());
                std::future::pending::<()>()
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, limits, async {
            let _ = stopped.await;
        }));
        (address, stop, entries, server)
    }

    async fn get(address: SocketAddr, path: &str) -> TcpStream {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("request");
        stream
    }

    /// Reads until the server closes the connection; what it sent.
    async fn until_closed(stream: &mut TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut received = Vec::new();
        let read = tokio::time::timeout(PATIENCE, async {
            let mut buffer = [0u8; 1024];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received.extend_from_slice(&buffer[..n]),
                }
            }
        })
        .await;
        assert!(read.is_ok(), "the server kept the connection open");
        String::from_utf8_lossy(&received).into_owned()
    }

    /// A request that never finishes would keep a graceful stop waiting forever; after the
    /// grace its connection is cut and `serve` returns.
    #[tokio::test]
    async fn stopping_ends_even_with_a_request_that_never_finishes() {
        let (address, stop, mut entries, server) = start(limits()).await;
        let mut hanging = get(address, "/hang").await;
        tokio::time::timeout(PATIENCE, entries.recv())
            .await
            .expect("the request is in its handler");
        let _ = stop.send(());
        tokio::time::timeout(PATIENCE, server)
            .await
            .expect("serve returned")
            .expect("no panic");
        assert_eq!(
            until_closed(&mut hanging).await,
            "",
            "no answer, just closed"
        );
    }

    /// Past its lifetime a kept-alive connection is closed although it is well within the
    /// header timeout, and one whose request never finishes is cut off after the grace.
    #[tokio::test]
    async fn connections_end_after_their_lifetime() {
        let (address, _stop, mut entries, _server) = start(ConnectionLimits {
            lifetime: Duration::from_millis(300),
            ..limits()
        })
        .await;
        let mut kept = get(address, "/ok").await;
        let answer = until_closed(&mut kept).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        let mut hanging = get(address, "/hang").await;
        tokio::time::timeout(PATIENCE, entries.recv())
            .await
            .expect("the request is in its handler");
        assert_eq!(until_closed(&mut hanging).await, "", "cut off");
    }

    /// Past a peer's cap a connection is told why and closed; it frees the slot it took, and
    /// the peer's other connections are served.
    #[tokio::test]
    async fn a_peer_past_its_cap_is_refused() {
        use tokio::io::AsyncReadExt;
        let (address, _stop, _entries, _server) = start(ConnectionLimits {
            max_connections: 2,
            max_connections_per_ip: 1,
            ..limits()
        })
        .await;
        let idle = TcpStream::connect(address).await.expect("connect");
        for _ in 0..3 {
            // Nothing is sent, so the refusal is read whole before the close.
            let mut refused = TcpStream::connect(address).await.expect("connect");
            let answer = until_closed(&mut refused).await;
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            assert!(
                answer.ends_with(TOO_MANY_FROM_PEER),
                "the whole answer: {answer}"
            );
        }
        drop(idle);
        // Once the first connection is gone, the peer is served again.
        let served = tokio::time::timeout(PATIENCE, async {
            loop {
                let mut stream = get(address, "/ok").await;
                let mut head = [0u8; 12];
                if stream.read_exact(&mut head).await.is_ok() && &head == b"HTTP/1.1 200" {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(served.is_ok(), "the peer was not served again");
    }

    #[test]
    fn peers_are_counted_by_address_and_ipv6_by_its_64() {
        let peers = Arc::new(Peers::new(2));
        let one: IpAddr = "192.0.2.1".parse().expect("address");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("address");
        let first = peers.enter(one).expect("first");
        let second = peers.enter(mapped).expect("second, the same peer");
        assert!(peers.enter(one).is_none(), "past the cap");
        assert!(peers.enter("192.0.2.2".parse().expect("address")).is_some());
        drop(first);
        assert_eq!(peers.open(one), 1);
        let third = peers.enter(one).expect("a place is free again");
        drop((second, third));
        assert_eq!(peers.open(one), 0);
        assert!(
            peers.open.lock().expect("lock").is_empty(),
            "nothing left behind"
        );

        let a: IpAddr = "2001:db8:1:2::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("address");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        let _held = (peers.enter(a).expect("a"), peers.enter(b).expect("b"));
        assert!(
            peers
                .enter("2001:db8:1:2::77".parse().expect("address"))
                .is_none(),
            "the same /64"
        );
        assert!(peers.enter(other).is_some(), "another /64");
    }

    /// A peer that stops reading: the daemon's writes stop getting through, and the write
    /// that makes no progress for the limit fails instead of waiting forever.
    #[tokio::test]
    async fn a_write_that_makes_no_progress_fails_at_its_deadline() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut near = Deadlined::new(near, Duration::from_millis(100));
        let err = tokio::time::timeout(Duration::from_secs(30), async {
            let chunk = [b'x'; 512];
            loop {
                if let Err(err) = near.write_all(&chunk).await {
                    return err;
                }
            }
        })
        .await
        .expect("the write failed instead of waiting forever");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    /// A peer that reads slowly keeps the connection: each bit of progress restarts the clock.
    #[tokio::test]
    async fn progress_restarts_the_clock() {
        use tokio::io::AsyncReadExt;
        const SIZE: usize = 40 * 16;
        let (near, mut far) = tokio::io::duplex(16);
        let mut near = Deadlined::new(near, Duration::from_secs(1));
        let reader = tokio::spawn(async move {
            let mut buffer = [0u8; 16];
            let mut total = 0;
            while total < SIZE {
                tokio::time::sleep(Duration::from_millis(50)).await;
                total += far.read(&mut buffer).await.expect("read");
            }
            total
        });
        // Forty times the buffer, each part taken only after a pause: at least 2 s in all,
        // past the limit, but with progress every 50 ms or so.
        near.write_all(&[b'x'; SIZE])
            .await
            .expect("slow but steady");
        assert_eq!(reader.await.expect("reader"), SIZE);
    }
}
