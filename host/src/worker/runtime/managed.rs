//! What the two kinds of managed worker (persistent and disposable) share: the checks of
//! `mecha doctor` and the removal of their containers.

use super::{Finding, Parts};
use crate::store::{WorkerLocation, WorkerState};
use crate::worker::docker::LifecycleError;
use crate::worker::registry::Worker;

/// A managed worker's definition, directories and token (as its container would be assembled),
/// and its image on its engine.
pub(super) async fn diagnose(parts: &Parts, worker: &Worker) -> Vec<Finding> {
    let name = worker.name();
    let Some(docker) = &worker.def.docker else {
        return Vec::new();
    };
    let mut findings = vec![match parts.containers.check(&worker.def) {
        Ok(()) => Finding::Ok(format!(
            "worker {name}: definition, cwd and token are usable"
        )),
        Err(err) => return vec![Finding::Fail(err.to_string())],
    }];
    let engine = match parts.containers.engine(docker.host.as_deref()).await {
        Ok(engine) => engine,
        // The engine's own check reports it.
        Err(_) => return findings,
    };
    findings.push(match engine.image_present(&docker.image).await {
        Ok(true) => Finding::Ok(format!("worker {name}: image {} is present", docker.image)),
        Ok(false) => Finding::Warn(format!(
            "worker {name}: image {} is not on the engine; `mecha worker start {name}` pulls it, or build it",
            docker.image
        )),
        Err(err) => Finding::Warn(format!("worker {name}: {err}")),
    });
    findings
}

/// Refuses to start a managed worker that runs already.
pub(super) fn ensure_stopped(worker: &Worker) -> Result<(), String> {
    let name = worker.name();
    match worker.state {
        WorkerState::Offline | WorkerState::Error => Ok(()),
        state => Err(format!(
            "{name} is {}; `mecha worker stop {name}` first",
            state.as_str()
        )),
    }
}

/// Puts `worker`, which could not start because of `err`, in `error`; what to tell the operator.
pub(super) async fn start_failed(parts: &Parts, worker: &Worker, err: &LifecycleError) -> String {
    let name = worker.name();
    let reason = parts.redactor.redact(&err.to_string()).into_owned();
    let from = [WorkerState::Offline, WorkerState::Error];
    if let Err(err) = parts
        .states
        .set(name, &from, WorkerState::Error, &reason)
        .await
    {
        return format!("could not start {name}: {reason} (and could not record it: {err})");
    }
    format!("could not start {name}: {reason}")
}

/// Removes `worker`'s container (the one recorded, and any by its persistent name) and marks
/// it offline. With `force`, a container that cannot be removed (Docker is unreachable) is left
/// for `docker rm -f` and reported as a warning.
pub(super) async fn remove(
    parts: &Parts,
    worker: &Worker,
    force: bool,
) -> Result<Option<String>, String> {
    let container = worker.container.as_deref().unwrap_or_default();
    let warning = match parts.containers.remove(&worker.def, container).await {
        Ok(()) => None,
        Err(err) if force => Some(format!("the container was not removed: {err}")),
        Err(err) => {
            return Err(format!(
                "could not remove the container of {}; nothing was removed (--force removes the worker anyway): {err}",
                worker.name()
            ));
        }
    };
    parts
        .states
        .set_runtime(
            worker.name(),
            WorkerLocation::default(),
            WorkerState::Offline,
            "removed",
        )
        .await
        .map_err(|err| err.to_string())?;
    Ok(warning)
}
