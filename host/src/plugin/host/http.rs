//! Outgoing HTTP for responder plugins (`wasi:http/outgoing-handler`), through a gate.
//!
//! A plugin may reach only the origins the operator granted it. On the way out the host, not
//! the plugin, adds the credential bound to that origin, in a header or, for Telegram's Bot API,
//! in the path (so the token never enters the plugin's memory, and a plugin cannot send it
//! elsewhere; a token placed in the path is hidden again in the answer), refuses addresses in
//! private or loopback ranges unless the grant names such an address itself or allows private
//! networks, refuses metadata and link-local addresses always (in every spelling, as
//! [`crate::net::address`] decides), and caps the response's size and time. The host is resolved
//! once and the connection goes to the very addresses that were checked (`pinned`), so a DNS
//! answer that changes between check and connection (rebinding) is never used. Every refusal is
//! logged with the plugin's name and the origin it tried. A rate limit's `Retry-After` is kept
//! for the caller ([`RetryAfter`]), which schedules the next try by it. Each request carries the
//! `traceparent` of the stage that made it (a write-back, a hydration), unless the plugin set
//! its own.

mod pinned;

use std::net::SocketAddr;
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
use crate::net::address::{Reach, Reason};
use crate::net::resolve::{ResolveError, Resolver, literal};
use crate::redact::REDACTED;

/// 30 s to connect and 30 s to each byte: the GitHub and GitLab APIs answer in well under a
/// second, and a write-back that hangs longer is retried later rather than waited for.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// 4 MiB per response: the largest answer a responder needs is a page of comments.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

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
    pub placement: Placement,
}

/// Where a credential goes in a request.
#[derive(Clone)]
pub enum Placement {
    /// A header, e.g. `Authorization` with the whole value `Bearer <token>`.
    Header { name: HeaderName, value: Secret },
    /// Telegram's Bot API, which takes the token in the path: a request for
    /// `<base>/bot/<method>` is sent to `<base>/bot<token>/<method>`, where `base` is the API
    /// URL's path (empty for `https://api.telegram.org`). Telegram echoes request URLs in some
    /// answers, so the token is also hidden in the answer before the plugin reads it.
    BotPath { base: String, token: Secret },
}

/// What one plugin may reach.
#[derive(Clone)]
pub struct HttpGrant {
    pub origins: Vec<Origin>,
    pub credentials: Vec<Credential>,
    /// Hosts that resolve to private or loopback addresses may be called (a self-hosted GitLab
    /// on the LAN). Metadata and link-local addresses are refused even then.
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

/// The `Retry-After` a provider sent with a 429 or 503 during one call (the last one, as sent),
/// kept by the gate for the caller: a write-back that failed on a rate limit is then retried no
/// earlier than the provider asked, whatever the plugin made of the answer.
#[derive(Clone, Default)]
pub struct RetryAfter(Arc<std::sync::Mutex<Option<String>>>);

impl RetryAfter {
    fn note(&self, value: &str) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value.to_owned());
    }

    /// The value noted last, if any.
    pub fn value(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The `wasi:http` state of one call: wasmtime's context plus the gate.
pub struct HttpContext {
    pub(crate) ctx: WasiHttpCtx,
    pub(crate) hooks: Gate,
}

impl HttpContext {
    pub fn new(
        plugin: Arc<str>,
        grant: Arc<HttpGrant>,
        retry_after: RetryAfter,
        traceparent: Option<HeaderValue>,
    ) -> HttpContext {
        HttpContext {
            ctx: WasiHttpCtx::new(),
            hooks: Gate {
                plugin,
                grant,
                resolver: Resolver::system(),
                retry_after,
                traceparent,
            },
        }
    }
}

/// Decides and sends each outgoing request of one call.
pub struct Gate {
    plugin: Arc<str>,
    grant: Arc<HttpGrant>,
    resolver: Resolver,
    retry_after: RetryAfter,
    traceparent: Option<HeaderValue>,
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
        let mut request = request;
        if let Some(traceparent) = &self.traceparent {
            request
                .headers_mut()
                .entry(TRACEPARENT)
                .or_insert_with(|| traceparent.clone());
        }
        let plugin = self.plugin.clone();
        let grant = self.grant.clone();
        let resolver = self.resolver.clone();
        let retry_after = self.retry_after.clone();
        Box::new(async move {
            let sent = send(&plugin, &grant, &resolver, request, options).await;
            if let Ok((response, _)) = &sent
                && matches!(response.status().as_u16(), 429 | 503)
                && let Some(value) = response.headers().get(http::header::RETRY_AFTER)
                && let Ok(value) = value.to_str()
            {
                retry_after.note(value);
            }
            sent
        })
    }
}

type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

async fn send(
    plugin: &str,
    grant: &HttpGrant,
    resolver: &Resolver,
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
    let addresses = checked_addresses(plugin, grant, resolver, &origin).await?;
    // Tokens placed in the path, to hide in the answer.
    let mut in_path = Vec::new();
    for credential in grant.credentials.iter().filter(|c| c.origin == origin) {
        match &credential.placement {
            Placement::Header { name, value } => {
                let mut value = HeaderValue::from_str(value.expose())
                    .map_err(|_| HttpError::HttpRequestDenied)?;
                value.set_sensitive(true);
                request.headers_mut().insert(name.clone(), value);
            }
            Placement::BotPath { base, token } => {
                if let Some(uri) = with_token_in_path(request.uri(), base, token) {
                    *request.uri_mut() = uri?;
                    in_path.push(token.clone());
                }
            }
        }
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
    let (response, io) = pinned::send(&addresses, &origin, request, options).await?;
    let limit = grant.max_response_bytes;
    let response = response.map(|body| {
        Capped {
            inner: body.boxed_unsync(),
            left: limit,
            limit,
        }
        .boxed_unsync()
    });
    if in_path.is_empty() {
        return Ok((response, io));
    }
    hide_tokens(response, io, &in_path).await
}

/// `uri` with `token` placed after `<base>/bot`, when its path is `<base>/bot/…`; `None` when
/// it is not such a request (it then goes out without the token), an error when the token
/// makes no valid URI (which says nothing of the token).
fn with_token_in_path(
    uri: &http::Uri,
    base: &str,
    token: &Secret,
) -> Option<Result<http::Uri, HttpError>> {
    let path_and_query = uri.path_and_query()?.as_str();
    let method = path_and_query.strip_prefix(base)?.strip_prefix("/bot/")?;
    let mut parts = uri.clone().into_parts();
    let placed = format!("{base}/bot{}/{method}", token.expose());
    parts.path_and_query = Some(match placed.parse() {
        Ok(placed) => placed,
        Err(_) => return Some(Err(HttpError::HttpRequestUriInvalid)),
    });
    Some(http::Uri::from_parts(parts).map_err(|_| HttpError::HttpRequestUriInvalid))
}

/// The answer of Telegram's Bot API (a request whose path carried a token), with every token of
/// `tokens` replaced by [`REDACTED`] in its headers and body, as it is and percent-encoded
/// (Telegram's tokens hold a `:`, which an echoed URL may encode). The body is read whole for
/// that (it is capped already), while the connection is driven.
///
/// Telegram says how long a flood limit lasts only in the body of its 429
/// (`parameters.retry_after`); the answer gets it as the standard `Retry-After` header too, so
/// the write-back's schedule honours it as any other provider's.
async fn hide_tokens(
    response: http::Response<WasiBody>,
    io: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    tokens: &[Secret],
) -> Result<Sent, HttpError> {
    let (mut parts, body) = response.into_parts();
    let (body, driven) = tokio::join!(body.collect(), Box::into_pin(io));
    driven?;
    let body = body?.to_bytes();
    if parts.status == http::StatusCode::TOO_MANY_REQUESTS
        && !parts.headers.contains_key(http::header::RETRY_AFTER)
        && let Ok(reply) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(seconds) = reply["parameters"]["retry_after"].as_u64()
    {
        parts
            .headers
            .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    let forms: Vec<String> = tokens
        .iter()
        .flat_map(|token| {
            let token = token.expose();
            let encoded = token.replace(':', "%3A");
            [
                token.to_owned(),
                encoded.clone(),
                encoded.replace("%3A", "%3a"),
            ]
        })
        .filter(|form| !form.is_empty())
        .collect();
    let hide = |text: &str| {
        forms.iter().fold(text.to_owned(), |text, form| {
            text.replace(form.as_str(), REDACTED)
        })
    };
    for value in parts.headers.values_mut() {
        if let Ok(text) = value.to_str()
            && forms.iter().any(|form| text.contains(form.as_str()))
        {
            *value =
                HeaderValue::from_str(&hide(text)).map_err(|_| HttpError::HttpRequestDenied)?;
        }
    }
    let text = String::from_utf8_lossy(&body);
    let body = if forms.iter().any(|form| text.contains(form.as_str())) {
        // The length changed: a stale Content-Length would cut the body or wait for more.
        parts.headers.remove(http::header::CONTENT_LENGTH);
        Bytes::from(hide(&text))
    } else {
        body
    };
    let body = http_body_util::Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
    Ok((http::Response::from_parts(parts, body), done))
}

fn cap(asked: Option<Duration>, most: Duration) -> Duration {
    asked.map_or(most, |asked| asked.min(most))
}

/// Resolves the origin's host once and returns its addresses, or refuses it if any of them is
/// one the grant does not allow. A host written as an address in the grant, or `localhost`,
/// counts as internal-allowed: the operator named it. Metadata and link-local addresses are
/// refused whoever named them.
async fn checked_addresses(
    plugin: &str,
    grant: &HttpGrant,
    resolver: &Resolver,
    origin: &Origin,
) -> Result<Vec<SocketAddr>, HttpError> {
    let named = literal(&origin.host).is_some() || origin.host == "localhost";
    let reach = if named || grant.allow_private {
        Reach::Internal
    } else {
        Reach::Public
    };
    match resolver.resolve(&origin.host, origin.port, reach).await {
        Ok(addresses) => Ok(addresses),
        Err(ResolveError::Refused { refusal, .. }) => {
            let ip = refusal.address;
            match refusal.reason {
                Reason::Internal => {
                    tracing::warn!(plugin, %origin, %ip, "refused a request to a host that resolves to a private address; grant private networks to allow it")
                }
                Reason::Forbidden(why) => {
                    tracing::warn!(plugin, %origin, %ip, reason = %why, "refused a request to a metadata or link-local address, which no grant allows")
                }
            }
            Err(HttpError::DestinationIpProhibited)
        }
        Err(err) => {
            tracing::warn!(plugin, %origin, error = %err, "could not resolve the host of an outgoing request");
            Err(HttpError::DnsError {
                rcode: None,
                info_code: None,
            })
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

    fn request(url: &str) -> http::Request<WasiBody> {
        http::Request::builder()
            .uri(url)
            .header(http::header::HOST, "gate.test")
            .body(body(0))
            .expect("request")
    }

    fn granted(origins: &[&str], allow_private: bool) -> HttpGrant {
        HttpGrant {
            origins: origins
                .iter()
                .map(|url| Origin::parse(url).expect("origin"))
                .collect(),
            allow_private,
            ..HttpGrant::none()
        }
    }

    async fn refusal(grant: &HttpGrant, resolver: &Resolver, url: &str) -> String {
        match send("test", grant, resolver, request(url), None).await {
            Err(err) => format!("{err:?}"),
            Ok(_) => panic!("{url} was sent"),
        }
    }

    #[tokio::test]
    async fn ungranted_origins_and_metadata_addresses_are_refused() {
        let metadata = [
            "http://169.254.169.254",
            "http://169.254.170.2",
            "http://100.100.100.200",
            "http://192.0.0.192",
            "http://169.254.1.1",
            "http://[fd00:ec2::254]",
            "http://[fe80::1]",
            "http://[::ffff:169.254.169.254]",
            "http://[::ffff:a9fe:a9fe]",
            "http://[64:ff9b::a9fe:a9fe]",
            "http://[64:ff9b:1::a9fe:a9fe]",
            "http://[2002:a9fe:a9fe::]",
            "http://0.0.0.0",
            "http://[::]",
        ];
        let resolver = Resolver::system();
        let grant = granted(&metadata, true);
        assert_eq!(
            refusal(&grant, &resolver, "http://127.0.0.1:9/x").await,
            "HttpRequestDenied"
        );
        // Even granted, by address, with private networks allowed, none of them is called.
        for url in metadata {
            assert_eq!(
                refusal(&grant, &resolver, &format!("{url}/latest")).await,
                "DestinationIpProhibited",
                "{url}"
            );
        }
    }

    /// An HTTP server on 127.0.0.1 answering every request with `pinned`; its port.
    async fn stand_in() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let app = axum::Router::new().fallback(|| async { "pinned" });
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    /// An HTTP server on 127.0.0.1 answering every request with its path, as Telegram's error
    /// messages echo URLs, and in a header too; its port.
    async fn echo() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let app = axum::Router::new().fallback(|uri: http::Uri| async move {
            let path = uri.path().to_owned();
            (
                [("x-echo", path.clone())],
                format!(
                    "{{\"description\":\"Not Found: {path} and {}\"}}",
                    path.replace(':', "%3A")
                ),
            )
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    #[tokio::test]
    async fn a_bot_path_token_goes_into_the_path_and_never_back_to_the_plugin() {
        let port = echo().await;
        let api = format!("http://127.0.0.1:{port}/tg");
        let token = "123456:canary-bot-token";
        let grant = HttpGrant {
            credentials: vec![Credential {
                origin: Origin::parse(&api).expect("origin"),
                placement: Placement::BotPath {
                    base: "/tg".to_owned(),
                    token: Secret::new(token),
                },
            }],
            ..granted(&[&api], false)
        };
        let resolver = Resolver::system();
        let read = |url: String| {
            let grant = grant.clone();
            let resolver = resolver.clone();
            async move {
                let (response, io) =
                    match send("test", &grant, &resolver, request(&url), None).await {
                        Ok(sent) => sent,
                        Err(err) => panic!("{url} was refused: {err:?}"),
                    };
                let echoed = response.headers()["x-echo"]
                    .to_str()
                    .expect("text")
                    .to_owned();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                Box::into_pin(io).await.expect("connection");
                (echoed, String::from_utf8(body.to_vec()).expect("utf-8"))
            }
        };
        let (header, body) = read(format!("{api}/bot/sendMessage")).await;
        assert_eq!(
            header, "/tg/bot[REDACTED]/sendMessage",
            "the server got the token"
        );
        assert_eq!(
            body,
            r#"{"description":"Not Found: /tg/bot[REDACTED]/sendMessage and /tg/bot[REDACTED]/sendMessage"}"#
        );
        // Other paths of the origin go out as they are.
        let (header, _) = read(format!("{api}/health")).await;
        assert_eq!(header, "/tg/health");
    }

    #[tokio::test]
    async fn the_connection_goes_to_the_address_that_was_checked() {
        use crate::net::resolve::Scripted;
        use std::sync::atomic::Ordering;

        let port = stand_in().await;
        let url = format!("http://rebind.test:{port}/x");
        let grant = granted(&[&url], true);
        // A rebinding name: loopback to the first lookup, the metadata service afterwards.
        let script = Scripted::new(vec![
            vec!["127.0.0.1".parse().expect("ip")],
            vec!["169.254.169.254".parse().expect("ip")],
        ]);
        let lookups = script.count.clone();
        let resolver = Resolver::new(script);
        let (response, io) = match send("test", &grant, &resolver, request(&url), None).await {
            Ok(sent) => sent,
            Err(err) => panic!("the first answer is allowed, so the request is sent: {err:?}"),
        };
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.expect("body");
        assert_eq!(body.to_bytes(), "pinned");
        Box::into_pin(io).await.expect("connection");
        assert_eq!(
            lookups.load(Ordering::SeqCst),
            1,
            "one lookup: the connection used the checked answer, not a fresh one"
        );
        // The next request is checked on the next answer, which is refused.
        assert_eq!(
            refusal(&grant, &resolver, &url).await,
            "DestinationIpProhibited"
        );
    }

    #[tokio::test]
    async fn a_name_with_one_bad_address_or_a_private_one_is_refused() {
        let port = stand_in().await;
        let url = format!("http://mixed.test:{port}/x");
        let mixed = Resolver::new(crate::net::resolve::Scripted::new(vec![vec![
            "127.0.0.1".parse().expect("ip"),
            "::ffff:169.254.169.254".parse().expect("ip"),
        ]]));
        assert_eq!(
            refusal(&granted(&[&url], true), &mixed, &url).await,
            "DestinationIpProhibited"
        );
        let private = Resolver::new(crate::net::resolve::Scripted::new(vec![vec![
            "127.0.0.1".parse().expect("ip"),
        ]]));
        assert_eq!(
            refusal(&granted(&[&url], false), &private, &url).await,
            "DestinationIpProhibited",
            "private networks were not granted"
        );
    }
}
