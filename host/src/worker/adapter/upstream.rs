//! The LLM server behind an adapter: its health check and one chat call, for Ollama's native API
//! and for OpenAI-compatible servers.
//!
//! Only what the worker contract needs is read from a reply (the text and the token counts).
//! Failures are described for the operator's log, with the upstream's own words quoted (short and
//! redacted); the worker contract's caller only ever sees "task failed".

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use super::address::ValidatedUpstream;
use super::{AdapterError, AdapterKind, AdapterSettings};
use crate::config::secrets::Secret;
use crate::redact::Redactor;
use crate::worker::body::{
    BodyError, MAX_BODY_BYTES, error_chain, read_capped, read_prefix, truncate,
};

/// 5 s: an upstream that cannot answer a health check this fast is not ready for tasks.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// 200 bytes of an upstream's error body are quoted in the log, as in the Go adapter: enough for
/// "model not found" or "invalid API key", not enough to flood the log.
const QUOTED_BODY_BYTES: usize = 200;

/// 4 KiB read for a 200-byte quote, so redaction sees whole tokens before the cut.
const ERROR_BODY_READ_BYTES: usize = 4096;

/// The text of a chat reply and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Completion {
    pub output: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// An upstream failure, already redacted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct UpstreamError(String);

/// One adapter's upstream: where it is, how to call it, and the key to call it with.
pub(super) struct Upstream {
    kind: AdapterKind,
    base: String,
    model: String,
    api_key: Option<Secret>,
    http: reqwest::Client,
    timeout: Duration,
    redactor: Redactor,
}

impl Upstream {
    /// An upstream client pinned to the validated addresses, following no redirects (a redirect
    /// could lead past the address check) and using no proxy.
    pub fn new(
        settings: &AdapterSettings,
        validated: &ValidatedUpstream,
        timeout: Duration,
        redactor: Redactor,
    ) -> Result<Upstream, AdapterError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        if let Some(domain) = &validated.domain {
            builder = builder.resolve_to_addrs(domain, &validated.addresses);
        }
        Ok(Upstream {
            kind: settings.kind,
            base: validated.base.clone(),
            model: settings.model.clone(),
            api_key: settings.api_key.clone(),
            http: builder.build().map_err(AdapterError::Client)?,
            timeout,
            redactor,
        })
    }

    /// The configured model, reported in every result's metadata.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether the upstream answers: Ollama's `GET /`, OpenAI's `GET /v1/models` (which also
    /// proves the key is accepted).
    pub async fn check(&self) -> Result<(), UpstreamError> {
        let request = match self.kind {
            AdapterKind::Ollama => self.http.get(format!("{}/", self.base)),
            AdapterKind::OpenAi => {
                self.authorized(self.http.get(format!("{}/v1/models", self.base)))
            }
        };
        let exchange = async {
            let mut response = request.send().await.map_err(|err| self.unreachable(&err))?;
            match response.status() {
                StatusCode::OK => Ok(()),
                status => Err(self.rejected(status, &mut response).await),
            }
        };
        tokio::time::timeout(HEALTH_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(self.fail(format!(
                    "{} did not answer within {HEALTH_TIMEOUT:?}",
                    self.kind
                )))
            })
    }

    /// One user message in, the model's reply out.
    pub async fn chat(&self, prompt: &str) -> Result<Completion, UpstreamError> {
        let messages = serde_json::json!([{ "role": "user", "content": prompt }]);
        let request = match self.kind {
            AdapterKind::Ollama => self.http.post(format!("{}/api/chat", self.base)).body(
                serde_json::json!({ "model": self.model, "messages": messages, "stream": false })
                    .to_string(),
            ),
            AdapterKind::OpenAi => self.authorized(
                self.http
                    .post(format!("{}/v1/chat/completions", self.base))
                    .body(
                        serde_json::json!({ "model": self.model, "messages": messages })
                            .to_string(),
                    ),
            ),
        }
        .header(reqwest::header::CONTENT_TYPE, "application/json");
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(self.fail(format!(
                "{} did not answer within {:?}",
                self.kind, self.timeout
            ))),
        }
    }

    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Completion, UpstreamError> {
        let mut response = request.send().await.map_err(|err| self.unreachable(&err))?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(self.rejected(status, &mut response).await);
        }
        let body = read_capped(&mut response, MAX_BODY_BYTES)
            .await
            .map_err(|err| match err {
                BodyError::TooLarge => self.fail(format!(
                    "{} reply is larger than the {MAX_BODY_BYTES} byte limit",
                    self.kind
                )),
                BodyError::Read(err) => self.unreachable(&err),
            })?;
        let parsed = match self.kind {
            AdapterKind::Ollama => serde_json::from_slice::<OllamaChat>(&body)
                .map(Completion::from)
                .map_err(|err| err.to_string()),
            AdapterKind::OpenAi => serde_json::from_slice::<OpenAiChat>(&body)
                .map_err(|err| err.to_string())
                .and_then(|reply| {
                    reply
                        .into_completion()
                        .ok_or_else(|| "no choices".to_owned())
                }),
        };
        parsed
            .map_err(|err| self.fail(format!("{} reply is not a chat response: {err}", self.kind)))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> UpstreamError {
        self.fail(format!("{} unreachable: {}", self.kind, error_chain(error)))
    }

    /// `<kind> returned <code>: <up to 200 bytes of the body>`.
    async fn rejected(
        &self,
        status: StatusCode,
        response: &mut reqwest::Response,
    ) -> UpstreamError {
        let body = read_prefix(response, ERROR_BODY_READ_BYTES).await;
        let body = String::from_utf8_lossy(&body);
        let body = self.redactor.redact(body.trim());
        UpstreamError(format!(
            "{} returned {}: {}",
            self.kind,
            status.as_u16(),
            truncate(&body, QUOTED_BODY_BYTES)
        ))
    }

    fn fail(&self, message: String) -> UpstreamError {
        UpstreamError(self.redactor.redact(&message).into_owned())
    }
}

/// Ollama's `/api/chat` reply with `"stream": false`.
#[derive(Deserialize)]
struct OllamaChat {
    message: ChatMessage,
    #[serde(default)]
    prompt_eval_count: u64,
    #[serde(default)]
    eval_count: u64,
}

#[derive(Deserialize)]
struct ChatMessage {
    /// `null` when an OpenAI model answers with a refusal or tool calls only.
    #[serde(default)]
    content: Option<String>,
}

impl From<OllamaChat> for Completion {
    fn from(reply: OllamaChat) -> Completion {
        Completion {
            output: reply.message.content.unwrap_or_default(),
            input_tokens: reply.prompt_eval_count,
            output_tokens: reply.eval_count,
        }
    }
}

/// OpenAI's `/v1/chat/completions` reply; the first choice is the answer.
#[derive(Deserialize)]
struct OpenAiChat {
    choices: Vec<OpenAiChoice>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiChoice {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl OpenAiChat {
    /// `None` when the reply holds no choice at all.
    fn into_completion(self) -> Option<Completion> {
        let choice = self.choices.into_iter().next()?;
        let (input_tokens, output_tokens) = self.usage.map_or((0, 0), |usage| {
            (usage.prompt_tokens, usage.completion_tokens)
        });
        Some(Completion {
            output: choice.message.content.unwrap_or_default(),
            input_tokens,
            output_tokens,
        })
    }
}
