//! Each runtime against a real SQLite store and, for live workers, a worker served on
//! 127.0.0.1. Managed workers point at a Docker socket that does not exist, which is how an
//! unreachable engine looks to them; the Docker end-to-end tests run real containers.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use super::*;
use crate::store::{Durability, LogFilter, SqliteStore, WorkerState};
use crate::worker::docker::{HostUser, Timing};
use crate::worker::registry::{Workers, process_environment};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    workers: Workers,
    runtimes: Runtimes,
}

/// A store holding the workers `definitions` (JSON, as `mecha worker add` stores them), and
/// the runtimes.
async fn fixture(definitions: &[serde_json::Value]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap());
    let rows = definitions
        .iter()
        .map(|definition| {
            (
                definition["name"].as_str().unwrap().to_owned(),
                definition.clone(),
            )
        })
        .collect();
    store.add_workers(rows).await.unwrap();
    let redactor = Redactor::new(Vec::new());
    let client = WorkerClient::new(redactor.clone());
    let containers = Containers::new(
        "0123456789abcdef".into(),
        crate::config::secrets::Secrets::default(),
        HostUser::current(),
        client.clone(),
        redactor.clone(),
        Timing::default(),
    );
    let runtimes = Runtimes::new(Parts {
        client,
        containers: Arc::new(containers),
        states: WorkerStates::new(store.clone(), redactor.clone()),
        store: store.clone(),
        redactor,
    });
    Fixture {
        _dir: dir,
        workers: Workers::new(store.clone(), process_environment()),
        store,
        runtimes,
    }
}

impl Fixture {
    async fn worker(&self, name: &str) -> Worker {
        self.workers.get(name).await.unwrap().unwrap()
    }

    async fn state(&self, name: &str) -> WorkerState {
        self.worker(name).await.state
    }

    /// The reasons of the `worker.state` records, oldest first.
    async fn moves(&self) -> Vec<String> {
        let mut records = self
            .store
            .query_logs(LogFilter {
                action_prefix: Some("worker.state".into()),
                ..LogFilter::default()
            })
            .await
            .unwrap();
        records.reverse();
        records
            .iter()
            .map(|record| {
                let text = |key: &str| record.detail[key].as_str().unwrap_or_default().to_owned();
                format!("{}: {}", text("state"), text("reason"))
            })
            .collect()
    }
}

/// A worker of the contract on 127.0.0.1, healthy, answering every task with `{"output":"ok"}`.
async fn serve_worker() -> String {
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/task", post(|| async { r#"{"output":"ok"}"# }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    endpoint
}

fn request() -> TaskRequest {
    TaskRequest {
        id: "task-1".into(),
        prompt: "review".into(),
        context: serde_json::json!({}),
        traceparent: None,
    }
}

/// A managed worker on an engine that cannot be reached.
fn managed(name: &str, lifecycle: &str, dir: &std::path::Path) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "docker": {
            "image": "mecha-test/none:1",
            "host": format!("unix://{}/no-docker.sock", dir.display()),
            "cwd": dir.display().to_string(),
            "lifecycle": lifecycle,
        }
    })
}

#[tokio::test]
async fn a_live_worker_is_probed_at_start_sent_tasks_and_stopped() {
    let endpoint = serve_worker().await;
    let fixture = fixture(&[serde_json::json!({"name": "live", "endpoint": endpoint})]).await;
    let worker = fixture.worker("live").await;
    let runtime = fixture.runtimes.of(&worker.def);
    assert!(
        runtime
            .how_to_start("live")
            .contains("mecha worker start live")
    );

    let started = runtime.start(&worker, &mut |_, _| {}).await.unwrap();
    assert_eq!(started, "started live");
    assert_eq!(fixture.state("live").await, WorkerState::Online);
    let worker = fixture.worker("live").await;
    assert_eq!(runtime.health(&worker, TIMEOUT).await, Ok(Health::Healthy));
    let task = TaskId::generate().unwrap();
    let reply = runtime.send(&worker, &task, &request()).await.unwrap();
    assert_eq!(reply.body, r#"{"output":"ok"}"#);
    assert!(
        runtime.start(&worker, &mut |_, _| {}).await.is_err(),
        "only an offline worker starts"
    );
    assert_eq!(runtime.stop(&worker).await.unwrap(), "stopped live");
    assert_eq!(fixture.state("live").await, WorkerState::Offline);
    assert_eq!(runtime.remove(&worker, false).await, Ok(None));
    assert_eq!(
        fixture.moves().await,
        ["online: started", "offline: stopped"]
    );
}

#[tokio::test]
async fn a_live_worker_that_fails_its_probe_starts_in_error() {
    // Nothing listens on port 9 of loopback here: the probe is refused.
    let fixture =
        fixture(&[serde_json::json!({"name": "gone", "endpoint": "http://127.0.0.1:9"})]).await;
    let worker = fixture.worker("gone").await;
    let started = fixture
        .runtimes
        .of(&worker.def)
        .start(&worker, &mut |_, _| {})
        .await
        .unwrap();
    assert!(started.contains("health check failed"), "{started}");
    let worker = fixture.worker("gone").await;
    assert_eq!(worker.state, WorkerState::Error);
    assert!(
        worker
            .error
            .is_some_and(|error| error.contains("health check failed"))
    );
}

#[tokio::test]
async fn an_adapter_is_started_by_the_daemon_and_probed_only_with_its_key() {
    let fixture = fixture(&[serde_json::json!({
        "name": "llm",
        "adapter": {"type": "ollama", "upstream": "http://127.0.0.1:9", "model": "m"}
    })])
    .await;
    let worker = fixture.worker("llm").await;
    let runtime = fixture.runtimes.of(&worker.def);
    assert!(runtime.how_to_start("llm").contains("mecha serve"));
    let refused = runtime.start(&worker, &mut |_, _| {}).await.unwrap_err();
    assert!(refused.contains("`mecha serve` starts it"), "{refused}");
    assert_eq!(
        runtime.health(&worker, TIMEOUT).await,
        Err("checked by mecha serve")
    );
    // Not started: no endpoint to send to, and the task fails for good with the reason.
    let task = TaskId::generate().unwrap();
    match runtime.send(&worker, &task, &request()).await {
        Err(SendError::Permanent { reason, .. }) => {
            assert!(reason.contains("has no endpoint yet"), "{reason}")
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    let findings = runtime.diagnose(&worker).await;
    assert!(
        matches!(&findings[..], [Finding::Warn(text)] if text.contains("does not answer")),
        "{findings:?}"
    );
}

#[tokio::test]
async fn a_persistent_worker_that_cannot_start_is_in_error_and_removed_only_by_force() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture(&[managed("kept", "persistent", dir.path())]).await;
    let worker = fixture.worker("kept").await;
    let runtime = fixture.runtimes.of(&worker.def);
    assert_eq!(runtime.health(&worker, TIMEOUT).await, Err("no endpoint"));

    let failed = runtime.start(&worker, &mut |_, _| {}).await.unwrap_err();
    assert!(failed.starts_with("could not start kept:"), "{failed}");
    assert_eq!(fixture.state("kept").await, WorkerState::Error);

    let mut worker = fixture.worker("kept").await;
    worker.container = Some("c0ffee".into());
    let refused = runtime.remove(&worker, false).await.unwrap_err();
    assert!(refused.contains("--force"), "{refused}");
    assert_eq!(fixture.state("kept").await, WorkerState::Error);
    let warning = runtime.remove(&worker, true).await.unwrap();
    assert!(
        warning.is_some_and(|warning| warning.contains("not removed")),
        "forced: reported, not failed"
    );
    assert_eq!(fixture.state("kept").await, WorkerState::Offline);
    let moves = fixture.moves().await;
    assert!(moves[0].starts_with("error: "), "{moves:?}");
    assert_eq!(moves[1], "offline: removed");
}

#[tokio::test]
async fn a_disposable_worker_is_checked_at_start_and_has_no_container_to_probe() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture(&[managed("once", "disposable", dir.path())]).await;
    let worker = fixture.worker("once").await;
    let runtime = fixture.runtimes.of(&worker.def);
    assert_eq!(
        runtime.health(&worker, TIMEOUT).await,
        Err("one container per task")
    );
    let failed = runtime.start(&worker, &mut |_, _| {}).await.unwrap_err();
    assert!(failed.starts_with("could not start once:"), "{failed}");
    assert_eq!(fixture.state("once").await, WorkerState::Error);
    // A task finds no engine either: worth trying again later, not a failure of the task.
    let task = TaskId::generate().unwrap();
    match runtime.send(&worker, &task, &request()).await {
        Err(SendError::Transient { worker_down, .. }) => assert!(!worker_down),
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_running_managed_worker_is_not_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture(&[managed("busy", "persistent", dir.path())]).await;
    let mut worker = fixture.worker("busy").await;
    worker.state = WorkerState::Online;
    let refused = fixture
        .runtimes
        .of(&worker.def)
        .start(&worker, &mut |_, _| {})
        .await
        .unwrap_err();
    assert_eq!(refused, "busy is online; `mecha worker stop busy` first");
}
