//! Stand-ins for a real Ollama server and a real OpenAI API, for the adapter tests.
//!
//! They are not the real servers: they serve the same routes with the same JSON shapes, status
//! codes and error bodies as the real ones (Ollama 0.x `/` and `/api/chat`; OpenAI `/v1/models`
//! and `/v1/chat/completions`, including its 401 `invalid_request_error` and its 429 with
//! `Retry-After`), and they record what they were sent. One difference is deliberate: the real
//! OpenAI masks a wrong key in its 401 message, the stand-in echoes it whole, as some compatible
//! servers do, to prove the adapter keeps it out of its logs anyway.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

/// The model both stand-ins serve.
pub const OLLAMA_MODEL: &str = "llama3.2";
pub const OPENAI_MODEL: &str = "gpt-4o-mini";

/// What the next chat call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Answer,
    /// Wait for [`StandIn::release`] before answering.
    Hold,
    /// The server's own failure: 500 with its error body.
    Fail,
    /// OpenAI's rate limit: 429 with `Retry-After`.
    RateLimited,
}

/// A running stand-in and what it has seen.
pub struct StandIn {
    pub url: String,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    mode: Mutex<Mode>,
    /// The key an OpenAI stand-in accepts.
    key: Option<String>,
    /// `Authorization` headers of every request, in order (`None` when absent).
    authorizations: Mutex<Vec<Option<String>>>,
    /// Bodies of chat requests.
    chats: Mutex<Vec<Value>>,
    /// Signalled when a held chat call has arrived.
    held: Notify,
    release: Notify,
}

impl StandIn {
    pub async fn ollama() -> StandIn {
        let router = Router::new()
            .route("/", get(|| async { "Ollama is running" }))
            .route("/api/chat", post(ollama_chat));
        StandIn::serve(router, Shared::default()).await
    }

    pub async fn openai(key: &str) -> StandIn {
        let router = Router::new()
            .route("/v1/models", get(openai_models))
            .route("/v1/chat/completions", post(openai_chat));
        let shared = Shared {
            key: Some(key.to_owned()),
            ..Shared::default()
        };
        StandIn::serve(router, shared).await
    }

    async fn serve(router: Router<Arc<Shared>>, shared: Shared) -> StandIn {
        let shared = Arc::new(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let app = router.with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        StandIn { url, shared }
    }

    pub async fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().await = mode;
    }

    /// Waits until a chat call is being held.
    pub async fn held(&self) {
        self.shared.held.notified().await;
    }

    /// Lets a held chat call answer.
    pub fn release(&self) {
        self.shared.release.notify_one();
    }

    pub async fn authorizations(&self) -> Vec<Option<String>> {
        self.shared.authorizations.lock().await.clone()
    }

    pub async fn chats(&self) -> Vec<Value> {
        self.shared.chats.lock().await.clone()
    }
}

async fn record(shared: &Shared, headers: &HeaderMap) {
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    shared.authorizations.lock().await.push(authorization);
}

/// Waits for the mode's effect; `Some` is the reply when the mode replaces the answer.
async fn apply_mode(shared: &Shared, failure: Response) -> Option<Response> {
    let mode = *shared.mode.lock().await;
    match mode {
        Mode::Answer => None,
        Mode::Hold => {
            shared.held.notify_one();
            shared.release.notified().await;
            None
        }
        Mode::Fail => Some(failure),
        Mode::RateLimited => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "20")],
                axum::Json(json!({"error": {
                    "message": "Rate limit reached for gpt-4o-mini in organization org-standin on \
                                requests per min (RPM): Limit 3, Used 3, Requested 1. \
                                Please try again in 20s.",
                    "type": "requests", "param": null, "code": "rate_limit_exceeded"}})),
            )
                .into_response(),
        ),
    }
}

async fn ollama_chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    record(&shared, &headers).await;
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid character 'x' looking for beginning of value"})),
        )
            .into_response();
    };
    shared.chats.lock().await.push(request.clone());
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    if model != OLLAMA_MODEL {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"error": format!("model \"{model}\" not found, try pulling it first")}),
            ),
        )
            .into_response();
    }
    let failure = (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"error": "llama runner process has terminated: exit status 2"})),
    )
        .into_response();
    if let Some(reply) = apply_mode(&shared, failure).await {
        return reply;
    }
    let prompt = request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    axum::Json(json!({
        "model": OLLAMA_MODEL,
        "created_at": "2024-07-22T20:33:28.123648Z",
        "message": {"role": "assistant", "content": format!("echo: {prompt}")},
        "done_reason": "stop",
        "done": true,
        "total_duration": 4_883_583_458_u64,
        "load_duration": 1_334_875,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342_546_000,
        "eval_count": 282,
        "eval_duration": 4_535_599_000_u64,
    }))
    .into_response()
}

/// OpenAI's answer to a missing or wrong key, or `None` when the key is right.
fn openai_unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let message = match presented {
        None => "You didn't provide an API key. You need to provide your API key in an \
                 Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            .to_owned(),
        Some(key) if Some(key) == shared.key.as_deref() => return None,
        Some(key) => format!(
            "Incorrect API key provided: {key}. You can find your API key at \
             https://platform.openai.com/account/api-keys."
        ),
    };
    Some(
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"error": {"message": message, "type": "invalid_request_error",
                                        "param": null, "code": "invalid_api_key"}}),
            ),
        )
            .into_response(),
    )
}

async fn openai_models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    record(&shared, &headers).await;
    if let Some(refusal) = openai_unauthorized(&shared, &headers) {
        return refusal;
    }
    axum::Json(json!({"object": "list", "data": [
        {"id": OPENAI_MODEL, "object": "model", "created": 1_721_172_741, "owned_by": "system"}
    ]}))
    .into_response()
}

async fn openai_chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    record(&shared, &headers).await;
    if let Some(refusal) = openai_unauthorized(&shared, &headers) {
        return refusal;
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "We could not parse the JSON body of your request.",
                                        "type": "invalid_request_error", "param": null, "code": null}})),
        )
            .into_response();
    };
    shared.chats.lock().await.push(request.clone());
    let failure = (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(
            json!({"error": {"message": "The server had an error while processing your \
                                                request. Sorry about that!",
                                    "type": "server_error", "param": null, "code": null}}),
        ),
    )
        .into_response();
    if let Some(reply) = apply_mode(&shared, failure).await {
        return reply;
    }
    let prompt = request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    axum::Json(json!({
        "id": "chatcmpl-standin0001",
        "object": "chat.completion",
        "created": 1_721_172_741,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": format!("echo: {prompt}"), "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
        "system_fingerprint": "fp_standin"
    }))
    .into_response()
}
