//! A small blocking HTTP client over the host's `wasi:http/outgoing-handler`.
//!
//! The host adds the authorization header of the hosts the operator granted and refuses the
//! others, so requests here carry no credentials. [`Http`] is the seam for tests: plugins
//! take `&mut dyn Http`, get [`HostClient`] in the component and [`Recording`] in tests.

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
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
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

/// A response, with its body read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names (lower-case, as wasi:http gives them) and values, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a status and body and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
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

/// A fake [`Http`] for tests: keeps every request and answers with a closure.
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
        self.requests.push(request);
        response
    }
}

#[cfg(target_arch = "wasm32")]
mod wasi_client {
    //! [`super::HostClient`] on `wasi:http`: build the request, start it, stream the body
    //! out, wait for the response and stream its body in.

    use super::{HttpError, Method, Request, Response, split_url};
    use wasi::http::outgoing_handler;
    use wasi::http::types::{
        ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
        RequestOptions, Scheme, http_error_code,
    };
    use wasi::io::streams::StreamError;

    /// 30 s per phase, as the reference client's overall timeout: long enough for a slow
    /// GitHub, short enough that a hung call does not hold a worker's write-back.
    const TIMEOUT_NANOS: u64 = 30_000_000_000;

    /// Replies larger than this are refused, so a plugin's memory stays bounded. The host
    /// caps replies too (4 MiB by default), usually first.
    const MAX_RESPONSE_BYTES: usize = 16 << 20;

    /// `blocking-write-and-flush` takes at most 4096 bytes per call.
    const WRITE_CHUNK: usize = 4096;

    const READ_CHUNK: u64 = 64 << 10;

    pub(super) fn send(request: Request) -> Result<Response, HttpError> {
        let (scheme, authority, path) = split_url(&request.url).ok_or_else(|| {
            HttpError::new(format!("not an absolute URL: {}", request.url), false)
        })?;
        let scheme = match scheme {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => Scheme::Other(other.to_owned()),
        };
        let mut entries: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec()))
            .collect();
        // A known length instead of chunked encoding, which some servers refuse: hyper
        // would otherwise send a DELETE without a body as an empty chunked body.
        let needs_length = !request.body.is_empty() || request.method != Method::Get;
        if needs_length && request.header_value("content-length").is_none() {
            let length = request.body.len().to_string().into_bytes();
            entries.push(("content-length".to_owned(), length));
        }
        let headers = Fields::from_list(&entries)
            .map_err(|error| HttpError::new(format!("invalid request header: {error:?}"), false))?;
        let outgoing = OutgoingRequest::new(headers);
        let refused = |what: &str| HttpError::new(format!("the host refused the {what}"), false);
        outgoing
            .set_method(&wasi_method(request.method))
            .map_err(|()| refused("method"))?;
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| refused("scheme"))?;
        outgoing
            .set_authority(Some(authority))
            .map_err(|()| refused("authority"))?;
        outgoing
            .set_path_with_query(Some(path))
            .map_err(|()| refused("path"))?;
        // A request without a body never opens one (its length is 0, or absent on a GET).
        let body = if request.body.is_empty() {
            None
        } else {
            Some(outgoing.body().map_err(|()| refused("body"))?)
        };

        let options = RequestOptions::new();
        // A host that does not support a timeout says so; the call then has the host's own.
        let _ = options.set_connect_timeout(Some(TIMEOUT_NANOS));
        let _ = options.set_first_byte_timeout(Some(TIMEOUT_NANOS));
        let _ = options.set_between_bytes_timeout(Some(TIMEOUT_NANOS));

        let future = outgoing_handler::handle(outgoing, Some(options)).map_err(from_code)?;
        // When the body cannot be written, the response usually says why (a host that denied
        // the request drops its body), so that reason wins over the write error.
        let written = body.map_or(Ok(()), |body| write_body(body, &request.body));

        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => {
                written?;
                response
            }
            Some(Ok(Err(code))) => return Err(from_code(code)),
            Some(Err(())) => {
                return Err(HttpError::new("the response was already taken", false));
            }
            None => return Err(HttpError::new("the response never became ready", true)),
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| HttpError::new("the response body was already taken", false))?;
        let body = read_body(&incoming)?;
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn wasi_method(method: Method) -> WasiMethod {
        match method {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Patch => WasiMethod::Patch,
            Method::Delete => WasiMethod::Delete,
        }
    }

    fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
        {
            let stream = body
                .write()
                .map_err(|()| HttpError::new("the request body stream was already taken", false))?;
            for chunk in bytes.chunks(WRITE_CHUNK) {
                stream.blocking_write_and_flush(chunk).map_err(|error| {
                    HttpError::new(
                        format!("writing the request body failed: {}", stream_error(error)),
                        true,
                    )
                })?;
            }
            // The stream is a child of the body and must be dropped before `finish`.
        }
        OutgoingBody::finish(body, None).map_err(from_code)
    }

    fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, HttpError> {
        let stream = incoming
            .stream()
            .map_err(|()| HttpError::new("the response body stream was already taken", false))?;
        let mut body = Vec::new();
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_RESPONSE_BYTES {
                        return Err(HttpError::new(
                            format!("the response body is over {MAX_RESPONSE_BYTES} bytes"),
                            false,
                        ));
                    }
                }
                Err(StreamError::Closed) => return Ok(body),
                Err(StreamError::LastOperationFailed(error)) => {
                    // The host reports HTTP trouble (a reply over its size cap, a dropped
                    // connection) as an error code inside the stream error.
                    if let Some(code) = http_error_code(&error) {
                        return Err(from_code(code));
                    }
                    return Err(HttpError::new(
                        format!(
                            "reading the response body failed: {}",
                            error.to_debug_string()
                        ),
                        true,
                    ));
                }
            }
        }
    }

    fn stream_error(error: StreamError) -> String {
        match error {
            StreamError::Closed => "stream closed".to_owned(),
            StreamError::LastOperationFailed(error) => error.to_debug_string(),
        }
    }

    /// Network trouble is retryable; a request the host refused or found invalid is not.
    fn from_code(code: ErrorCode) -> HttpError {
        let retryable = !matches!(
            code,
            ErrorCode::HttpRequestDenied
                | ErrorCode::HttpRequestMethodInvalid
                | ErrorCode::HttpRequestUriInvalid
                | ErrorCode::HttpRequestUriTooLong
                | ErrorCode::HttpRequestHeaderSectionSize(_)
                | ErrorCode::HttpRequestHeaderSize(_)
                | ErrorCode::HttpRequestBodySize(_)
                | ErrorCode::HttpRequestLengthRequired
                | ErrorCode::HttpResponseBodySize(_)
                | ErrorCode::DestinationIpProhibited
                | ErrorCode::TlsCertificateError
                | ErrorCode::ConfigurationError
        );
        let message = match &code {
            ErrorCode::HttpRequestDenied => {
                "the host denied the request: is the API host granted to this plugin?".to_owned()
            }
            other => format!("{other:?}"),
        };
        HttpError::new(message, retryable)
    }
}
