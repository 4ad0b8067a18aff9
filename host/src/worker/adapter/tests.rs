//! Adapters end to end: a real adapter server between the daemon's [`WorkerClient`] and a
//! stand-in LLM server ([`super::standin`]), all on 127.0.0.1.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::standin::{Mode, OLLAMA_MODEL, OPENAI_MODEL, StandIn};
use super::*;
use crate::redact::Redactor;
use crate::worker::client::{Health, SendError, TaskRequest, WorkerClient, parse_result};

/// 30 s: keeps a broken test from hanging; no test waits for it to pass.
const PATIENCE: Duration = Duration::from_secs(30);

/// Planted API keys: neither matches a credential pattern, so only the adapter's literal
/// redaction can hide them.
const KEY: &str = "canary-openai-key-4f9d1c2e";
const WRONG_KEY: &str = "canary-wrong-key-77b3e0a5";

fn settings(kind: AdapterKind, upstream: &str, key: Option<&str>) -> AdapterSettings {
    AdapterSettings {
        kind,
        upstream: upstream.to_owned(),
        model: match kind {
            AdapterKind::Ollama => OLLAMA_MODEL,
            AdapterKind::OpenAi => OPENAI_MODEL,
        }
        .to_owned(),
        api_key: key.map(Secret::new),
    }
}

async fn adapter(kind: AdapterKind, upstream: &str, key: Option<&str>) -> RunningAdapter {
    start(settings(kind, upstream, key), PATIENCE)
        .await
        .expect("adapter starts")
}

fn client() -> WorkerClient {
    WorkerClient::new(Redactor::patterns_only())
}

fn task(prompt: &str) -> TaskRequest {
    TaskRequest {
        id: "task-1".to_owned(),
        prompt: prompt.to_owned(),
        context: serde_json::json!({}),
        traceparent: None,
    }
}

async fn send(
    endpoint: &str,
    key: &Secret,
    prompt: &str,
) -> Result<crate::worker::client::TaskReply, SendError> {
    client()
        .send_task(endpoint, Some(key.expose()), &task(prompt), PATIENCE)
        .await
}

/// The adapter's health, asked with its key, as the daemon asks.
async fn health(adapter: &RunningAdapter) -> Health {
    client()
        .health_with_key(&adapter.endpoint, Some(adapter.key.expose()), PATIENCE)
        .await
}

/// Log lines written while a test runs (on its own thread, as `#[tokio::test]` is single
/// threaded and the adapter's tasks run there too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn start(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

#[tokio::test]
async fn ollama_task_end_to_end() {
    let ollama = StandIn::ollama().await;
    let adapter = adapter(AdapterKind::Ollama, &ollama.url, None).await;
    assert!(adapter.endpoint.starts_with("http://127.0.0.1:"));
    assert_eq!(health(&adapter).await, Health::Healthy);

    let reply = send(&adapter.endpoint, &adapter.key, "hello")
        .await
        .expect("task succeeds");
    let result = parse_result(&reply.body).expect("result JSON");
    assert_eq!(result.output.as_deref(), Some("echo: hello"));
    let metadata = result.metadata.expect("metadata");
    assert_eq!(metadata["model"], OLLAMA_MODEL);
    assert_eq!(metadata["input_tokens"], 26);
    assert_eq!(metadata["output_tokens"], 282);
    assert_eq!(metadata["exit_code"], 0);
    assert!(metadata["duration_ms"].is_u64());
    assert_eq!(
        ollama.chats().await,
        vec![serde_json::json!({"model": OLLAMA_MODEL, "stream": false,
                                "messages": [{"role": "user", "content": "hello"}]})]
    );
    adapter.stop().await;
}

#[tokio::test]
async fn openai_task_sends_the_bearer_key() {
    let openai = StandIn::openai(KEY).await;
    let adapter = adapter(AdapterKind::OpenAi, &format!("{}/", openai.url), Some(KEY)).await;
    assert_eq!(health(&adapter).await, Health::Healthy);
    let reply = send(&adapter.endpoint, &adapter.key, "hi")
        .await
        .expect("task succeeds");
    let result = parse_result(&reply.body).expect("result JSON");
    assert_eq!(result.output.as_deref(), Some("echo: hi"));
    let metadata = result.metadata.expect("metadata");
    assert_eq!(
        (
            metadata["input_tokens"].as_u64(),
            metadata["output_tokens"].as_u64()
        ),
        (Some(9), Some(12))
    );
    assert_eq!(metadata["model"], OPENAI_MODEL);
    let bearer = Some(format!("Bearer {KEY}"));
    assert_eq!(openai.authorizations().await, vec![bearer.clone(), bearer]);
    assert_eq!(
        openai.chats().await,
        vec![
            serde_json::json!({"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}]})
        ]
    );
    adapter.stop().await;
}

#[tokio::test]
async fn a_rejected_key_stays_out_of_replies_errors_and_logs() {
    let logs = Captured::default();
    let _guard = logs.start();
    let openai = StandIn::openai(KEY).await;
    let adapter = adapter(AdapterKind::OpenAi, &openai.url, Some(WRONG_KEY)).await;

    let health = health(&adapter).await;
    assert_eq!(
        health,
        Health::Unhealthy("health check returned 503: upstream unavailable".to_owned())
    );
    let err = send(&adapter.endpoint, &adapter.key, "hi")
        .await
        .expect_err("task fails");
    assert!(
        matches!(
            err,
            SendError::Permanent {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        r#"worker returned 500: {"error":"task failed"}"#
    );

    // The upstream's own error, as the adapter produced it.
    let upstream = upstream::Upstream::new(
        &settings(AdapterKind::OpenAi, &openai.url, Some(WRONG_KEY)),
        &validate_upstream(&openai.url).await.expect("valid"),
        PATIENCE,
        Redactor::new([WRONG_KEY.to_owned()]),
    )
    .expect("client");
    let direct = upstream.chat("hi").await.expect_err("401").to_string();
    assert!(direct.starts_with("openai returned 401: "), "{direct}");
    assert!(
        direct.contains("Incorrect API key provided: [REDACTED]"),
        "{direct}"
    );

    let logs = logs.text();
    assert!(logs.contains("openai returned 401"), "{logs}");
    for text in [
        &logs,
        &direct,
        &format!("{health:?}"),
        &format!("{adapter:?}"),
    ] {
        assert!(!text.contains(WRONG_KEY), "key leaked into: {text}");
    }
    adapter.stop().await;
}

#[tokio::test]
async fn health_reports_an_unreachable_upstream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let gone = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let adapter = adapter(AdapterKind::Ollama, &gone, None).await;
    assert_eq!(
        health(&adapter).await,
        Health::Unhealthy("health check returned 503: upstream unavailable".to_owned())
    );
    let err = send(&adapter.endpoint, &adapter.key, "hello")
        .await
        .expect_err("task fails");
    assert!(
        matches!(
            err,
            SendError::Permanent {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    adapter.stop().await;
}

#[tokio::test]
async fn one_task_at_a_time() {
    let ollama = StandIn::ollama().await;
    ollama.set_mode(Mode::Hold).await;
    let adapter = adapter(AdapterKind::Ollama, &ollama.url, None).await;
    let (endpoint, key) = (adapter.endpoint.clone(), adapter.key.clone());
    let first = tokio::spawn(async move { send(&endpoint, &key, "first").await });
    ollama.held().await;

    assert_eq!(health(&adapter).await, Health::Busy);
    match send(&adapter.endpoint, &adapter.key, "second").await {
        Err(SendError::Transient { reason, .. }) => {
            assert_eq!(reason, r#"worker returned 429: {"error":"worker busy"}"#);
        }
        other => panic!("expected 429, got {other:?}"),
    }
    ollama.release();
    let reply = first.await.expect("join").expect("first task succeeds");
    assert_eq!(
        parse_result(&reply.body).and_then(|r| r.output).as_deref(),
        Some("echo: first")
    );
    assert_eq!(health(&adapter).await, Health::Healthy);
    adapter.stop().await;
}

#[tokio::test]
async fn upstream_failures_become_task_failed() {
    let logs = Captured::default();
    let _guard = logs.start();
    let ollama = StandIn::ollama().await;
    ollama.set_mode(Mode::Fail).await;
    let openai = StandIn::openai(KEY).await;
    openai.set_mode(Mode::RateLimited).await;
    for adapter in [
        adapter(AdapterKind::Ollama, &ollama.url, None).await,
        adapter(AdapterKind::OpenAi, &openai.url, Some(KEY)).await,
    ] {
        let err = send(&adapter.endpoint, &adapter.key, "hello")
            .await
            .expect_err("task fails");
        assert_eq!(
            err.to_string(),
            r#"worker returned 500: {"error":"task failed"}"#
        );
        adapter.stop().await;
    }
    let logs = logs.text();
    assert!(
        logs.contains("ollama returned 500: {\"error\":\"llama runner process"),
        "{logs}"
    );
    assert!(logs.contains("openai returned 429: "), "{logs}");
}

#[tokio::test]
async fn upstream_errors_quote_200_bytes() {
    let ollama = StandIn::ollama().await;
    let mut settings = settings(AdapterKind::Ollama, &ollama.url, None);
    settings.model = "m".repeat(300);
    let upstream = upstream::Upstream::new(
        &settings,
        &validate_upstream(&ollama.url).await.expect("valid"),
        PATIENCE,
        Redactor::patterns_only(),
    )
    .expect("client");
    let err = upstream
        .chat("hello")
        .await
        .expect_err("unknown model")
        .to_string();
    let quoted = err
        .strip_prefix("ollama returned 404: ")
        .expect("status and body");
    assert!(quoted.starts_with(r#"{"error":"model \"mmm"#), "{err}");
    assert_eq!(quoted.len(), 200);
}

#[tokio::test]
async fn bad_requests_get_400() {
    let ollama = StandIn::ollama().await;
    let adapter = adapter(AdapterKind::Ollama, &ollama.url, None).await;
    let http = reqwest::Client::new();
    let key = adapter.key.expose();
    for (body, expected) in [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "invalid JSON"),
        (r#"{"id": "t", "context": {}}"#, "missing prompt"),
        (r#"{"prompt": ""}"#, "missing prompt"),
        (r#"{"prompt": null}"#, "missing prompt"),
        (r#"{"prompt": "   "}"#, "missing prompt"),
    ] {
        let response = http
            .post(format!("{}/task", adapter.endpoint))
            .bearer_auth(key)
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.expect("body");
        assert_eq!(
            text,
            serde_json::json!({ "error": expected }).to_string(),
            "{body}"
        );
    }
    let response = http
        .get(format!("{}/nope", adapter.endpoint))
        .bearer_auth(key)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 404);
    assert!(ollama.chats().await.is_empty());
    adapter.stop().await;
}

/// Sends raw bytes on a fresh connection and returns everything the adapter answers before it
/// closes the connection.
async fn exchange_raw(endpoint: &str, request: &[u8]) -> String {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut reply = Vec::new();
    // A reset instead of a clean close also ends the exchange; what matters is that it ends.
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut reply))
        .await
        .expect("the adapter closed the connection");
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn a_declared_body_over_10_mib_gets_413() {
    let ollama = StandIn::ollama().await;
    let adapter = adapter(AdapterKind::Ollama, &ollama.url, None).await;
    let request = format!(
        "POST /task HTTP/1.1\r\nhost: adapter\r\ncontent-type: application/json\r\n\
         authorization: Bearer {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{{\"prompt\":",
        adapter.key.expose(),
        crate::worker::body::MAX_BODY_BYTES + 1
    );
    let reply = exchange_raw(&adapter.endpoint, request.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    adapter.stop().await;
}

fn quick(read: Duration, write: Duration, idle: Duration) -> ServerTimeouts {
    ServerTimeouts { read, write, idle }
}

async fn adapter_with(upstream: &str, timeouts: ServerTimeouts) -> RunningAdapter {
    start_with(
        settings(AdapterKind::Ollama, upstream, None),
        PATIENCE,
        timeouts,
    )
    .await
    .expect("adapter starts")
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    let ollama = StandIn::ollama().await;
    let short = Duration::from_millis(50);
    let adapter = adapter_with(&ollama.url, quick(short, PATIENCE, short)).await;
    // Silent after connecting: closed by the idle timeout, with nothing sent.
    assert_eq!(exchange_raw(&adapter.endpoint, b"").await, "");
    // Half a request head: closed by the read timeout.
    assert_eq!(
        exchange_raw(&adapter.endpoint, b"POST /task HTTP/1.1\r\nhost: a").await,
        ""
    );
    // A whole head, then half the body: the handler's read deadline answers 408.
    let head = format!(
        "POST /task HTTP/1.1\r\nhost: a\r\nauthorization: Bearer {}\r\n\
         content-length: 100\r\n\r\n{{\"prompt\"",
        adapter.key.expose()
    );
    let reply = exchange_raw(&adapter.endpoint, head.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    adapter.stop().await;
}

#[tokio::test]
async fn a_task_outlasting_read_and_idle_timeouts_still_answers() {
    let ollama = StandIn::ollama().await;
    ollama.set_mode(Mode::Hold).await;
    let short = Duration::from_millis(20);
    let adapter = adapter_with(&ollama.url, quick(short, PATIENCE, short)).await;
    let (endpoint, key) = (adapter.endpoint.clone(), adapter.key.clone());
    let running = tokio::spawn(async move { send(&endpoint, &key, "slow").await });
    ollama.held().await;
    // Several times both timeouts; how long exactly does not matter.
    tokio::time::sleep(short * 10).await;
    ollama.release();
    let reply = running.await.expect("join").expect("task answers");
    assert_eq!(
        parse_result(&reply.body).and_then(|r| r.output).as_deref(),
        Some("echo: slow")
    );
    adapter.stop().await;
}

#[tokio::test]
async fn a_task_past_the_write_deadline_gets_504() {
    let ollama = StandIn::ollama().await;
    ollama.set_mode(Mode::Hold).await;
    let adapter = adapter_with(
        &ollama.url,
        quick(PATIENCE, Duration::from_millis(50), PATIENCE),
    )
    .await;
    match send(&adapter.endpoint, &adapter.key, "never answered").await {
        Err(SendError::Transient { reason, .. }) => {
            assert_eq!(reason, r#"worker returned 504: {"error":"task timed out"}"#);
        }
        other => panic!("expected 504, got {other:?}"),
    }
    // The cut-off task released the single flight.
    assert_eq!(health(&adapter).await, Health::Healthy);
    adapter.stop().await;
}

#[tokio::test]
async fn stop_closes_the_endpoint() {
    let ollama = StandIn::ollama().await;
    let adapter = adapter(AdapterKind::Ollama, &ollama.url, None).await;
    let endpoint = adapter.endpoint.clone();
    assert_eq!(health(&adapter).await, Health::Healthy);
    adapter.stop().await;
    assert!(matches!(
        client().health(&endpoint, PATIENCE).await,
        Health::Unhealthy(_)
    ));
}

#[tokio::test]
async fn start_refuses_a_metadata_upstream() {
    let err = start(
        settings(AdapterKind::OpenAi, "http://169.254.169.254/v1", Some(KEY)),
        PATIENCE,
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, AdapterError::ForbiddenAddress { .. }));
    assert!(err.to_string().contains("169.254.169.254"));
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn requests_without_the_adapter_key_get_401_and_never_reach_the_upstream() {
    let ollama = StandIn::ollama().await;
    let adapter = adapter(AdapterKind::Ollama, &ollama.url, None).await;
    let other = adapter_with(&ollama.url, ServerTimeouts::DEFAULT).await;
    assert_ne!(adapter.key, other.key, "each adapter has its own key");
    assert_eq!(adapter.key.expose().len(), 2 * Secret::RANDOM_BYTES);
    let http = reqwest::Client::new();
    for authorization in [
        None,
        Some("Bearer ".to_owned()),
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {}", other.key.expose())),
        Some(format!("Basic {}", adapter.key.expose())),
        Some(format!("Bearer {}x", adapter.key.expose())),
    ] {
        for (method, path) in [("POST", "/task"), ("GET", "/health"), ("GET", "/nope")] {
            let mut request = http
                .request(
                    method.parse().expect("method"),
                    format!("{}{path}", adapter.endpoint),
                )
                .body(r#"{"prompt":"spend the key"}"#);
            if let Some(value) = &authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.expect("sent");
            assert_eq!(
                response.status(),
                401,
                "{method} {path} with {authorization:?}"
            );
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let text = response.text().await.expect("body");
            assert!(text.contains("missing or wrong adapter key"), "{text}");
            assert!(!text.contains(adapter.key.expose()));
        }
    }
    assert!(
        ollama.chats().await.is_empty(),
        "nothing reached the upstream"
    );
    assert_eq!(
        client().health(&adapter.endpoint, PATIENCE).await,
        Health::Unhealthy(
            r#"health check returned 401: {"error":"missing or wrong adapter key; adapters take tasks from their mecha daemon only"}"#
                .to_owned()
        )
    );
    // With the key, the same request is a task.
    let reply = send(&adapter.endpoint, &adapter.key, "hello")
        .await
        .expect("task succeeds");
    assert!(reply.body.contains("echo: hello"), "{}", reply.body);
    assert!(!format!("{adapter:?}").contains(adapter.key.expose()));
    adapter.stop().await;
    other.stop().await;
}
