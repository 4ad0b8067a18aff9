//! A live worker served by the tests on 127.0.0.1, speaking the worker contract (`GET /health`,
//! `POST /task`), that records what it receives and answers from a script.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::stand_in::{Running, spawn};

/// One scripted answer to `POST /task`.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 200 with this body.
    Ok(String),
    /// This status with a JSON error body.
    Status(u16),
    /// This status with this body.
    Refused { status: u16, body: String },
    /// 429 with `Retry-After: <seconds>`.
    Busy { retry_after: u32 },
    /// 200 with this body, after working for `after`.
    Slow {
        after: std::time::Duration,
        body: String,
    },
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Answer>,
    /// Answer once the script is used up.
    otherwise: Option<Answer>,
    received: Vec<serde_json::Value>,
    /// The `traceparent` header of each request, in order (`None` when absent).
    traceparents: Vec<Option<String>>,
}

/// A running test worker; stops when dropped.
pub struct TestWorker {
    pub endpoint: String,
    shared: Arc<Mutex<Shared>>,
    _running: Running,
}

impl TestWorker {
    /// A worker that answers every task with a result carrying `output`.
    pub async fn start(output: &str) -> TestWorker {
        let answer = Answer::Ok(serde_json::json!({ "output": output }).to_string());
        TestWorker::scripted(Vec::new(), answer).await
    }

    /// A worker that answers with `script` in order, then with `otherwise`.
    pub async fn scripted(script: Vec<Answer>, otherwise: Answer) -> TestWorker {
        TestWorker::on_port(0, script, otherwise).await
    }

    /// Like [`TestWorker::scripted`], on a given port (0: any free one).
    pub async fn on_port(port: u16, script: Vec<Answer>, otherwise: Answer) -> TestWorker {
        let shared = Arc::new(Mutex::new(Shared {
            script: script.into(),
            otherwise: Some(otherwise),
            ..Shared::default()
        }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("test worker binds");
        let port = listener.local_addr().expect("addr").port();
        let router = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/task", post(task))
            .with_state(shared.clone());
        TestWorker {
            endpoint: format!("http://127.0.0.1:{port}"),
            shared,
            _running: spawn(listener, router),
        }
    }

    /// The task requests received so far (`{"id","prompt","context"}`).
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.shared.lock().expect("lock").received.clone()
    }

    /// The W3C `traceparent` header of each task request received, in order.
    pub fn traceparents(&self) -> Vec<Option<String>> {
        self.shared.lock().expect("lock").traceparents.clone()
    }

    /// Waits until `count` tasks were received (up to 30 s).
    pub async fn wait_for(&self, count: usize) -> Vec<serde_json::Value> {
        for _ in 0..1500 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!(
            "worker received {} tasks, expected {count}",
            self.received().len()
        );
    }
}

async fn task(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let answer = {
        let mut shared = shared.lock().expect("lock");
        shared.traceparents.push(
            headers
                .get("traceparent")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        );
        shared
            .received
            .push(serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)));
        match shared.script.pop_front() {
            Some(answer) => answer,
            None => shared.otherwise.clone().unwrap_or(Answer::Status(500)),
        }
    };
    match answer {
        Answer::Ok(body) => (StatusCode::OK, body).into_response(),
        Answer::Slow { after, body } => {
            tokio::time::sleep(after).await;
            (StatusCode::OK, body).into_response()
        }
        Answer::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            format!("{{\"error\":\"scripted {code}\"}}"),
        )
            .into_response(),
        Answer::Refused { status, body } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
            .into_response(),
        Answer::Busy { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after.to_string())],
            "{\"error\":\"worker busy\"}",
        )
            .into_response(),
    }
}
