//! Connection timeouts for the adapter's server: read (a request head must arrive within 30 s of
//! its first byte) and idle (a connection with nothing in progress is closed after 60 s).
//!
//! axum's `serve` offers neither, and its HTTP/1 head timeout only works with a timer it does
//! not set, so the listener here wraps each TCP stream. The stream cannot tell by itself whether
//! a request is being handled, so the server's middleware reports that through a
//! [`ConnectionActivity`] shared with the stream (axum passes it to the router as connect info).
//! While a request is in flight the stream never times out: a task may run for minutes, and the
//! body read and the write deadline are enforced by the handlers.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

use super::ServerTimeouts;

/// 1 s: the pause after an accept error such as "too many open files", so that the loop does not
/// spin while the condition lasts (axum's own listener does the same).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// A TCP listener whose connections time out when idle or slow to send a request.
pub(super) struct TimedListener {
    inner: TcpListener,
    timeouts: ServerTimeouts,
}

impl TimedListener {
    pub fn new(inner: TcpListener, timeouts: ServerTimeouts) -> TimedListener {
        TimedListener { inner, timeouts }
    }
}

impl Listener for TimedListener {
    type Io = TimedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TimedStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, address)) => return (TimedStream::new(stream, self.timeouts), address),
                // The peer gave up before we accepted: nothing to wait for.
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "adapter could not accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// What the handlers of one connection are doing, shared by the stream and the middleware.
#[derive(Clone, Default)]
pub(super) struct ConnectionActivity(Arc<Counts>);

#[derive(Default)]
struct Counts {
    /// Requests being handled now.
    in_flight: AtomicUsize,
    /// Requests that reached a handler so far; a change means a request head was complete.
    started: AtomicU64,
}

impl ConnectionActivity {
    /// Marks a request as being handled until the returned guard is dropped.
    pub fn begin(&self) -> InFlight {
        self.0.started.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::Acquire)
    }

    fn started(&self) -> u64 {
        self.0.started.load(Ordering::Acquire)
    }
}

impl Connected<IncomingStream<'_, TimedListener>> for ConnectionActivity {
    fn connect_info(stream: IncomingStream<'_, TimedListener>) -> ConnectionActivity {
        stream.io().activity.clone()
    }
}

/// A request in flight; dropping it ends the request.
pub(super) struct InFlight(ConnectionActivity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP stream that fails a pending read once its deadline passes while no request is in
/// flight: `read` after the first byte of a request head, `idle` after the last byte moved.
pub(super) struct TimedStream {
    inner: TcpStream,
    activity: ConnectionActivity,
    timeouts: ServerTimeouts,
    last_progress: Instant,
    /// When the first byte of the current request head arrived, with the `started` count then.
    head: Option<(Instant, u64)>,
    timer: Pin<Box<Sleep>>,
}

impl TimedStream {
    fn new(inner: TcpStream, timeouts: ServerTimeouts) -> TimedStream {
        let now = Instant::now();
        TimedStream {
            inner,
            activity: ConnectionActivity::default(),
            timeouts,
            last_progress: now,
            head: None,
            timer: Box::pin(tokio::time::sleep_until(now + timeouts.idle)),
        }
    }

    /// The head being read, if one is: a head whose request has since started is complete.
    fn open_head(&self) -> Option<Instant> {
        let started = self.activity.started();
        self.head
            .filter(|(_, seen)| *seen == started)
            .map(|(at, _)| at)
    }

    fn on_read(&mut self) {
        let now = Instant::now();
        self.last_progress = now;
        if self.activity.in_flight() == 0 && self.open_head().is_none() {
            self.head = Some((now, self.activity.started()));
        }
    }

    /// Called when a read would wait: arms the timer, or fails the read if the time is up.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.activity.in_flight() > 0 {
            return Poll::Pending;
        }
        let deadline = match self.open_head() {
            Some(at) => at + self.timeouts.read,
            None => self.last_progress + self.timeouts.idle,
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle or request too slow",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.on_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_deadline(cx),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
        }
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            this.last_progress = Instant::now();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            this.last_progress = Instant::now();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
