//! Disposable managed workers get a fresh container for each task, removed when the task ends
//! however it ends. Starting one checks what its containers will need (definition, token,
//! engine, image), so that its first task does not fail on it.

use std::sync::Arc;
use std::time::Duration;

use super::{BoxFuture, Finding, Parts, Progress, WorkerRuntime, managed};
use crate::store::{TaskId, WorkerLocation, WorkerState};
use crate::worker::client::{Health, SendError, TaskReply, TaskRequest};
use crate::worker::docker::LifecycleError;
use crate::worker::registry::Worker;

/// A disposable container is named after the first half of its task's id: unique enough among
/// the containers of one worker, and it ties the container to its task in `docker ps`.
const SUFFIX_LEN: usize = 16;

pub struct Disposable {
    parts: Arc<Parts>,
}

impl Disposable {
    pub(super) fn new(parts: Arc<Parts>) -> Disposable {
        Disposable { parts }
    }

    async fn check(&self, worker: &Worker, progress: Progress<'_>) -> Result<(), LifecycleError> {
        let containers = &self.parts.containers;
        containers.check(&worker.def)?;
        let docker = worker.def.docker.as_ref();
        let engine = containers
            .engine(docker.and_then(|docker| docker.host.as_deref()))
            .await?;
        let image = docker
            .map(|docker| docker.image.as_str())
            .unwrap_or_default();
        containers.ensure_image(&engine, image, progress).await
    }
}

impl WorkerRuntime for Disposable {
    fn parts(&self) -> &Parts {
        &self.parts
    }

    /// A container that could not be run counts as a failed send: worth retrying when Docker
    /// or the container misbehaved, not when the definition or image is wrong.
    fn send<'a>(
        &'a self,
        worker: &'a Worker,
        task: &'a TaskId,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<TaskReply, SendError>> {
        Box::pin(async move {
            let suffix = task.as_str().get(..SUFFIX_LEN).unwrap_or(task.as_str());
            let send = |endpoint: String| async move {
                self.parts
                    .client
                    .send_task(&endpoint, worker.api_key(), request, worker.def.timeout)
                    .await
            };
            match self
                .parts
                .containers
                .run_disposable(&worker.def, suffix, send)
                .await
            {
                Ok(sent) => sent,
                Err(err) if err.is_transient() => Err(SendError::Transient {
                    reason: err.to_string(),
                    retry_after: None,
                    worker_down: false,
                }),
                Err(err) => Err(SendError::Permanent {
                    status: None,
                    reason: err.to_string(),
                }),
            }
        })
    }

    fn start<'a>(
        &'a self,
        worker: &'a Worker,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let name = worker.name();
            let states = &self.parts.states;
            managed::ensure_stopped(worker)?;
            if let Err(err) = self.check(worker, progress).await {
                return Err(managed::start_failed(&self.parts, worker, &err).await);
            }
            states
                .set_runtime(
                    name,
                    WorkerLocation::default(),
                    WorkerState::Online,
                    "started",
                )
                .await
                .map_err(|err| err.to_string())?;
            Ok(format!(
                "started {name} (disposable: one container per task)"
            ))
        })
    }

    fn remove<'a>(
        &'a self,
        worker: &'a Worker,
        force: bool,
    ) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(managed::remove(&self.parts, worker, force))
    }

    /// Between tasks there is no container to ask.
    fn health<'a>(
        &'a self,
        _worker: &'a Worker,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<Health, &'static str>> {
        Box::pin(async { Err("one container per task") })
    }

    fn diagnose<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, Vec<Finding>> {
        Box::pin(managed::diagnose(&self.parts, worker))
    }
}
