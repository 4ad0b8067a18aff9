//! [`super::HostClient`] on `wasi:http`: build the request, start it, stream the body
//! out, wait for the response and stream its body in.

use super::{HttpError, Method, Request, Response, split_url};
use crate::source::bindings::wasi::http::outgoing_handler;
use crate::source::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme, http_error_code,
};
use crate::source::bindings::wasi::io::streams::StreamError;

/// 30 s per phase, as the reference client's overall timeout: long enough for a slow
/// GitHub, short enough that a hung call does not hold a worker's write-back.
const TIMEOUT_NANOS: u64 = 30_000_000_000;

/// Replies larger than this are refused when the request sets no limit, so a plugin's
/// memory stays bounded. The host caps replies too (4 MiB by default), usually first.
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// `blocking-write-and-flush` takes at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;

const READ_CHUNK: usize = 64 << 10;

pub(super) fn send(request: Request) -> Result<Response, HttpError> {
    let (scheme, authority, path) = split_url(&request.url)
        .ok_or_else(|| HttpError::new(format!("not an absolute URL: {}", request.url), false))?;
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
    let timeout = request.timeout.map_or(TIMEOUT_NANOS, |timeout| {
        u64::try_from(timeout.as_nanos()).unwrap_or(TIMEOUT_NANOS)
    });
    // A host that does not support a timeout says so; the call then has the host's own.
    let _ = options.set_connect_timeout(Some(timeout));
    let _ = options.set_first_byte_timeout(Some(timeout));
    let _ = options.set_between_bytes_timeout(Some(timeout));

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
    let (body, truncated) = read_body(&incoming, request.limit)?;
    // After a truncated read the rest of the body is abandoned: finishing drops it, and
    // the host closes the connection instead of streaming the remainder.
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body,
        truncated,
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

/// Reads the body, and whether it was cut: with a `limit`, up to one byte past it (to know
/// whether more follows) and no further; without one, whole up to the client's cap.
fn read_body(incoming: &IncomingBody, limit: Option<usize>) -> Result<(Vec<u8>, bool), HttpError> {
    let stream = incoming
        .stream()
        .map_err(|()| HttpError::new("the response body stream was already taken", false))?;
    let most = limit.unwrap_or(MAX_RESPONSE_BYTES);
    let mut body = Vec::new();
    loop {
        let wanted = most
            .saturating_add(1)
            .saturating_sub(body.len())
            .min(READ_CHUNK);
        match stream.blocking_read(wanted as u64) {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() > most {
                    if limit.is_none() {
                        return Err(HttpError::new(
                            format!("the response body is over {MAX_RESPONSE_BYTES} bytes"),
                            false,
                        ));
                    }
                    body.truncate(most);
                    return Ok((body, true));
                }
            }
            Err(StreamError::Closed) => return Ok((body, false)),
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
