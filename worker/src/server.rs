//! The worker contract over HTTP: `GET /health` and `POST /task` (reference section 3).
//!
//! Handlers check the request and hand the task to the backend. The checks run in this order:
//! the API key (every path but `/health`), the body (411, 413, 400), then the single flight
//! (429). So a malformed request is told what is wrong even while a task runs, and a slow upload
//! does not hold the worker busy. Every error body is `{"error": "..."}`; a failed task is a 500,
//! never a 200, because mecha writes a 200 back to GitHub as the agent's answer.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::backend::{self, Backend};
use crate::config::Config;
use crate::result::{RunFacts, add_run_facts};
use crate::task::{self, Task};

/// 5 seconds: a task takes minutes, so mecha's retry need not come back sooner.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Clone)]
struct WorkerState {
    config: Arc<Config>,
    /// One permit: the single flight.
    flight: Arc<Semaphore>,
}

/// Serves the contract on `listener` until `shutdown` completes, then stops accepting and lets a
/// running task finish.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let program = match &config.backend {
        Backend::Command(command) => Some(command.program.display().to_string()),
        Backend::Echo => None,
    };
    tracing::info!(
        %address,
        backend = config.backend.name(),
        program,
        auth = if config.api_key.is_some() { "on" } else { "off" },
        timeout_ms = u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX),
        dry_run = config.dry_run,
        "mecha-worker listening"
    );
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

fn router(config: Config) -> Router {
    let state = WorkerState {
        config: Arc::new(config),
        flight: Arc::new(Semaphore::new(1)),
    };
    Router::new()
        .route("/health", get(health))
        .route("/task", post(task))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// Refuses a request without the API key, when one is set; `/health` is open so Docker and mecha
/// can probe a worker without it.
async fn authenticate(State(state): State<WorkerState>, request: Request, next: Next) -> Response {
    match &state.config.api_key {
        Some(key) if request.uri().path() != "/health" && !key.admits(request.headers()) => {
            error(StatusCode::UNAUTHORIZED, "unauthorized")
        }
        _ => next.run(request).await,
    }
}

async fn health(State(state): State<WorkerState>) -> Response {
    if state.flight.available_permits() == 0 {
        (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}

async fn task(State(state): State<WorkerState>, headers: HeaderMap, body: Body) -> Response {
    let config = &state.config;
    let task = match task::read(&headers, body, config.max_body_bytes).await {
        Ok(task) => task,
        Err(rejection) => return error(rejection.status(), &rejection.to_string()),
    };
    if config.dry_run {
        return Json(json!({
            "dry_run": true,
            "backend": config.backend.name(),
            "prompt": task.prompt,
        }))
        .into_response();
    }
    let Ok(_flight) = state.flight.clone().try_acquire_owned() else {
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "worker busy");
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        return response;
    };
    run(config, &task).await
}

/// Runs a task while the caller holds the single flight, and logs one line about it: never the
/// prompt, the context or the agent's words, which may hold anything.
async fn run(config: &Config, task: &Task) -> Response {
    let started = Instant::now();
    let mut abandoned = Abandoned {
        task,
        started,
        armed: true,
    };
    let outcome = config.backend.run(task, config.timeout).await;
    abandoned.armed = false;
    let duration = started.elapsed();
    let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(mut result) => {
            add_run_facts(
                &mut result,
                &RunFacts {
                    duration,
                    exit_code: 0,
                    backend: config.backend.name(),
                },
            );
            tracing::info!(
                task = ?task.id,
                prompt_bytes = task.prompt.len(),
                outcome = "ok",
                duration_ms,
                exit_code = 0,
                "task finished"
            );
            Json(Value::Object(result)).into_response()
        }
        Err(err) => {
            let detail = match &err {
                backend::Error::Reported { .. } => None,
                _ => Some(err.to_string()),
            };
            tracing::warn!(
                task = ?task.id,
                prompt_bytes = task.prompt.len(),
                outcome = err.outcome(),
                error = detail,
                duration_ms,
                exit_code = err.exit_code(),
                "task failed"
            );
            let mut body = json!({ "error": err.to_string() });
            if let Some(stderr) = err.stderr().filter(|stderr| !stderr.is_empty()) {
                body["stderr"] = Value::from(stderr);
            }
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

/// The log line for a task dropped before it finished: the caller hung up, the server dropped the
/// request, and with it the backend's run (which kills the agent's process group).
struct Abandoned<'a> {
    task: &'a Task,
    started: Instant,
    armed: bool,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if self.armed {
            tracing::warn!(
                task = ?self.task.id,
                prompt_bytes = self.task.prompt.len(),
                outcome = "abandoned",
                duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "task abandoned: the caller hung up"
            );
        }
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
