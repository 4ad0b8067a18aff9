//! A managed worker's container, assembled from its definition exactly as reference 2.2 says:
//! its name and labels, its environment (in order, with the reserved keys kept for mecha), its
//! mounts, and its hardening.
//!
//! Assembly is a pure function of the definition, the secrets and the host user, so every rule
//! is unit-tested without an engine. The definition is checked again here, because a row stored
//! by an older mecha, or a directory that changed since `mecha worker add`, must not reach
//! Docker unchecked.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, RestartPolicy};

use crate::config::secrets::{Secrets, token_env_var};
use crate::config::worker::{DockerConfig, Lifecycle, WorkerDef};

/// The port a worker serves the contract on inside its container.
pub const WORKER_PORT: u16 = 8080;

/// Where `docker.cwd` is mounted.
pub const WORKSPACE: &str = "/workspace";

/// The container's home when host logins are mounted into it.
const CONTAINER_HOME: &str = "/home/worker";

/// The home otherwise: writable by any uid, which matters as the container runs as the host's.
const SCRATCH_HOME: &str = "/tmp";

/// 65534:65534, `nobody` and `nogroup` on most distributions: what a root daemon runs a
/// container as when the worker names no `user` and no one but root owns its `cwd`.
pub const UNPRIVILEGED_USER: &str = "65534:65534";

/// 65534, the id of `nobody` and `nogroup`.
const NOBODY: u32 = 65534;

/// 1024 processes when `resources.pids` is 0: plenty for an agent and its tools, few enough to
/// stop a fork bomb from taking the host down.
pub const DEFAULT_PIDS_LIMIT: i64 = 1024;

/// The label naming the worker a container runs.
pub const WORKER_LABEL: &str = "mecha.worker";

/// The label marking per-task containers, which are removed at daemon start if left over.
pub const LIFECYCLE_LABEL: &str = "mecha.lifecycle";

/// `LIFECYCLE_LABEL` as a filter for disposable containers.
pub const DISPOSABLE_FILTER: &str = "mecha.lifecycle=disposable";

/// The label naming the mecha home whose daemon made a container (its
/// [`crate::config::home::Home::id`]), so that daemons sharing an engine never take each
/// other's containers for left-overs.
pub const OWNER_LABEL: &str = "mecha.owner";

/// The user running mecha. Containers run as this user, so files they write in `/workspace`
/// belong to the operator, unless it is root (see [`container_user`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUser {
    pub uid: u32,
    pub gid: u32,
    /// Where `~/.claude` and `~/.codex` are looked for.
    pub home: Option<PathBuf>,
}

impl HostUser {
    /// The user running mecha.
    pub fn current() -> HostUser {
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        HostUser {
            uid,
            gid,
            home: crate::config::worker::current_home(),
        }
    }
}

/// Why a container cannot be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssemblyError {
    /// The definition fails a check (it may have been stored by an older mecha).
    #[error("worker {worker} cannot run: {message}")]
    Definition { worker: String, message: String },
    /// `docker.token` does not resolve to a token mecha can place.
    #[error("worker {worker}: docker.token: {source}")]
    Token {
        worker: String,
        source: crate::config::Error,
    },
}

/// Everything Docker is told about one container. Not `Debug`: the environment holds secrets.
#[derive(Clone, PartialEq)]
pub struct ContainerSpec {
    /// The engine's `docker.host`, if the worker names one.
    pub docker_host: Option<String>,
    pub name: String,
    pub image: String,
    /// In the order of reference 2.2; a later entry of the same name replaces an earlier one.
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    /// `host:container[:ro]`.
    pub binds: Vec<String>,
    /// `uid:gid` (or what `docker.user` says).
    pub user: String,
    /// The host address the worker port is published on.
    pub bind_ip: &'static str,
    pub nano_cpus: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub pids_limit: i64,
}

/// The name of a worker's long-running container.
pub fn persistent_name(worker: &str) -> String {
    format!("mecha-worker-{worker}")
}

/// Assembles the container of `worker` for `lifecycle`; `suffix` makes disposable names unique
/// (16 hex digits).
pub fn assemble(
    worker: &WorkerDef,
    secrets: &Secrets,
    user: &HostUser,
    suffix: &str,
) -> Result<ContainerSpec, AssemblyError> {
    let invalid = |message: String| AssemblyError::Definition {
        worker: worker.name.clone(),
        message,
    };
    let Some(docker) = &worker.docker else {
        return Err(invalid("it has no docker section".to_owned()));
    };
    worker.validate().map_err(|err| invalid(err.to_string()))?;
    let home = user.home.as_deref();
    worker
        .validate_host_for(home)
        .map_err(|err| invalid(err.to_string()))?;
    let workspace = docker.workspace(home).map_err(invalid)?;

    let name = match docker.lifecycle {
        Lifecycle::Persistent => persistent_name(&worker.name),
        Lifecycle::Disposable => format!("mecha-disposable-{}-{suffix}", worker.name),
    };
    let container_user = container_user(docker, user, workspace.as_deref());
    let mut binds = Vec::new();
    if let Some(workspace) = workspace {
        binds.push(format!("{}:{WORKSPACE}", workspace.display()));
    }
    if !docker.credentials.is_empty() {
        let Some(home) = &user.home else {
            return Err(invalid(
                "HOME is not set, so the logins in docker.credentials cannot be found".to_owned(),
            ));
        };
        for credential in &docker.credentials {
            let dir = credential.directory();
            binds.push(format!(
                "{}:{CONTAINER_HOME}/{dir}:ro",
                home.join(dir).display()
            ));
        }
    }
    Ok(ContainerSpec {
        docker_host: docker.host.clone().filter(|host| !host.is_empty()),
        name,
        image: docker.image.clone(),
        env: environment(worker, docker, secrets)?,
        labels: labels(&worker.name, docker),
        binds,
        user: container_user,
        bind_ip: if docker.expose {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        },
        nano_cpus: (docker.resources.cpu > 0)
            .then(|| i64::from(docker.resources.cpu) * 1_000_000_000),
        memory_bytes: docker
            .resources
            .memory
            .map(|memory| i64::try_from(memory.bytes()).unwrap_or(i64::MAX)),
        pids_limit: match docker.resources.pids {
            0 => DEFAULT_PIDS_LIMIT,
            pids => i64::from(pids),
        },
    })
}

/// Who the container runs as: `docker.user` when the worker names one; else the user running
/// mecha; but never root by default. Root in a container shares the host's kernel and owns
/// whatever is mounted, so a root daemon runs the container as the owner of `workspace` (who
/// can then write it, as they could anyway), or as [`UNPRIVILEGED_USER`] when root owns it or
/// there is none. A root group is replaced the same way.
pub fn container_user(docker: &DockerConfig, user: &HostUser, workspace: Option<&Path>) -> String {
    if let Some(named) = docker.user.as_deref().filter(|named| !named.is_empty()) {
        return named.to_owned();
    }
    let (uid, gid) = if user.uid != 0 {
        (user.uid, user.gid)
    } else {
        workspace
            .and_then(|dir| std::fs::metadata(dir).ok())
            .map(|metadata| {
                use std::os::unix::fs::MetadataExt;
                (metadata.uid(), metadata.gid())
            })
            .filter(|(uid, _)| *uid != 0)
            .unwrap_or((NOBODY, NOBODY))
    };
    let gid = if gid == 0 { NOBODY } else { gid };
    format!("{uid}:{gid}")
}

/// The container's environment, in the order of reference 2.2: the token in the variable its
/// prefix names, then `docker.env` (which may replace it), `WORKER_API_KEY`, `WORKER_TIMEOUT`
/// (the worker's `timeout` in milliseconds, which the reference leaves at the runtime's
/// default), `HOME`, and the Claude plugin lists.
fn environment(
    worker: &WorkerDef,
    docker: &DockerConfig,
    secrets: &Secrets,
) -> Result<Vec<(String, String)>, AssemblyError> {
    let mut env = Environment::default();
    if let Some(reference) = &docker.token {
        let token_error = |source| AssemblyError::Token {
            worker: worker.name.clone(),
            source,
        };
        let token = secrets.resolve_token(reference).map_err(token_error)?;
        let variable = token_env_var(token).map_err(token_error)?;
        env.set(variable, token.expose());
    }
    for (key, value) in &docker.env {
        env.set(key, value);
    }
    if let Some(key) = &docker.api_key {
        env.set("WORKER_API_KEY", key);
    }
    // The runtime's own deadline, so the container gives up when mecha does rather than at
    // its default of 10 minutes.
    env.set("WORKER_TIMEOUT", &worker.timeout.as_millis().to_string());
    env.set(
        "HOME",
        if docker.credentials.is_empty() {
            SCRATCH_HOME
        } else {
            CONTAINER_HOME
        },
    );
    if !docker.plugins.is_empty() {
        env.set("CLAUDE_PLUGINS", &docker.plugins.join("\n"));
    }
    if !docker.plugin_marketplaces.is_empty() {
        env.set(
            "CLAUDE_PLUGIN_MARKETPLACES",
            &docker.plugin_marketplaces.join("\n"),
        );
    }
    Ok(env.0)
}

/// Variables in the order they were first set; setting one again replaces its value in place.
#[derive(Default)]
struct Environment(Vec<(String, String)>);

impl Environment {
    fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(existing, _)| existing == key) {
            Some((_, existing)) => *existing = value.to_owned(),
            None => self.0.push((key.to_owned(), value.to_owned())),
        }
    }
}

/// The operator's labels, then mecha's, which win: the daemon finds its containers by them.
fn labels(worker: &str, docker: &DockerConfig) -> BTreeMap<String, String> {
    let mut labels = docker.labels.clone();
    labels.insert(WORKER_LABEL.to_owned(), worker.to_owned());
    match docker.lifecycle {
        Lifecycle::Disposable => {
            labels.insert(LIFECYCLE_LABEL.to_owned(), "disposable".to_owned());
        }
        Lifecycle::Persistent => {
            labels.remove(LIFECYCLE_LABEL);
        }
    }
    labels
}

impl ContainerSpec {
    /// The body of Docker's container-create call: no capabilities, no privilege gain, the PID,
    /// CPU and memory limits, the worker port on `bind_ip` at a port Docker picks, and no
    /// Docker restart policy (mecha restarts the container itself; see `RestartPolicy`).
    pub fn create_body(&self) -> ContainerCreateBody {
        let port = format!("{WORKER_PORT}/tcp");
        let host_config = HostConfig {
            binds: (!self.binds.is_empty()).then(|| self.binds.clone()),
            port_bindings: Some(HashMap::from([(
                port.clone(),
                Some(vec![PortBinding {
                    host_ip: Some(self.bind_ip.to_owned()),
                    host_port: Some(String::new()),
                }]),
            )])),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
            pids_limit: Some(self.pids_limit),
            nano_cpus: self.nano_cpus,
            memory: self.memory_bytes,
            restart_policy: Some(RestartPolicy {
                name: Some(bollard::models::RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            user: Some(self.user.clone()),
            env: Some(
                self.env
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect(),
            ),
            labels: Some(self.labels.clone().into_iter().collect()),
            exposed_ports: Some(vec![port]),
            host_config: Some(host_config),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests;
