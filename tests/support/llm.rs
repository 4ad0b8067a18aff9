//! Local stand-ins for an Ollama server and an OpenAI-compatible server: the routes, JSON
//! shapes, status codes and error bodies that mecha's adapters use, served on 127.0.0.1 because
//! the real services cannot run here.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::stand_in::{Running, spawn};

#[derive(Default)]
struct Seen {
    requests: Vec<Value>,
    authorization: Vec<Option<String>>,
}

struct Config {
    reply: String,
    api_key: Option<String>,
    seen: Mutex<Seen>,
}

/// A running stand-in; stops when dropped.
pub struct LlmServer {
    pub url: String,
    config: Arc<Config>,
    _running: Running,
}

impl LlmServer {
    /// An Ollama stand-in answering every chat with `reply`.
    pub async fn ollama(reply: &str) -> LlmServer {
        let router = Router::new()
            .route("/", get(|| async { "Ollama is running" }))
            .route("/api/chat", post(ollama_chat));
        LlmServer::serve(router, reply, None).await
    }

    /// An OpenAI stand-in answering every chat with `reply`, requiring `Bearer <api_key>`.
    pub async fn openai(reply: &str, api_key: &str) -> LlmServer {
        let router = Router::new()
            .route("/v1/models", get(openai_models))
            .route("/v1/chat/completions", post(openai_chat));
        LlmServer::serve(router, reply, Some(api_key.to_owned())).await
    }

    async fn serve(router: Router<Arc<Config>>, reply: &str, api_key: Option<String>) -> LlmServer {
        let config = Arc::new(Config {
            reply: reply.to_owned(),
            api_key,
            seen: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let router = router.with_state(config.clone());
        LlmServer {
            url,
            config,
            _running: spawn(listener, router),
        }
    }

    /// The chat requests received.
    pub fn requests(&self) -> Vec<Value> {
        self.config.seen.lock().expect("lock").requests.clone()
    }

    /// The Authorization headers of the chat requests.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.config.seen.lock().expect("lock").authorization.clone()
    }
}

fn record(config: &Config, headers: &HeaderMap, body: &str) -> Value {
    let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut seen = config.seen.lock().expect("lock");
    seen.requests.push(request.clone());
    seen.authorization.push(
        headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    );
    request
}

async fn ollama_chat(
    State(config): State<Arc<Config>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = record(&config, &headers, &body);
    if request["stream"] != json!(false) {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":"stream must be false for this stand-in"}"#,
        )
            .into_response();
    }
    let reply = json!({
        "model": request["model"],
        "created_at": "2026-11-24T00:00:00Z",
        "message": { "role": "assistant", "content": config.reply },
        "done": true,
        "prompt_eval_count": 11,
        "eval_count": 7
    });
    (StatusCode::OK, reply.to_string()).into_response()
}

/// OpenAI's answer to a missing or wrong key.
fn unauthorized() -> Response {
    let body = json!({
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_api_key"
        }
    });
    (StatusCode::UNAUTHORIZED, body.to_string()).into_response()
}

fn authorized(config: &Config, headers: &HeaderMap) -> bool {
    let presented = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    match &config.api_key {
        Some(key) => presented == Some(format!("Bearer {key}").as_str()),
        None => true,
    }
}

async fn openai_models(State(config): State<Arc<Config>>, headers: HeaderMap) -> Response {
    if !authorized(&config, &headers) {
        return unauthorized();
    }
    let body = json!({ "object": "list", "data": [{ "id": "gpt-test", "object": "model", "owned_by": "test" }] });
    (StatusCode::OK, body.to_string()).into_response()
}

async fn openai_chat(
    State(config): State<Arc<Config>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = record(&config, &headers, &body);
    if !authorized(&config, &headers) {
        return unauthorized();
    }
    let reply = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": request["model"],
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": config.reply },
            "finish_reason": "stop"
        }],
        "usage": { "prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18 }
    });
    (StatusCode::OK, reply.to_string()).into_response()
}
