//! One HTTP/1.1 request to a registry, over hyper and tokio-rustls (ring, the webpki roots): the
//! pieces the plugin gate's client and `fetch.rs` are made of. The CLI's reqwest is built
//! without TLS, since it only talks to a daemon, while registries are HTTPS.
//!
//! Redirects are followed here, for GET and HEAD only (blob downloads are commonly redirected to
//! storage), each checked by [`check_transport`]; the registry's authorization is dropped as soon
//! as a redirect leaves its origin, so a storage host never sees it.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use reqwest::Url;

use super::reference::check_transport;
use super::{Error, MAX_REDIRECTS};

/// 30 s to connect and get the answer's headers: a registry answers in well under a second,
/// and an address that drops packets should not hang the command.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// 60 s without a byte of a body: a stalled download ends, a slow one continues.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A request to repeat as often as authentication and redirects need.
pub(super) struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    pub fn header(mut self, name: header::HeaderName, value: &'static str) -> Request {
        self.headers.insert(name, HeaderValue::from_static(value));
        self
    }

    pub fn body(mut self, content_type: &'static str, body: Bytes) -> Request {
        self.body = body;
        self.header(header::CONTENT_TYPE, content_type)
    }
}

/// An answer, with the URL it finally came from (after redirects).
pub(super) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub url: Url,
    body: hyper::body::Incoming,
}

impl Response {
    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body, refused as soon as it passes `limit` bytes.
    pub async fn read_capped(mut self, limit: u64, what: &str) -> Result<Vec<u8>, Error> {
        let too_large = || Error::TooLarge {
            what: what.to_owned(),
            limit,
        };
        let declared = self
            .header(header::CONTENT_LENGTH)
            .and_then(|length| length.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        loop {
            let frame = tokio::time::timeout(STALL_TIMEOUT, self.body.frame())
                .await
                .map_err(|_| connect_error(&self.url, "the download stalled".into()))?;
            let Some(frame) = frame else {
                return Ok(bytes);
            };
            let frame = frame.map_err(|err| connect_error(&self.url, err.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if (bytes.len() + data.len()) as u64 > limit {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
    }
}

/// Sends `request`, with `authorization` while it stays on `origin`, following redirects.
pub(super) async fn send(
    request: &Request,
    authorization: Option<&str>,
    origin: &Url,
    insecure: bool,
) -> Result<Response, Error> {
    let mut url = request.url.clone();
    let mut redirects = 0;
    loop {
        check_transport(&url, insecure)?;
        let authorization = authorization.filter(|_| url.origin() == origin.origin());
        let response = once(request, &url, authorization).await?;
        let follow = matches!(request.method, Method::GET | Method::HEAD)
            && response.status().is_redirection();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok());
        match location {
            Some(location) if follow => {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(Error::Protocol(format!(
                        "{} redirected more than {MAX_REDIRECTS} times",
                        request.url.origin().ascii_serialization()
                    )));
                }
                url = url.join(location).map_err(|err| {
                    Error::Protocol(format!("a redirect's Location is not a URL: {err}"))
                })?;
            }
            _ => {
                let (parts, body) = response.into_parts();
                return Ok(Response {
                    status: parts.status,
                    headers: parts.headers,
                    url,
                    body,
                });
            }
        }
    }
}

/// One request over a fresh connection (a pull makes a handful).
async fn once(
    request: &Request,
    url: &Url,
    authorization: Option<&str>,
) -> Result<http::Response<hyper::body::Incoming>, Error> {
    tokio::time::timeout(ANSWER_TIMEOUT, once_untimed(request, url, authorization))
        .await
        .map_err(|_| {
            connect_error(
                url,
                format!("no answer within {} s", ANSWER_TIMEOUT.as_secs()),
            )
        })?
}

async fn once_untimed(
    request: &Request,
    url: &Url,
    authorization: Option<&str>,
) -> Result<http::Response<hyper::body::Incoming>, Error> {
    let failed = |reason: String| connect_error(url, reason);
    let crate::net::http1::Connection {
        mut sender,
        authority,
        path,
    } = crate::net::http1::connect(url).await.map_err(failed)?;
    let mut builder = http::Request::builder()
        .method(request.method.clone())
        .uri(path)
        .header(header::HOST, authority)
        .header(
            header::USER_AGENT,
            concat!("mecha/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(authorization) = authorization {
        builder = builder.header(header::AUTHORIZATION, authorization);
    }
    if request.method == Method::POST || request.method == Method::PUT {
        builder = builder.header(header::CONTENT_LENGTH, request.body.len());
    }
    let http_request = builder
        .body(Full::new(request.body.clone()))
        .map_err(|err| failed(err.to_string()))?;
    sender
        .send_request(http_request)
        .await
        .map_err(|err| failed(err.to_string()))
}

fn connect_error(url: &Url, reason: String) -> Error {
    Error::Connect {
        url: url.origin().ascii_serialization(),
        reason,
    }
}
