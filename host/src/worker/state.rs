//! Every move of a worker from one state to another goes through [`WorkerStates`]: the guarded
//! update of the store and its `worker.state` audit record, written in one transaction, with
//! the reason redacted. Callers say what happened; none builds the record itself, so every
//! move is audited, and audited alike.

use std::sync::Arc;

use crate::redact::Redactor;
use crate::store::{self, AuditEntry, AuditOutcome, Store, WorkerLocation, WorkerState};

/// Moves workers between states.
#[derive(Clone)]
pub struct WorkerStates {
    store: Arc<dyn Store>,
    redactor: Redactor,
}

impl WorkerStates {
    pub fn new(store: Arc<dyn Store>, redactor: Redactor) -> WorkerStates {
        WorkerStates { store, redactor }
    }

    /// Moves worker `name` to `to` if it is in one of `from`; `why` is the audit record's reason
    /// (and, moving to `error`, the worker's error message). Fails with
    /// [`store::Error::InvalidWorkerTransition`] when the worker is elsewhere.
    pub async fn set(
        &self,
        name: &str,
        from: &[WorkerState],
        to: WorkerState,
        why: &str,
    ) -> Result<(), store::Error> {
        let why = self.redactor.redact(why).into_owned();
        let error = (to == WorkerState::Error).then(|| why.clone());
        let record = record(name, to, &why, None);
        self.store
            .set_worker_state(name, from, to, error, Some(record))
            .await
    }

    /// Records where worker `name` now runs (its container and endpoint, empty when none) and
    /// moves it to `to`, whatever its state, for the reason `why`.
    pub async fn set_runtime(
        &self,
        name: &str,
        runtime: WorkerLocation<'_>,
        to: WorkerState,
        why: &str,
    ) -> Result<(), store::Error> {
        let why = self.redactor.redact(why).into_owned();
        let container = (!runtime.container_id.is_empty()).then_some(runtime.container_id);
        let record = record(name, to, &why, container);
        self.store
            .set_worker_runtime(name, runtime, to, Some(record))
            .await
    }

    /// Audits a worker just added (`offline`, as every worker starts).
    pub async fn added(&self, name: &str) -> Result<(), store::Error> {
        self.store
            .record(record(name, WorkerState::Offline, "added", None))
            .await
    }

    /// Records a new endpoint of a running worker's container (Docker may publish another port
    /// after a restart); its state does not change, so nothing is audited.
    pub async fn moved(
        &self,
        name: &str,
        runtime: WorkerLocation<'_>,
        state: WorkerState,
    ) -> Result<(), store::Error> {
        self.store
            .set_worker_runtime(name, runtime, state, None)
            .await
    }
}

/// The `worker.state` record of a move of `name` to `to` because of `why`.
fn record(name: &str, to: WorkerState, why: &str, container: Option<&str>) -> AuditEntry {
    let mut detail = serde_json::json!({ "state": to, "reason": why });
    if let Some(container) = container {
        detail["container"] = serde_json::Value::from(container);
    }
    let entry = AuditEntry::new(format!("worker:{name}"), "worker.state")
        .worker(name)
        .detail(detail);
    match to {
        WorkerState::Error => entry.outcome(AuditOutcome::Fail).error(why),
        WorkerState::Offline | WorkerState::Online => entry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Durability, LogFilter, SqliteStore};

    #[tokio::test]
    async fn a_move_is_audited_with_its_redacted_reason_and_a_refused_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap());
        store
            .add_workers(vec![(
                "a".into(),
                serde_json::json!({"name": "a", "endpoint": "http://127.0.0.1:1"}),
            )])
            .await
            .unwrap();
        let states = WorkerStates::new(
            store.clone(),
            Redactor::new(vec!["hunter2-token".to_owned()]),
        );
        states
            .set(
                "a",
                &[WorkerState::Offline],
                WorkerState::Error,
                "refused with hunter2-token",
            )
            .await
            .unwrap();
        assert!(
            states
                .set("a", &[WorkerState::Offline], WorkerState::Online, "started")
                .await
                .is_err()
        );
        let records = store
            .query_logs(LogFilter {
                action_prefix: Some("worker.state".into()),
                ..LogFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(records.len(), 1, "{records:?}");
        let text = serde_json::to_string(&records[0]).unwrap();
        assert!(!text.contains("hunter2-token"), "{text}");
        assert_eq!(records[0].detail["state"], "error");
        let row = store.get_worker("a").await.unwrap().unwrap();
        let error = row.error.unwrap_or_default();
        assert!(error.contains("refused with"), "{error}");
        assert!(!error.contains("hunter2-token"), "{error}");
    }
}
