//! Starting, stopping and removing managed workers' containers (reference 6.6, 6.7).
//!
//! A persistent worker gets one container, started by `mecha worker start` and kept until
//! `stop` or `remove`. A disposable worker gets a container per task, removed when the task
//! ends however it ends. Either way a container counts as started only once its `/health`
//! answers 200; one that never does is removed, so a failed start leaves nothing behind.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::container::{
    AssemblyError, ContainerSpec, DISPOSABLE_FILTER, HostUser, OWNER_LABEL, assemble,
    persistent_name,
};
use super::engine::{self, DockerError, Engine};
use crate::config::secrets::Secrets;
use crate::config::worker::{DockerConfig, WorkerDef};
use crate::redact::Redactor;
use crate::worker::client::{Health, WorkerClient};

/// How long a container may take to become healthy, and how often it is probed meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// 90 s for a persistent worker: images that install their agent at start take about 60 s.
    pub persistent_start: Duration,
    /// 60 s for a disposable one, as the Go mecha allows.
    pub disposable_start: Duration,
    /// Between probes.
    pub probe_interval: Duration,
    /// Per probe.
    pub probe_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            persistent_start: Duration::from_secs(90),
            disposable_start: Duration::from_secs(60),
            probe_interval: Duration::from_millis(500),
            probe_timeout: Duration::from_secs(3),
        }
    }
}

/// 10 s for a persistent worker to finish what it is doing when stopped; 5 s for a disposable
/// one, whose task is over.
const STOP_GRACE: Duration = Duration::from_secs(10);
const DISPOSABLE_STOP_GRACE: Duration = Duration::from_secs(5);

/// Lines of a failed container's output quoted in the error.
const LOG_LINES: usize = 20;

/// Why a container could not be run.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Assembly(#[from] AssemblyError),
    #[error(
        "image {image} is not on the Docker engine and could not be pulled ({reason}); build it or `docker pull` it, then try again"
    )]
    Image { image: String, reason: String },
    #[error("container {name} stopped while starting (exit code {exit_code}){output}")]
    Exited {
        name: String,
        exit_code: i64,
        output: String,
    },
    #[error(
        "container {name} did not answer /health within {}s{output}",
        waited.as_secs()
    )]
    Unhealthy {
        name: String,
        waited: Duration,
        output: String,
    },
}

impl LifecycleError {
    /// Whether trying again later may succeed: the engine was unreachable or the container
    /// misbehaved, as opposed to a definition or image that will not change by itself.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LifecycleError::Docker(DockerError::Unreachable { .. })
                | LifecycleError::Exited { .. }
                | LifecycleError::Unhealthy { .. }
        )
    }
}

/// A started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub container_id: String,
    pub endpoint: String,
}

/// Runs managed workers' containers. One per process; engines are connected once per address.
pub struct Containers {
    /// The id of this daemon's home ([`crate::config::home::Home::id`]), put on every container
    /// it makes.
    owner: String,
    /// Replaced whole when `secrets.yml` is reloaded; a container being assembled keeps the
    /// set it started with.
    secrets: RwLock<Arc<Secrets>>,
    user: HostUser,
    client: WorkerClient,
    redactor: Redactor,
    timing: Timing,
    engines: tokio::sync::Mutex<HashMap<String, Engine>>,
}

impl Containers {
    /// `owner` is the id of the mecha home ([`crate::config::home::Home::id`]).
    pub fn new(
        owner: String,
        secrets: Secrets,
        user: HostUser,
        client: WorkerClient,
        redactor: Redactor,
        timing: Timing,
    ) -> Containers {
        Containers {
            owner,
            secrets: RwLock::new(Arc::new(secrets)),
            user,
            client,
            redactor,
            timing,
            engines: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The daemon that runs the containers made here ([`crate::config::home::Home::daemon_id`]):
    /// among daemons sharing a database, the one that checks, restarts and stops them.
    pub fn daemon_id(&self) -> String {
        crate::config::home::daemon_id(&self.owner)
    }

    /// Gives containers made from now on the tokens of `secrets` (a reload of `secrets.yml`).
    pub fn set_secrets(&self, secrets: Secrets) {
        *self.secrets.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(secrets);
    }

    fn secrets(&self) -> Arc<Secrets> {
        self.secrets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The engine a worker's `docker.host` names (see [`engine::address`]), connected on
    /// first use.
    pub async fn engine(&self, host: Option<&str>) -> Result<Engine, DockerError> {
        let address = engine::address(host);
        let mut engines = self.engines.lock().await;
        if let Some(engine) = engines.get(&address) {
            return Ok(engine.clone());
        }
        let engine = Engine::connect(&address).await?;
        engines.insert(address, engine.clone());
        Ok(engine)
    }

    /// Checks that `worker` can be assembled (definition, directories, token) without starting
    /// anything.
    pub fn check(&self, worker: &WorkerDef) -> Result<(), AssemblyError> {
        assemble(worker, &self.secrets(), &self.user, "").map(drop)
    }

    /// Makes sure `image` is on `engine`, pulling it if not; `progress` sees (done, total) bytes.
    pub async fn ensure_image(
        &self,
        engine: &Engine,
        image: &str,
        progress: impl FnMut(u64, u64),
    ) -> Result<(), LifecycleError> {
        if engine.image_present(image).await? {
            return Ok(());
        }
        tracing::info!(image, "pulling the worker image");
        engine.pull(image, progress).await.map_err(|err| match err {
            DockerError::Unreachable { .. } => LifecycleError::Docker(err),
            other => LifecycleError::Image {
                image: image.to_owned(),
                reason: other.to_string(),
            },
        })
    }

    /// Starts the persistent container of `worker`: removes a stale one of the same name,
    /// creates and starts a new one and waits for its health. On any failure the new
    /// container is removed again.
    pub async fn start_persistent(
        &self,
        worker: &WorkerDef,
        progress: impl FnMut(u64, u64),
    ) -> Result<Running, LifecycleError> {
        let (engine, spec) = self.prepare(worker, "", progress).await?;
        match engine.remove(&spec.name).await {
            Ok(()) => tracing::info!(container = %spec.name, "removed a stale container"),
            Err(err) if err.is_not_found() => {}
            Err(err) => return Err(err.into()),
        }
        let id = engine.create(&spec.name, spec.create_body()).await?;
        let started = self.start_and_wait(&engine, &id, &spec, self.timing.persistent_start);
        match started.await {
            Ok(endpoint) => Ok(Running {
                container_id: id,
                endpoint,
            }),
            Err(err) => {
                discard(&engine, &id, STOP_GRACE).await;
                Err(err)
            }
        }
    }

    /// Stops `container` of `worker`; one that is gone already is fine.
    pub async fn stop(&self, worker: &DockerConfig, container: &str) -> Result<(), DockerError> {
        let engine = self.engine(worker.host.as_deref()).await?;
        match engine.stop(container, STOP_GRACE).await {
            Err(err) if !err.is_not_found() => Err(err),
            _ => Ok(()),
        }
    }

    /// Removes the container of `worker`: `container` if known, and any by its persistent name.
    pub async fn remove(&self, worker: &WorkerDef, container: &str) -> Result<(), DockerError> {
        let Some(docker) = &worker.docker else {
            return Ok(());
        };
        let engine = self.engine(docker.host.as_deref()).await?;
        let name = persistent_name(&worker.name);
        for target in [container, name.as_str()] {
            if target.is_empty() {
                continue;
            }
            match engine.remove(target).await {
                Err(err) if !err.is_not_found() => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs one task in a fresh container of the disposable `worker`, named with `suffix` (16
    /// hex digits; the task id's first half ties the two together): `task` gets the container's
    /// endpoint once it is healthy. The container is removed afterwards, whether the task
    /// succeeded, failed or was cancelled.
    pub async fn run_disposable<T, F, Fut>(
        &self,
        worker: &WorkerDef,
        suffix: &str,
        task: F,
    ) -> Result<T, LifecycleError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = T>,
    {
        let (engine, spec) = self.prepare(worker, suffix, |_, _| {}).await?;
        let id = engine.create(&spec.name, spec.create_body()).await?;
        // Removes the container even if this future is dropped mid-task.
        let cleanup = Cleanup {
            engine: engine.clone(),
            container: Some(id.clone()),
        };
        let outcome = match self
            .start_and_wait(&engine, &id, &spec, self.timing.disposable_start)
            .await
        {
            Ok(endpoint) => Ok(task(endpoint).await),
            Err(err) => Err(err),
        };
        cleanup.run().await;
        outcome
    }

    /// Removes disposable containers an earlier daemon of this home left behind (it stopped
    /// mid-task) from every engine in `docker`; returns how many were removed. Containers of
    /// other homes' daemons on the same engine are left alone.
    pub async fn remove_orphans<'a>(
        &self,
        docker: impl IntoIterator<Item = &'a DockerConfig>,
    ) -> usize {
        let mut hosts: Vec<Option<&str>> = Vec::new();
        for config in docker {
            let host = config.host.as_deref().filter(|host| !host.is_empty());
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        let mut removed = 0;
        for host in hosts {
            let engine = match self.engine(host).await {
                Ok(engine) => engine,
                Err(err) => {
                    tracing::warn!(error = %err, "could not look for left-over disposable containers");
                    continue;
                }
            };
            let owned = format!("{OWNER_LABEL}={}", self.owner);
            let orphans = match engine.labelled(&[DISPOSABLE_FILTER, &owned]).await {
                Ok(orphans) => orphans,
                Err(err) => {
                    tracing::warn!(error = %err, "could not list left-over disposable containers");
                    continue;
                }
            };
            for (id, name) in orphans {
                discard(&engine, &id, DISPOSABLE_STOP_GRACE).await;
                tracing::info!(container = %name, "removed a left-over disposable container");
                removed += 1;
            }
        }
        removed
    }

    /// The engine and the assembled container of `worker`, with its image present.
    async fn prepare(
        &self,
        worker: &WorkerDef,
        suffix: &str,
        progress: impl FnMut(u64, u64),
    ) -> Result<(Engine, ContainerSpec), LifecycleError> {
        let mut spec = assemble(worker, &self.secrets(), &self.user, suffix)?;
        spec.labels
            .insert(OWNER_LABEL.to_owned(), self.owner.clone());
        let engine = self.engine(spec.docker_host.as_deref()).await?;
        self.ensure_image(&engine, &spec.image, progress).await?;
        Ok((engine, spec))
    }

    /// Starts container `id` and waits up to `patience` for its `/health`; returns its endpoint.
    async fn start_and_wait(
        &self,
        engine: &Engine,
        id: &str,
        spec: &ContainerSpec,
        patience: Duration,
    ) -> Result<String, LifecycleError> {
        engine.start(id).await?;
        let deadline = Instant::now() + patience;
        loop {
            let status = engine.inspect(id).await?;
            if !status.running {
                return Err(LifecycleError::Exited {
                    name: spec.name.clone(),
                    exit_code: status.exit_code,
                    output: self.output(engine, id).await,
                });
            }
            if let Some(endpoint) = &status.endpoint
                && self
                    .client
                    .health(endpoint, self.timing.probe_timeout)
                    .await
                    == Health::Healthy
            {
                return Ok(endpoint.clone());
            }
            if Instant::now() >= deadline {
                return Err(LifecycleError::Unhealthy {
                    name: spec.name.clone(),
                    waited: patience,
                    output: self.output(engine, id).await,
                });
            }
            tokio::time::sleep(self.timing.probe_interval).await;
        }
    }

    /// The container's last lines, redacted, as a suffix for an error message.
    async fn output(&self, engine: &Engine, id: &str) -> String {
        let logs = engine.tail_logs(id, LOG_LINES).await;
        if logs.is_empty() {
            return String::new();
        }
        format!("; its last output:\n{}", self.redactor.redact(&logs))
    }
}

/// Stops and removes `container`, logging (not returning) what goes wrong: it runs on paths
/// that are already failing or finishing.
async fn discard(engine: &Engine, container: &str, grace: Duration) {
    if let Err(err) = engine.stop(container, grace).await
        && !err.is_not_found()
    {
        tracing::warn!(container, error = %err, "could not stop a container");
    }
    if let Err(err) = engine.remove(container).await
        && !err.is_not_found()
    {
        tracing::warn!(container, error = %err, "could not remove a container; remove it with `docker rm -f`");
    }
}

/// Removes a disposable container when dropped without [`Cleanup::run`] having been awaited
/// (the task future was cancelled), on a task of its own.
struct Cleanup {
    engine: Engine,
    container: Option<String>,
}

impl Cleanup {
    async fn run(mut self) {
        if let Some(container) = self.container.take() {
            discard(&self.engine, &container, DISPOSABLE_STOP_GRACE).await;
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(container) = self.container.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let engine = self.engine.clone();
            runtime.spawn(async move { discard(&engine, &container, DISPOSABLE_STOP_GRACE).await });
        }
    }
}
