//! The daemon's side of the worker contract (reference section 3): `GET /health` and `POST
//! /task` against any worker endpoint, managed, adapter or live.
//!
//! This module sends and classifies; it does not decide. A failed send comes back as
//! [`SendError::Transient`] (worth retrying: the worker was unreachable, slow or said so) or
//! [`SendError::Permanent`] (retrying would get the same answer), and the dispatch step chooses
//! between backoff and failure. Unlike the Go mecha, a worker's 429 is transient: it is the
//! worker's own single-flight guard saying "not now".
//!
//! Worker replies are untrusted text: every quoted body is cut short and passed through the
//! [`Redactor`] before it can reach an error, a log or the database. So is every message that
//! names the endpoint, which may carry credentials (`http://user:pass@host`): the redactor hides
//! a URL's user part.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};

use super::body::{BodyError, MAX_BODY_BYTES, error_chain, read_capped, read_prefix, truncate};
use super::retry_after::parse_retry_after;
use crate::net::address::{Reach, Refusal};
use crate::net::resolve::{ResolveError, Resolver, check_url_literal};
use crate::redact::Redactor;

pub use super::result::{Comment, Commit, Labels, Status, StatusState, WorkerResult, parse_result};

/// 512 bytes: enough of an error body to see what the worker complained about, short enough to
/// keep task errors readable and audit rows small.
const QUOTED_BODY_BYTES: usize = 512;

/// 4 KiB read for a 512-byte quote: redaction runs on the longer text, so a secret that starts
/// inside the quote is recognised whole before the cut.
const ERROR_BODY_READ_BYTES: usize = 4096;

/// A client for worker endpoints. One connection pool shared by every clone.
#[derive(Clone, Debug)]
pub struct WorkerClient {
    http: reqwest::Client,
    redactor: Redactor,
}

/// What a worker's `GET /health` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// 200: ready for a task.
    Healthy,
    /// 503 `busy`: alive, running a task.
    Busy,
    /// Anything else, with the reason (redacted).
    Unhealthy(String),
}

/// The body of `POST /task`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    /// The task id, so the worker can correlate its logs with mecha's.
    pub id: String,
    pub prompt: String,
    /// Facts about the event (`source`, `actor`, `subject`, attrs); `{}` for API tasks.
    pub context: serde_json::Value,
    /// The W3C `traceparent` of the task's try ([`crate::trace::traceparent`]), sent as that header, not in the
    /// body: a worker's own tracing joins the event's trace with it.
    #[serde(skip)]
    pub traceparent: Option<String>,
}

/// A worker's `200` reply. Parse the body with [`parse_result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReply {
    pub status: u16,
    pub body: String,
}

/// Why a task could not be handed to a worker.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the worker was unreachable, timed out, or answered 429, 502, 503 or 504.
    #[error("{reason}")]
    Transient {
        reason: String,
        /// How long the worker asked mecha to wait, capped at one hour.
        retry_after: Option<Duration>,
        /// The worker itself looks down (no connection, no answer in time, 502 or 504 from a
        /// proxy in front of it), as opposed to alive and saying "not now" (429, 503).
        worker_down: bool,
    },
    /// Retrying would not help: the worker rejected the task or its reply is unusable.
    #[error("{reason}")]
    Permanent { status: Option<u16>, reason: String },
}

impl WorkerClient {
    /// A client that quotes worker replies through `redactor`. It follows no redirects and uses
    /// no proxy from the environment: a task and its bearer key go to the configured endpoint and
    /// nowhere else. Endpoints may be on loopback or the operator's networks, never on a
    /// metadata or link-local address ([`crate::net::address`]); a name is checked on the very
    /// answer the connection uses, so a DNS answer that changes cannot slip past.
    pub fn new(redactor: Redactor) -> WorkerClient {
        WorkerClient::resolving_with(redactor, Resolver::system())
    }

    /// [`WorkerClient::new`], looking names up with `resolver`.
    pub fn resolving_with(redactor: Redactor, resolver: Resolver) -> WorkerClient {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(resolver.for_reqwest(ENDPOINT_REACH))
            .build()
            // Building fails only for TLS or proxy settings, and this client has neither.
            .expect("a plain HTTP client builds");
        WorkerClient { http, redactor }
    }

    /// `GET {endpoint}/health` within `timeout`.
    pub async fn health(&self, endpoint: &str, timeout: Duration) -> Health {
        self.health_with_key(endpoint, None, timeout).await
    }

    /// `GET {endpoint}/health` within `timeout`, with `api_key` as `Authorization: Bearer` (an
    /// adapter answers nothing, its health included, without its key).
    pub async fn health_with_key(
        &self,
        endpoint: &str,
        api_key: Option<&str>,
        timeout: Duration,
    ) -> Health {
        if let Err(refusal) = check_literal(endpoint) {
            return Health::Unhealthy(
                self.clean(&format!("health check of {endpoint} refused: {refusal}")),
            );
        }
        let url = format!("{}/health", endpoint.trim_end_matches('/'));
        let mut request = self.http.get(&url);
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        let exchange = async {
            let mut response = request.send().await?;
            let status = response.status();
            let body = read_prefix(&mut response, ERROR_BODY_READ_BYTES).await;
            Ok::<_, reqwest::Error>((status, body))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => Health::Unhealthy(self.clean(&format!(
                "health check of {endpoint} timed out after {timeout:?}"
            ))),
            Ok(Err(err)) => Health::Unhealthy(self.clean(&format!(
                "health check of {endpoint} failed: {}",
                error_chain(&err)
            ))),
            Ok(Ok((StatusCode::OK, _))) => Health::Healthy,
            Ok(Ok((StatusCode::SERVICE_UNAVAILABLE, body)))
                if String::from_utf8_lossy(&body).trim() == "busy" =>
            {
                Health::Busy
            }
            Ok(Ok((status, body))) => {
                Health::Unhealthy(self.quote("health check returned", status, &body))
            }
        }
    }

    /// Whether anything answers HTTP at `url` within `timeout`, whatever the status. For checks
    /// of servers that do not speak the worker contract, such as an adapter's upstream.
    pub async fn reachable(&self, url: &str, timeout: Duration) -> bool {
        if check_literal(url).is_err() {
            return false;
        }
        matches!(
            tokio::time::timeout(timeout, self.http.get(url).send()).await,
            Ok(Ok(_))
        )
    }

    /// `POST {endpoint}/task` with `request`, all within `timeout` (connecting, sending and
    /// reading the reply). `api_key` is sent as `Authorization: Bearer <key>`.
    pub async fn send_task(
        &self,
        endpoint: &str,
        api_key: Option<&str>,
        request: &TaskRequest,
        timeout: Duration,
    ) -> Result<TaskReply, SendError> {
        if let Err(refusal) = check_literal(endpoint) {
            return Err(SendError::Permanent {
                status: None,
                reason: self.clean(&format!(
                    "worker endpoint {endpoint} refused: {refusal}; point the worker's endpoint \
                     at the worker itself"
                )),
            });
        }
        let body = serde_json::to_vec(request).map_err(|err| SendError::Permanent {
            status: None,
            reason: format!("could not encode the task as JSON: {err}"),
        })?;
        let url = format!("{}/task", endpoint.trim_end_matches('/'));
        let mut builder = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = api_key {
            // Marks the header sensitive, so that it is never printed by the HTTP stack either.
            builder = builder.bearer_auth(key);
        }
        if let Some(traceparent) = &request.traceparent {
            builder = builder.header("traceparent", traceparent);
        }
        match tokio::time::timeout(timeout, self.exchange(builder)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Transient {
                reason: self.clean(&format!(
                    "worker at {endpoint} did not answer within {timeout:?}"
                )),
                retry_after: None,
                worker_down: true,
            }),
        }
    }

    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<TaskReply, SendError> {
        let mut response = request
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        if status == StatusCode::OK {
            return match read_capped(&mut response, MAX_BODY_BYTES).await {
                Ok(body) => Ok(TaskReply {
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                }),
                Err(BodyError::TooLarge) => Err(SendError::Permanent {
                    status: Some(status.as_u16()),
                    reason: format!(
                        "worker reply is larger than the {MAX_BODY_BYTES} byte limit; \
                         have the worker return less (put large output in a commit)"
                    ),
                }),
                Err(BodyError::Read(err)) => Err(self.transport_error(&err)),
            };
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let body = read_prefix(&mut response, ERROR_BODY_READ_BYTES).await;
        let reason = self.quote("worker returned", status, &body);
        if is_transient_status(status) {
            Err(SendError::Transient {
                reason,
                retry_after,
                worker_down: !matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ),
            })
        } else {
            Err(SendError::Permanent {
                status: Some(status.as_u16()),
                reason,
            })
        }
    }

    /// A failure below HTTP. Only a request that could not even be built (a malformed endpoint)
    /// is permanent; refused, reset, unresolvable and timed-out connections are all transient.
    fn transport_error(&self, error: &reqwest::Error) -> SendError {
        let reason = self.clean(&error_chain(error));
        if refusal_in(error).is_some() {
            // The endpoint's name resolves to an address mecha never connects to: retrying
            // would get the same answer, or worse, a rebinding attacker's next one.
            return SendError::Permanent {
                status: None,
                reason: format!("{reason}; point the worker's endpoint at the worker itself"),
            };
        }
        if error.is_builder() {
            SendError::Permanent {
                status: None,
                reason,
            }
        } else {
            SendError::Transient {
                reason,
                retry_after: None,
                worker_down: true,
            }
        }
    }

    /// `<what> <code>: <body>`, the body redacted and cut to 512 bytes.
    fn quote(&self, what: &str, status: StatusCode, body: &[u8]) -> String {
        let body = String::from_utf8_lossy(body);
        let body = self.redactor.redact(body.trim());
        format!(
            "{what} {}: {}",
            status.as_u16(),
            truncate(&body, QUOTED_BODY_BYTES)
        )
    }

    fn clean(&self, text: &str) -> String {
        self.redactor.redact(text).into_owned()
    }
}

/// Where worker endpoints may be: anywhere the operator runs them (loopback and private
/// networks included), but never on a metadata or link-local address.
const ENDPOINT_REACH: Reach = Reach::Internal;

/// Refuses an endpoint whose host is an IP literal mecha never connects to.
fn check_literal(endpoint: &str) -> Result<(), Refusal> {
    check_url_literal(endpoint, ENDPOINT_REACH)
}

/// The address refusal behind a failed request, if the resolver refused the endpoint's name.
fn refusal_in(error: &reqwest::Error) -> Option<&ResolveError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(resolve) = cause
            .downcast_ref::<ResolveError>()
            .filter(|resolve| resolve.refusal().is_some())
        {
            return Some(resolve);
        }
        source = cause.source();
    }
    None
}

/// 429 (the worker's single flight is taken), 502, 503 and 504 (the worker or a proxy in front of
/// it is restarting or overloaded).
fn is_transient_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

#[cfg(test)]
mod tests;
