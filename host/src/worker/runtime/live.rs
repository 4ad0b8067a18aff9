//! Live workers run on their own at the `endpoint` their definition gives; mecha only sends
//! them tasks and watches their health.

use std::sync::Arc;
use std::time::Duration;

use super::{BoxFuture, Finding, Parts, Progress, WorkerRuntime, probe_endpoint};
use crate::store::WorkerState;
use crate::worker::client::Health;
use crate::worker::registry::Worker;

/// 5 s for the health check of a start or a doctor run.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Live {
    parts: Arc<Parts>,
}

impl Live {
    pub(super) fn new(parts: Arc<Parts>) -> Live {
        Live { parts }
    }
}

impl WorkerRuntime for Live {
    fn parts(&self) -> &Parts {
        &self.parts
    }

    /// Probed before it is marked online, so the daemon never sends to it untested; one that
    /// fails the probe is started in `error`, and the health monitor brings it online once it
    /// answers.
    fn start<'a>(
        &'a self,
        worker: &'a Worker,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let name = worker.name();
            let (state, why, message) = match probe_endpoint(
                &self.parts.client,
                worker,
                CHECK_TIMEOUT,
            )
            .await
            {
                Ok(Health::Healthy) => (
                    WorkerState::Online,
                    "started".to_owned(),
                    format!("started {name}"),
                ),
                health => (
                    WorkerState::Error,
                    match health {
                        Ok(health) => format!("health check failed: {health:?}"),
                        Err(why) => format!("health check failed: {why}"),
                    },
                    format!(
                        "started {name} (warning: health check failed; mecha keeps probing and uses it once healthy)"
                    ),
                ),
            };
            self.parts
                .states
                .set(name, &[WorkerState::Offline], state, &why)
                .await
                .map_err(|err| format!("{name} must be offline to start: {err}"))?;
            Ok(message)
        })
    }

    fn diagnose<'a>(&'a self, worker: &'a Worker) -> BoxFuture<'a, Vec<Finding>> {
        Box::pin(async move {
            let name = worker.name();
            let endpoint = worker.def.endpoint.clone().unwrap_or_default();
            vec![
                match self.parts.client.health(&endpoint, CHECK_TIMEOUT).await {
                    Health::Healthy => Finding::Ok(format!("worker {name}: {endpoint} is healthy")),
                    health => Finding::Warn(format!(
                        "worker {name}: {endpoint} is not healthy ({health:?})"
                    )),
                },
            ]
        })
    }
}
