//! The worker client against stand-in workers on 127.0.0.1: the contract as sent, and how
//! every kind of failure is classified.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as Code};
use axum::routing::{get, post};
use reqwest::header::AUTHORIZATION;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use super::*;

/// 30 s: only keeps a broken test from hanging; no test waits for it.
const PATIENCE: Duration = Duration::from_secs(30);

/// Serves `router` on 127.0.0.1 and returns its endpoint. Each test's stand-in worker
/// answers the way a worker of the contract would, plus the failure under test.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    endpoint
}

/// A worker that answers every task with `status`, `headers` and `body`.
async fn worker(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: String,
) -> String {
    let reply = move || {
        let body = body.clone();
        async move {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.insert(*name, value.parse().expect("header"));
            }
            (Code::from_u16(status).expect("status"), map, body)
        }
    };
    serve(
        Router::new()
            .route("/task", post(reply.clone()))
            .route("/health", get(reply)),
    )
    .await
}

fn client() -> WorkerClient {
    WorkerClient::new(Redactor::new(["canary-secret-value".to_owned()]))
}

fn request() -> TaskRequest {
    TaskRequest {
        id: "task-1".to_owned(),
        prompt: "review this".to_owned(),
        context: serde_json::json!({"source": "github", "number": 7}),
        traceparent: None,
    }
}

async fn send(endpoint: &str) -> Result<TaskReply, SendError> {
    client()
        .send_task(endpoint, None, &request(), PATIENCE)
        .await
}

/// An address nothing listens on: bound, then released.
async fn closed_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    endpoint
}

#[tokio::test]
async fn posts_the_contract_with_bearer_key() {
    let seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let record = seen.clone();
    let endpoint = serve(Router::new().route(
        "/task",
        post(move |headers: HeaderMap, body: Bytes| async move {
            record.lock().await.push((headers, body));
            r#"{"output":"done"}"#
        }),
    ))
    .await;
    let client = client();
    let reply = client
        .send_task(
            &format!("{endpoint}/"),
            Some("worker-key-123"),
            &request(),
            PATIENCE,
        )
        .await
        .expect("sent");
    assert_eq!(
        reply,
        TaskReply {
            status: 200,
            body: r#"{"output":"done"}"#.to_owned()
        }
    );
    assert_eq!(
        parse_result(&reply.body).and_then(|r| r.output).as_deref(),
        Some("done")
    );
    client
        .send_task(&endpoint, None, &request(), PATIENCE)
        .await
        .expect("sent");

    let seen = seen.lock().await;
    let (headers, body) = &seen[0];
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert_eq!(headers[AUTHORIZATION], "Bearer worker-key-123");
    let body: serde_json::Value = serde_json::from_slice(body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"id": "task-1", "prompt": "review this",
                           "context": {"source": "github", "number": 7}})
    );
    assert!(seen[1].0.get(AUTHORIZATION).is_none());
}

#[tokio::test]
async fn connection_refused_is_transient() {
    match send(&closed_endpoint().await).await {
        Err(SendError::Transient {
            reason,
            retry_after: None,
            worker_down: true,
        }) => {
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("expected transient, got {other:?}"),
    }
}

#[tokio::test]
async fn unresolvable_host_is_transient_and_malformed_endpoint_permanent() {
    let result = send("http://no-such-worker.invalid").await;
    assert!(
        matches!(result, Err(SendError::Transient { .. })),
        "{result:?}"
    );
    let result = send("not a url").await;
    assert!(
        matches!(result, Err(SendError::Permanent { status: None, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn busy_429_is_transient_with_retry_after_seconds() {
    let endpoint = worker(
        429,
        &[("retry-after", "7")],
        r#"{"error":"worker busy"}"#.to_owned(),
    )
    .await;
    match send(&endpoint).await {
        Err(SendError::Transient {
            reason,
            retry_after,
            worker_down: false,
        }) => {
            assert_eq!(reason, r#"worker returned 429: {"error":"worker busy"}"#);
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("expected transient, got {other:?}"),
    }
}

#[tokio::test]
async fn retry_after_date_is_parsed_and_capped() {
    let endpoint = worker(
        503,
        &[("retry-after", "Fri, 01 Jan 2100 00:00:00 GMT")],
        "busy".to_owned(),
    )
    .await;
    match send(&endpoint).await {
        Err(SendError::Transient { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3600)));
        }
        other => panic!("expected transient, got {other:?}"),
    }
}

#[tokio::test]
async fn gateway_errors_are_transient_other_statuses_permanent() {
    for (code, down) in [(502, true), (503, false), (504, true)] {
        let result = send(&worker(code, &[], "down".to_owned()).await).await;
        assert!(
            matches!(&result, Err(SendError::Transient { reason, worker_down, .. })
                if *reason == format!("worker returned {code}: down") && *worker_down == down),
            "{code}: {result:?}"
        );
    }
    for code in [400, 401, 404, 500, 201, 302] {
        let result = send(&worker(code, &[], "no".to_owned()).await).await;
        assert!(
            matches!(result, Err(SendError::Permanent { status: Some(s), .. }) if s == code),
            "{code}"
        );
    }
}

#[tokio::test]
async fn error_bodies_are_redacted_and_cut() {
    let body = format!(
        "failed with canary-secret-value and ghp_abcdef0123456789 {}",
        "x".repeat(5000)
    );
    let endpoint = worker(500, &[], body).await;
    match send(&endpoint).await {
        Err(
            err @ SendError::Permanent {
                status: Some(500), ..
            },
        ) => {
            let reason = err.to_string();
            assert!(
                reason.starts_with("worker returned 500: failed with [REDACTED] and [REDACTED] x"),
                "{reason}"
            );
            assert!(!reason.contains("canary") && !reason.contains("ghp_"));
            assert_eq!(
                reason.len(),
                "worker returned 500: ".len() + QUOTED_BODY_BYTES
            );
        }
        other => panic!("expected permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_worker_times_out_as_transient() {
    let endpoint = serve(Router::new().route("/task", post(std::future::pending::<()>))).await;
    let result = client()
        .send_task(&endpoint, None, &request(), Duration::from_millis(50))
        .await;
    assert!(
        matches!(&result, Err(SendError::Transient { reason, worker_down: true, .. })
            if reason.contains("did not answer")),
        "{result:?}"
    );
}

#[tokio::test]
async fn oversized_declared_body_is_permanent() {
    let endpoint = worker(200, &[], "a".repeat(MAX_BODY_BYTES + 1)).await;
    let result = send(&endpoint).await;
    assert!(
        matches!(&result, Err(SendError::Permanent { status: Some(200), reason }) if reason.contains("limit")),
        "{result:?}"
    );
}

#[tokio::test]
async fn oversized_streamed_body_is_cut_off_at_the_cap() {
    // A raw HTTP/1.1 worker sending chunks without a length; it counts what it got out before
    // the client hung up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let sent = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut head = vec![0; 64 * 1024];
        let _ = socket.read(&mut head).await;
        let chunk = vec![b'a'; 1 << 20];
        let mut sent = 0;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        for _ in 0..64 {
            let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if socket.write_all(&frame).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let result = send(&endpoint).await;
    assert!(
        matches!(
            result,
            Err(SendError::Permanent {
                status: Some(200),
                ..
            })
        ),
        "{result:?}"
    );
    let sent = sent.await.expect("worker task");
    assert!(
        sent < 64 << 20,
        "the client kept reading past the cap: {sent} bytes"
    );
}

#[tokio::test]
async fn health_states() {
    let client = client();
    let healthy = worker(200, &[], "ok".to_owned()).await;
    assert_eq!(client.health(&healthy, PATIENCE).await, Health::Healthy);
    let busy = worker(503, &[], "busy\n".to_owned()).await;
    assert_eq!(client.health(&busy, PATIENCE).await, Health::Busy);
    let down = worker(503, &[], "upstream unavailable".to_owned()).await;
    assert_eq!(
        client.health(&down, PATIENCE).await,
        Health::Unhealthy("health check returned 503: upstream unavailable".to_owned())
    );
    let created = worker(204, &[], String::new()).await;
    assert!(matches!(
        client.health(&created, PATIENCE).await,
        Health::Unhealthy(_)
    ));
    let closed = closed_endpoint().await;
    assert!(
        matches!(client.health(&closed, PATIENCE).await, Health::Unhealthy(r) if r.contains("failed"))
    );
    let silent = serve(Router::new().route("/health", get(std::future::pending::<()>))).await;
    assert!(matches!(
        client.health(&silent, Duration::from_millis(50)).await,
        Health::Unhealthy(r) if r.contains("timed out")
    ));
}

#[tokio::test]
async fn reachable_means_any_http_answer() {
    let client = client();
    let teapot = worker(418, &[], String::new()).await;
    assert!(client.reachable(&format!("{teapot}/task"), PATIENCE).await);
    assert!(!client.reachable(&closed_endpoint().await, PATIENCE).await);
    assert!(!client.reachable("not a url", PATIENCE).await);
}

#[tokio::test]
async fn endpoints_at_metadata_addresses_are_refused_however_written() {
    for endpoint in [
        "http://169.254.169.254",
        "http://2852039166",
        "http://[fd00:ec2::254]:8080",
        "http://100.100.100.200",
        "http://[64:ff9b::a9fe:a9fe]",
        "http://[::ffff:169.254.169.254]",
    ] {
        match send(endpoint).await {
            Err(SendError::Permanent {
                status: None,
                reason,
            }) => assert!(
                reason.contains("which mecha never connects to")
                    && reason.contains("point the worker's endpoint at the worker itself"),
                "{reason}"
            ),
            other => panic!("{endpoint}: expected a permanent refusal, got {other:?}"),
        }
        assert!(
            matches!(client().health(endpoint, PATIENCE).await, Health::Unhealthy(r) if r.contains("refused")),
            "{endpoint}"
        );
        assert!(!client().reachable(endpoint, PATIENCE).await);
    }
}

#[tokio::test]
async fn a_name_is_checked_on_the_answer_the_connection_uses() {
    use crate::net::resolve::{Resolver, Scripted};

    let endpoint = worker(200, &[], r#"{"output":"ok"}"#.to_owned()).await;
    let port = endpoint.rsplit(':').next().expect("port");
    let named = format!("http://worker.test:{port}");
    // The connection goes where the checked answer says.
    let script = Scripted::new(vec![vec!["127.0.0.1".parse().expect("ip")]]);
    let lookups = script.count.clone();
    let client = WorkerClient::resolving_with(Redactor::patterns_only(), Resolver::new(script));
    let reply = client
        .send_task(&named, None, &request(), PATIENCE)
        .await
        .expect("sent to the checked address");
    assert_eq!(reply.status, 200);
    assert_eq!(lookups.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A name that answers with a metadata address is refused, for good.
    let script = Scripted::new(vec![vec![
        "127.0.0.1".parse().expect("ip"),
        "169.254.169.254".parse().expect("ip"),
    ]]);
    let client = WorkerClient::resolving_with(Redactor::patterns_only(), Resolver::new(script));
    match client.send_task(&named, None, &request(), PATIENCE).await {
        Err(SendError::Permanent {
            status: None,
            reason,
        }) => assert!(
            reason.contains("`worker.test` resolves to 169.254.169.254, a cloud metadata address"),
            "{reason}"
        ),
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
}
