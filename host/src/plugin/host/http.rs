//! Outgoing HTTP for responder plugins (`wasi:http/outgoing-handler`), through a gate.
//!
//! A plugin may reach only the origins the operator granted it. On the way out the host, not
//! the plugin, adds the credential bound to that origin (so the token never enters the
//! plugin's memory, and a plugin cannot send it elsewhere), refuses addresses in private,
//! loopback, link-local or metadata ranges unless the grant names such an address itself or
//! allows private networks, and caps the response's size and time. Every refusal is logged with
//! the plugin's name and the origin it tried.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpCtx, WasiHttpHooks,
};

use crate::config::secrets::Secret;

/// 30 s to connect and 30 s to each byte: the GitHub and GitLab APIs answer in well under a
/// second, and a write-back that hangs longer is retried later rather than waited for.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// 4 MiB per response: the largest answer a responder needs is a page of comments.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// Headers only the host sets: credentials, which the plugin must never choose or see.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "private-token", "proxy-authorization"];

/// A `scheme://host[:port]` a plugin may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `https://api.github.com`, `http://127.0.0.1:8080/api/v4` (the path is ignored).
    pub fn parse(url: &str) -> Result<Origin, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("`{url}` is not a URL (write it like https://api.github.com)")
        })?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(format!("`{url}` must use http or https")),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("`{url}` has no host, or carries credentials"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                match port.parse::<u16>() {
                    Ok(port) => (host, port),
                    Err(_) if authority.starts_with('[') && authority.ends_with(']') => {
                        (authority, default_port)
                    }
                    Err(_) => return Err(format!("`{url}` has a bad port")),
                }
            }
            _ => (authority, default_port),
        };
        Ok(Origin {
            scheme,
            host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            port,
        })
    }

    /// The origin of a request's URI, if it has scheme and host.
    fn of(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.trim_matches(['[', ']']).to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Some(Origin { scheme, host, port })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// A credential the host adds to requests to one origin.
#[derive(Clone)]
pub struct Credential {
    pub origin: Origin,
    pub header: HeaderName,
    /// The header's whole value, e.g. `Bearer <token>`.
    pub value: Secret,
}

/// What one plugin may reach.
#[derive(Clone)]
pub struct HttpGrant {
    pub origins: Vec<Origin>,
    pub credentials: Vec<Credential>,
    /// Hosts that resolve to private, loopback or link-local addresses may be called (a
    /// self-hosted GitLab on the LAN). Cloud metadata addresses are refused even then.
    pub allow_private: bool,
    pub max_response_bytes: u64,
}

impl Default for HttpGrant {
    fn default() -> Self {
        HttpGrant::none()
    }
}

impl HttpGrant {
    /// Nothing may be reached.
    pub fn none() -> HttpGrant {
        HttpGrant {
            origins: Vec::new(),
            credentials: Vec::new(),
            allow_private: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// The `wasi:http` state of one call: wasmtime's context plus the gate.
pub struct HttpContext {
    pub(crate) ctx: WasiHttpCtx,
    pub(crate) hooks: Gate,
}

impl HttpContext {
    pub fn new(plugin: Arc<str>, grant: Arc<HttpGrant>) -> HttpContext {
        HttpContext {
            ctx: WasiHttpCtx::new(),
            hooks: Gate { plugin, grant },
        }
    }
}

/// Decides and sends each outgoing request of one call.
pub struct Gate {
    plugin: Arc<str>,
    grant: Arc<HttpGrant>,
}

impl WasiHttpHooks for Gate {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name| {
            DEFAULT_FORBIDDEN_HEADERS.contains(name) || CREDENTIAL_HEADERS.contains(&name.as_str())
        })
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        drop(fut);
        let plugin = self.plugin.clone();
        let grant = self.grant.clone();
        Box::new(async move { send(&plugin, &grant, request, options).await })
    }
}

type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

async fn send(
    plugin: &str,
    grant: &HttpGrant,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<Sent, HttpError> {
    let Some(origin) = Origin::of(request.uri()) else {
        return Err(HttpError::HttpRequestUriInvalid);
    };
    if !grant.origins.contains(&origin) {
        tracing::warn!(plugin, %origin, "refused an outgoing request to an origin the plugin was not granted");
        return Err(HttpError::HttpRequestDenied);
    }
    check_addresses(plugin, grant, &origin).await?;
    for credential in grant.credentials.iter().filter(|c| c.origin == origin) {
        let mut value = HeaderValue::from_str(credential.value.expose())
            .map_err(|_| HttpError::HttpRequestDenied)?;
        value.set_sensitive(true);
        request
            .headers_mut()
            .insert(credential.header.clone(), value);
    }
    let options = RequestOptions {
        connect_timeout: Some(cap(
            options.and_then(|o| o.connect_timeout),
            CONNECT_TIMEOUT,
        )),
        first_byte_timeout: Some(cap(
            options.and_then(|o| o.first_byte_timeout),
            BYTE_TIMEOUT,
        )),
        between_bytes_timeout: Some(cap(
            options.and_then(|o| o.between_bytes_timeout),
            BYTE_TIMEOUT,
        )),
    };
    let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
    let limit = grant.max_response_bytes;
    let response = response.map(|body| {
        Capped {
            inner: body.boxed_unsync(),
            left: limit,
            limit,
        }
        .boxed_unsync()
    });
    Ok((response, Box::new(io)))
}

fn cap(asked: Option<Duration>, most: Duration) -> Duration {
    asked.map_or(most, |asked| asked.min(most))
}

/// Resolves the origin's host and refuses it if any address is one the grant does not allow.
/// A host written as an address in the grant itself counts as allowed: the operator named it.
async fn check_addresses(
    plugin: &str,
    grant: &HttpGrant,
    origin: &Origin,
) -> Result<(), HttpError> {
    let named_address = origin.host.parse::<IpAddr>().is_ok() || origin.host == "localhost";
    if named_address {
        return match origin.host.parse::<IpAddr>() {
            Ok(ip) if is_metadata(ip) => {
                tracing::warn!(plugin, %origin, "refused a request to a cloud metadata address");
                Err(HttpError::DestinationIpProhibited)
            }
            _ => Ok(()),
        };
    }
    let addresses = tokio::net::lookup_host((origin.host.as_str(), origin.port))
        .await
        .map_err(|_| HttpError::DnsError {
            rcode: None,
            info_code: None,
        })
        .map(|addresses| addresses.map(|address| address.ip()).collect::<Vec<_>>())?;
    for ip in addresses {
        if is_metadata(ip) || (!grant.allow_private && !is_public(ip)) {
            tracing::warn!(plugin, %origin, %ip, "refused a request to a host that resolves to a private address; grant private networks to allow it");
            return Err(HttpError::DestinationIpProhibited);
        }
    }
    Ok(())
}

/// 169.254.169.254 and its IPv6 twin fd00:ec2::254: where cloud machines keep their credentials.
fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.octets() == [169, 254, 169, 254],
        IpAddr::V6(ip) => ip.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254],
    }
}

/// Whether `ip` is on the public internet: not loopback, private, link-local, unspecified,
/// shared (CGNAT), documentation, broadcast or multicast space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || ip.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = ip.segments()[0];
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A response body cut off with an error past `limit` bytes.
struct Capped {
    inner: WasiBody,
    left: u64,
    limit: u64,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let size = data.len() as u64;
            if size > self.left {
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.limit)))));
            }
            self.left -= size;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_with_default_ports() {
        let origin = Origin::parse("https://api.github.com").expect("parses");
        assert_eq!(origin.to_string(), "https://api.github.com:443");
        let origin = Origin::parse("http://127.0.0.1:8080/api/v4").expect("parses");
        assert_eq!(origin.to_string(), "http://127.0.0.1:8080");
        let origin = Origin::parse("HTTPS://GitLab.Example.com/api/v4").expect("parses");
        assert_eq!(origin.host, "gitlab.example.com");
        let origin = Origin::parse("http://[::1]:9000/").expect("parses");
        assert_eq!((origin.host.as_str(), origin.port), ("::1", 9000));
        for bad in [
            "api.github.com",
            "ftp://x",
            "https://",
            "https://user:pw@x",
            "http://x:y",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    fn body(size: usize) -> WasiBody {
        http_body_util::Full::new(Bytes::from(vec![b'x'; size]))
            .map_err(|never| match never {})
            .boxed_unsync()
    }

    #[tokio::test]
    async fn responses_past_the_cap_fail_instead_of_filling_memory() {
        let capped = |size, limit| Capped {
            inner: body(size),
            left: limit,
            limit,
        };
        let read = capped(64, 64).collect().await.expect("at the cap");
        assert_eq!(read.to_bytes().len(), 64);
        match capped(65, 64).collect().await {
            Err(HttpError::HttpResponseBodySize(Some(64))) => {}
            other => panic!("expected the size error, got {:?}", other.map(|_| ())),
        }
    }

    #[tokio::test]
    async fn ungranted_origins_and_metadata_addresses_are_refused() {
        let grant = HttpGrant {
            origins: vec![Origin::parse("http://169.254.169.254").expect("origin")],
            ..HttpGrant::none()
        };
        let request = |url: &str| {
            http::Request::builder()
                .uri(url)
                .body(body(0))
                .expect("request")
        };
        match send("test", &grant, request("http://127.0.0.1:9/x"), None).await {
            Err(HttpError::HttpRequestDenied) => {}
            other => panic!("expected a denial, got {:?}", other.map(|_| ())),
        }
        // Even granted, a cloud metadata address is never called.
        match send(
            "test",
            &grant,
            request("http://169.254.169.254/latest"),
            None,
        )
        .await
        {
            Err(HttpError::DestinationIpProhibited) => {}
            other => panic!("expected a prohibited address, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn public_and_private_addresses() {
        for public in ["140.82.112.6", "2606:4700::1111", "100.128.0.1"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        assert!(is_metadata("169.254.169.254".parse().expect("ip")));
        assert!(is_metadata("fd00:ec2::254".parse().expect("ip")));
    }
}
