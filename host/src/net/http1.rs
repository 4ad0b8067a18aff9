//! One HTTP/1.1 connection to a URL's origin, plain or over TLS ([`super::tls`]), for the
//! clients mecha runs itself (plugin downloads, OCI registries): reqwest is built without TLS.

use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::Url;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

/// A TLS or plain TCP stream.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T> Stream for T where T: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

/// An open connection and what a request on it names: the `Host` header and the path with
/// its query.
pub struct Connection<B> {
    pub sender: SendRequest<B>,
    pub authority: String,
    pub path: String,
}

/// Connects to `url`'s host and port (TLS for `https`, checking the host's certificate) and
/// hands the connection to a task that drives it until the response is read or dropped. The
/// error says what failed, without the URL.
pub async fn connect<B>(url: &Url) -> Result<Connection<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((bare_host, port))
        .await
        .map_err(|err| err.to_string())?;
    let stream: Box<dyn Stream> = if url.scheme() == "https" {
        let name = match super::resolve::literal(host) {
            Some(ip) => rustls::pki_types::ServerName::from(ip),
            None => rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|err| err.to_string())?,
        };
        let tls = tokio_rustls::TlsConnector::from(super::tls::client_config()?)
            .connect(name, tcp)
            .await
            .map_err(|err| format!("TLS failed: {err}"))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| err.to_string())?;
    tokio::spawn(connection);
    Ok(Connection {
        sender,
        authority: match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        },
        path: match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        },
    })
}
