//! Sends a plugin's request over a connection to an address the gate has checked.
//!
//! `wasmtime_wasi_http::default_send_request` connects by host name, which means a second DNS
//! lookup after the gate's: a name that answers the gate with a public address and the
//! connection with 169.254.169.254 (DNS rebinding) would get through. This is the same
//! exchange (TCP, TLS with the webpki roots, HTTP/1.1 through hyper, the same three timeouts)
//! but connected to the socket addresses the gate checked, and to nothing else. TLS still
//! verifies the certificate against the host name, so pinning the address does not weaken it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use super::Origin;

/// The future that drives the connection after the response head has arrived; it reports a
/// failure of the request body's upload to the plugin.
pub(super) type Upload = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// A TLS or plain TCP stream.
trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T> Stream for T where T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

/// Sends `request` to `origin` at one of `addresses` (tried in order, as a resolver's answer
/// would be), within the timeouts of `options`.
pub(super) async fn send(
    addresses: &[SocketAddr],
    origin: &Origin,
    mut request: http::Request<WasiBody>,
    options: RequestOptions,
) -> Result<(http::Response<WasiBody>, Upload), HttpError> {
    let connect_timeout = options.connect_timeout.unwrap_or(Duration::from_secs(600));
    let first_byte_timeout = options
        .first_byte_timeout
        .unwrap_or(Duration::from_secs(600));
    // Tokio panics on a zero interval.
    let between_bytes_timeout = options
        .between_bytes_timeout
        .unwrap_or(Duration::from_secs(600))
        .max(Duration::from_nanos(1));

    let tcp = tokio::time::timeout(connect_timeout, connect(addresses))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    let stream: Box<dyn Stream> = if origin.scheme == "https" {
        let name = server_name(&origin.host)?;
        let tls = tokio::time::timeout(
            connect_timeout,
            tokio_rustls::TlsConnector::from(
                crate::net::tls::client_config()
                    .map_err(|reason| HttpError::InternalError(Some(reason)))?,
            )
            .connect(name, tcp),
        )
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, mut connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;

    // The request carries scheme and authority, which HTTP/1.1 sends only to a proxy; the
    // `Host` header, set by wasmtime from the same URI, names the server.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    let exchange = async {
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)??;
        let mut idle = tokio::time::interval(between_bytes_timeout);
        idle.reset();
        Ok::<_, HttpError>(response.map(|incoming| Timed { incoming, idle }.boxed_unsync()))
    };
    // The response head arrives only while the connection is driven, so both are polled.
    tokio::pin!(exchange);
    let mut finished = false;
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = exchange.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        if finished {
            return Poll::Pending;
        }
        let driven = ready!(Pin::new(&mut connection).poll(cx));
        finished = true;
        match driven {
            Ok(()) => exchange.as_mut().poll(cx),
            Err(err) => Poll::Ready(Err(HttpError::from(err))),
        }
    })
    .await?;
    let upload: Upload = Box::new(async move {
        if finished {
            return Ok(());
        }
        connection.await.map_err(|err| {
            if err.is_timeout() {
                HttpError::HttpResponseTimeout
            } else {
                HttpError::from(err)
            }
        })
    });
    Ok((response, upload))
}

/// A TCP connection to the first of `addresses` that accepts one.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, HttpError> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some(err),
        }
    }
    Err(last.map_or(HttpError::DestinationNotFound, HttpError::Connect))
}

/// The name the server's certificate must carry: the host of the URL, not the address.
fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, HttpError> {
    match crate::net::resolve::literal(host) {
        Some(ip) => Ok(rustls::pki_types::ServerName::from(ip)),
        None => Ok(rustls::pki_types::ServerName::try_from(host.to_owned())?),
    }
}

/// A response body that fails when no byte arrives for its between-bytes timeout.
struct Timed {
    incoming: hyper::body::Incoming,
    idle: tokio::time::Interval,
}

impl Body for Timed {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(err))) if err.is_timeout() => {
                Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(HttpError::from(err)))),
            Poll::Ready(Some(Ok(frame))) => {
                self.idle.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.idle.poll_tick(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
