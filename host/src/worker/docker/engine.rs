//! One Docker engine, through bollard: the handful of calls mecha makes, each turning Docker's
//! failures into errors that say what to do.
//!
//! The engine is named by a worker's `docker.host`, else `DOCKER_HOST`, else the local socket.
//! The API version is negotiated on connect, so engines older than bollard's default API (this
//! machine's 20.10 speaks 1.41) work.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;

use super::container::WORKER_PORT;
use crate::worker::body::error_chain;

/// The socket Docker listens on when nothing else is said.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// 5 s to answer a ping: a local engine answers in milliseconds, and a command that needs
/// Docker should say it is missing without keeping the user waiting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// 120 s per request (bollard's default): creating a container on a busy engine is slow, but
/// not that slow.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A Docker failure, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine did not answer at all.
    #[error(
        "cannot reach Docker at {address}: {reason}. Start Docker (e.g. `sudo systemctl start docker`), or point mecha at a running engine with DOCKER_HOST or the worker's docker.host"
    )]
    Unreachable { address: String, reason: String },
    /// `docker.host` or `DOCKER_HOST` is not an address bollard can use.
    #[error(
        "`{address}` is not a Docker address: {reason}; write it like unix:///var/run/docker.sock or tcp://host:2375"
    )]
    BadAddress { address: String, reason: String },
    /// The named container or image does not exist; Docker's own words ("No such image: x").
    #[error("{message}")]
    NotFound { message: String },
    /// The engine answered with an error.
    #[error("Docker refused to {action}: {message}")]
    Refused { action: String, message: String },
}

impl DockerError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, DockerError::NotFound { .. })
    }
}

/// A connected engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    address: String,
    /// The host name of a remote engine (`tcp://name:port`), where published ports are reached.
    remote_host: Option<String>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("address", &self.address)
            .finish()
    }
}

/// What the engine says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    pub version: String,
    pub api_version: String,
}

/// What mecha needs to know about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub running: bool,
    pub exit_code: i64,
    pub oom_killed: bool,
    /// `http://host:port` of its worker port, while it is published.
    pub endpoint: Option<String>,
}

/// Which engine to use: `configured` (a worker's `docker.host`), else `DOCKER_HOST`, else the
/// local socket.
pub fn address(configured: Option<&str>) -> String {
    configured
        .filter(|host| !host.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            std::env::var("DOCKER_HOST")
                .ok()
                .filter(|host| !host.is_empty())
        })
        .unwrap_or_else(|| DEFAULT_HOST.to_owned())
}

impl Engine {
    /// Connects to the engine at `address` and negotiates the API version. Fails with
    /// [`DockerError::Unreachable`] when nothing answers within a few seconds.
    pub async fn connect(address: &str) -> Result<Engine, DockerError> {
        let remote_host = remote_host(address);
        if let Some(host) = &remote_host {
            tracing::warn!(
                address,
                host,
                "Docker is reached over plaintext TCP on another machine: anyone on the path can read and drive it; prefer ssh:// or a unix socket"
            );
        }
        let unreachable = |reason: String| DockerError::Unreachable {
            address: address.to_owned(),
            reason,
        };
        let docker = connect(address).map_err(|err| match err {
            BollardError::SocketNotFoundError(path) => {
                unreachable(format!("there is no socket at {path}"))
            }
            err => DockerError::BadAddress {
                address: address.to_owned(),
                reason: err.to_string(),
            },
        })?;
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|err| unreachable(error_chain(&err)))?;
        Ok(Engine {
            docker,
            address: address.to_owned(),
            remote_host,
        })
    }

    pub async fn version(&self) -> Result<EngineVersion, DockerError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|err| self.error("read its version", err))?;
        Ok(EngineVersion {
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
        })
    }

    /// Whether `image` is on the engine already.
    pub async fn image_present(&self, image: &str) -> Result<bool, DockerError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(err) => match self.error(&format!("inspect image {image}"), err) {
                DockerError::NotFound { .. } => Ok(false),
                err => Err(err),
            },
        }
    }

    /// Pulls `image`, reporting progress as (bytes done, bytes total) over all layers so far.
    pub async fn pull(
        &self,
        image: &str,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(), DockerError> {
        let options = CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        };
        let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(update) = stream.next().await {
            let update = update.map_err(|err| self.error(&format!("pull {image}"), err))?;
            if let (Some(id), Some(detail)) = (update.id, update.progress_detail) {
                let done = detail.current.unwrap_or(0).max(0) as u64;
                let total = detail.total.unwrap_or(0).max(0) as u64;
                layers.insert(id, (done, total));
                let (done, total) = layers
                    .values()
                    .fold((0, 0), |(d, t), (done, total)| (d + done, t + total));
                progress(done, total);
            }
        }
        Ok(())
    }

    /// Creates a container named `name`; returns its id.
    pub async fn create(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, DockerError> {
        let options = CreateContainerOptions {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|err| self.error(&format!("create container {name}"), err))?;
        Ok(created.id)
    }

    pub async fn start(&self, container: &str) -> Result<(), DockerError> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(|err| self.error(&format!("start container {container}"), err))
    }

    /// Stops `container`, killing it after `grace`. A container already stopped is fine.
    pub async fn stop(&self, container: &str, grace: Duration) -> Result<(), DockerError> {
        let options = StopContainerOptions {
            t: Some(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX)),
            signal: None,
        };
        match self.docker.stop_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(err) => Err(self.error(&format!("stop container {container}"), err)),
        }
    }

    /// Removes `container`, running or not, with its anonymous volumes.
    pub async fn remove(&self, container: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        self.docker
            .remove_container(container, Some(options))
            .await
            .map_err(|err| self.error(&format!("remove container {container}"), err))
    }

    pub async fn inspect(&self, container: &str) -> Result<ContainerStatus, DockerError> {
        let inspected = self
            .docker
            .inspect_container(container, None)
            .await
            .map_err(|err| self.error(&format!("inspect container {container}"), err))?;
        Ok(self.status(inspected))
    }

    /// Ids and names of every container (running or not) carrying all of `labels`
    /// (`key=value` each).
    pub async fn labelled(&self, labels: &[&str]) -> Result<Vec<(String, String)>, DockerError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_owned(),
                labels.iter().map(|label| (*label).to_owned()).collect(),
            )])),
            ..Default::default()
        };
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|err| self.error("list containers", err))?;
        Ok(containers
            .into_iter()
            .filter_map(|container| {
                let name = container
                    .names
                    .and_then(|names| names.into_iter().next())
                    .unwrap_or_default();
                Some((container.id?, name.trim_start_matches('/').to_owned()))
            })
            .collect())
    }

    /// The last `lines` lines the container wrote, for an error message.
    pub async fn tail_logs(&self, container: &str, lines: usize) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.logs(container, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text.trim_end().to_owned()
    }

    fn status(&self, inspected: ContainerInspectResponse) -> ContainerStatus {
        let state = inspected.state.unwrap_or_default();
        let binding = inspected
            .network_settings
            .and_then(|settings| settings.ports)
            .and_then(|mut ports| ports.remove(&format!("{WORKER_PORT}/tcp")))
            .flatten()
            .and_then(|bindings| bindings.into_iter().next());
        let endpoint = binding.and_then(|binding| {
            let port = binding.host_port.filter(|port| !port.is_empty())?;
            let host = match binding.host_ip.as_deref() {
                None | Some("" | "0.0.0.0" | "::") => self
                    .remote_host
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1".to_owned()),
                Some(ip) if ip.contains(':') => format!("[{ip}]"),
                Some(ip) => ip.to_owned(),
            };
            Some(format!("http://{host}:{port}"))
        });
        ContainerStatus {
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            endpoint,
        }
    }

    /// Maps a bollard error: 404 is [`DockerError::NotFound`], a transport failure is
    /// [`DockerError::Unreachable`], anything else is the engine refusing `action`.
    fn error(&self, action: &str, err: BollardError) -> DockerError {
        match err {
            BollardError::DockerResponseServerError {
                status_code: 404,
                message,
            } => DockerError::NotFound { message },
            BollardError::DockerResponseServerError { message, .. } => DockerError::Refused {
                action: action.to_owned(),
                message,
            },
            BollardError::DockerStreamError { error } => DockerError::Refused {
                action: action.to_owned(),
                message: error,
            },
            other => DockerError::Unreachable {
                address: self.address.clone(),
                reason: error_chain(&other),
            },
        }
    }
}

fn connect(address: &str) -> Result<Docker, BollardError> {
    if let Some(path) = address.strip_prefix("unix://") {
        Docker::connect_with_socket(path, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else if address.starts_with("tcp://") || address.starts_with("http://") {
        Docker::connect_with_http(address, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else {
        Err(BollardError::UnsupportedURISchemeError {
            uri: address.to_owned(),
        })
    }
}

/// The host of a `tcp://` address that is not this machine.
fn remote_host(address: &str) -> Option<String> {
    let rest = address
        .strip_prefix("tcp://")
        .or_else(|| address.strip_prefix("http://"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(bracketed),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!local && !host.is_empty()).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_hosts_are_told_from_local_ones() {
        assert_eq!(remote_host("unix:///var/run/docker.sock"), None);
        assert_eq!(remote_host("tcp://127.0.0.1:2375"), None);
        assert_eq!(remote_host("tcp://localhost:2375"), None);
        assert_eq!(remote_host("tcp://[::1]:2375"), None);
        assert_eq!(
            remote_host("tcp://build.example.com:2375"),
            Some("build.example.com".to_owned())
        );
        assert_eq!(
            remote_host("tcp://10.0.0.5:2376/"),
            Some("10.0.0.5".to_owned())
        );
    }

    #[test]
    fn the_configured_host_wins() {
        assert_eq!(address(Some("tcp://h:1")), "tcp://h:1");
    }

    #[tokio::test]
    async fn a_missing_engine_says_how_to_fix_it() {
        let dir = tempfile::tempdir().expect("temp");
        let address = format!("unix://{}/docker.sock", dir.path().display());
        let err = Engine::connect(&address).await.expect_err("no socket");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot reach Docker at {address}")),
            "{text}"
        );
        assert!(text.contains("DOCKER_HOST"), "{text}");
        let err = Engine::connect("ftp://x").await.expect_err("scheme");
        assert!(err.to_string().contains("is not a Docker address"), "{err}");
    }
}
