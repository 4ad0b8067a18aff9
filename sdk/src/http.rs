//! A small blocking HTTP client over the host's `wasi:http/outgoing-handler`.
//!
//! The host adds the authorization header of the hosts the operator granted and refuses the
//! others, so requests here carry no credentials. [`Http`] is the seam for tests: plugins
//! take `&mut dyn Http`, get [`HostClient`] in the component and [`Recording`] in tests.
//!
//! A reply is read whole unless the request sets a [`Request::limit`]: then the client stops
//! reading at the limit and marks the [`Response::truncated`], so that a plugin fetching
//! something of unbounded size (a pull request's diff) keeps a bounded prefix instead of
//! failing or holding megabytes it would cut anyway.

use std::fmt;

/// The methods responders use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outgoing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The whole URL, `https://host[:port]/path?query`.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The most body bytes to read from the reply, see [`Request::limit`].
    pub limit: Option<usize>,
    /// How long connecting, the first byte and each later byte may take, see
    /// [`Request::timeout`].
    pub timeout: Option<std::time::Duration>,
}

impl Request {
    /// A request with no headers and no body, whose reply is read whole.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            limit: None,
            timeout: None,
        }
    }

    /// Gives up when connecting, the first byte of the reply or any later byte takes longer
    /// than `timeout`; without one, each may take 30 s.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Reads at most `max_bytes` of the reply's body: the rest is left unread and the response
    /// is marked [`Response::truncated`]. Without a limit, a body over the client's own cap
    /// (16 MiB) is an error.
    pub fn limit(mut self, max_bytes: usize) -> Request {
        self.limit = Some(max_bytes);
        self
    }

    /// Adds one header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds headers.
    pub fn headers(mut self, headers: &[(&str, &str)]) -> Request {
        for (name, value) in headers {
            self = self.header(name, value);
        }
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json(mut self, value: &serde_json::Value) -> Request {
        self.body = value.to_string().into_bytes();
        self.header("Content-Type", "application/json")
    }

    /// The first value of the header `name`, compared case-insensitively.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body parsed as JSON, `None` when empty or not JSON.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The URL without scheme and authority: `/path?query`.
    pub fn path(&self) -> &str {
        match split_url(&self.url) {
            Some((_, _, path)) => path,
            None => &self.url,
        }
    }
}

/// A response, with its body read whole or up to the request's [`Request::limit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names (lower-case, as wasi:http gives them) and values, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// True when the body went on past the request's limit: `body` holds its first `limit`
    /// bytes, possibly ending inside a UTF-8 character.
    pub truncated: bool,
}

impl Response {
    /// A whole response with a status and body and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
            truncated: false,
        }
    }

    /// A response with a JSON body.
    pub fn json_body(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, value.to_string())
    }

    /// Adds one header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The first value of the header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body parsed as JSON, `None` when it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The status code with its reason phrase, e.g. `404 Not Found`, for error messages:
    /// `wasi:http` carries no reason phrase (nor does HTTP/2), so the standard one is used.
    pub fn status_line(&self) -> String {
        match reason_phrase(self.status) {
            Some(reason) => format!("{} {reason}", self.status),
            None => self.status.to_string(),
        }
    }

    /// Cuts the body to at most `max_bytes`, as a client reading only that much would have.
    fn limit_to(mut self, max_bytes: usize) -> Response {
        if self.body.len() > max_bytes {
            self.body.truncate(max_bytes);
            self.truncated = true;
        }
        self
    }
}

/// The reason phrases of the statuses providers' APIs answer with.
fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// A request that got no response: it could not be built, sent or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub message: String,
    /// True for network trouble (DNS, connection, timeouts); false when the request itself
    /// is wrong or the host refused it (a host the operator did not grant).
    pub retryable: bool,
}

impl HttpError {
    pub fn new(message: impl Into<String>, retryable: bool) -> HttpError {
        HttpError {
            message: message.into(),
            retryable,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// Something that sends requests: the host in a component, a fake in tests.
pub trait Http {
    fn send(&mut self, request: Request) -> Result<Response, HttpError>;
}

/// The origin of `url`, `scheme://authority`, or `None` when it is not an absolute URL; for
/// checking that a URL a provider returned (a pagination link) stays on the granted origin.
/// Schemes and hosts are case-insensitive: compare origins with `eq_ignore_ascii_case`.
pub fn origin(url: &str) -> Option<&str> {
    let (scheme, authority, _) = split_url(url)?;
    Some(&url[..scheme.len() + "://".len() + authority.len()])
}

/// The API base URL from the operator's setting `configured`, trimmed and without a trailing
/// `/` so that paths can be appended; `default` when the setting is unset or blank.
pub fn base_url(configured: Option<&str>, default: &str) -> String {
    configured
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .unwrap_or(default)
        .trim()
        .trim_end_matches('/')
        .to_owned()
}

/// `segment` escaped for one URL path segment: everything but RFC 3986's unreserved
/// characters is percent-encoded, so a `/`, `?` or `#` in a name cannot change the path.
pub fn percent_encode(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(char::from(byte))
            }
            _ => {
                encoded.push('%');
                encoded.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
                encoded.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 15)]));
            }
        }
    }
    encoded
}

/// Splits `scheme://authority/path?query` into its three parts; the path is `/` when absent.
pub(crate) fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return None;
    }
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

/// The host's outgoing HTTP. Natively (unit tests) there is no host, and every request fails
/// without being sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostClient;

impl Http for HostClient {
    fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        #[cfg(target_arch = "wasm32")]
        {
            wasi_client::send(request)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = request;
            Err(HttpError::new(
                "outgoing HTTP needs the mecha host (wasm32 component)",
                false,
            ))
        }
    }
}

/// Sends `request` through the host's outgoing HTTP and reads the whole response.
pub fn send(request: Request) -> Result<Response, HttpError> {
    HostClient.send(request)
}

type Reply = Box<dyn FnMut(&Request) -> Result<Response, HttpError>>;

/// A fake [`Http`] for tests: keeps every request and answers with a closure. Like the host
/// client, it cuts a reply at the request's [`Request::limit`] and marks it truncated.
pub struct Recording {
    /// Every request sent, in order.
    pub requests: Vec<Request>,
    reply: Reply,
}

impl Recording {
    /// Answers each request with `reply(&request)`.
    pub fn new(reply: impl FnMut(&Request) -> Result<Response, HttpError> + 'static) -> Recording {
        Recording {
            requests: Vec::new(),
            reply: Box::new(reply),
        }
    }

    /// Answers a `GET` with an empty JSON array (no comments yet) and anything else with
    /// `201 {}`.
    pub fn accepting() -> Recording {
        Recording::new(|request| {
            Ok(match request.method {
                Method::Get => Response::new(200, "[]"),
                _ => Response::new(201, "{}"),
            })
        })
    }
}

impl fmt::Debug for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recording")
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl Http for Recording {
    fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        let response = (self.reply)(&request);
        let limit = request.limit;
        self.requests.push(request);
        response.map(|response| match limit {
            Some(max_bytes) => response.limit_to(max_bytes),
            None => response,
        })
    }
}

#[cfg(target_arch = "wasm32")]
mod wasi_client;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_is_scheme_and_authority() {
        assert_eq!(
            origin("https://ghe.test:8443/api/v3/x?page=2"),
            Some("https://ghe.test:8443")
        );
        assert_eq!(
            origin("https://api.github.test"),
            Some("https://api.github.test")
        );
        assert_eq!(origin("/repos/o/r"), None);
        assert_eq!(origin("https:///path"), None);
    }

    #[test]
    fn base_url_is_trimmed_or_the_default() {
        let default = "https://api.github.com";
        assert_eq!(
            base_url(Some(" https://ghe.test/api/v3/ "), default),
            "https://ghe.test/api/v3"
        );
        assert_eq!(base_url(Some("  "), default), default);
        assert_eq!(base_url(None, default), default);
    }

    #[test]
    fn percent_encode_keeps_only_unreserved_bytes() {
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(percent_encode("a b/c?d#é"), "a%20b%2Fc%3Fd%23%C3%A9");
    }

    #[test]
    fn status_lines_name_known_reasons() {
        assert_eq!(Response::new(404, "").status_line(), "404 Not Found");
        assert_eq!(Response::new(599, "").status_line(), "599");
    }

    #[test]
    fn recording_cuts_replies_at_the_request_limit() {
        let mut http = Recording::new(|_| Ok(Response::new(200, "0123456789")));
        let whole = http
            .send(Request::new(Method::Get, "https://a.test/"))
            .unwrap();
        assert_eq!((whole.body.len(), whole.truncated), (10, false));
        let exact = http
            .send(Request::new(Method::Get, "https://a.test/").limit(10))
            .unwrap();
        assert_eq!((exact.body.len(), exact.truncated), (10, false));
        let cut = http
            .send(Request::new(Method::Get, "https://a.test/").limit(4))
            .unwrap();
        assert_eq!((cut.body, cut.truncated), (b"0123".to_vec(), true));
    }
}
