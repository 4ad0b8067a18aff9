//! Managed workers: containers mecha runs on a Docker engine.
//!
//! [`engine`] speaks to Docker through bollard and phrases its failures for the operator;
//! [`container`] assembles a worker's container from its definition; [`lifecycle`] starts,
//! stops and removes containers, persistent or one per task. What mecha does with them for
//! each kind of worker is in `worker::runtime`.

pub mod container;
pub mod engine;
pub mod lifecycle;

pub use container::HostUser;
pub use engine::{DockerError, Engine};
pub use lifecycle::{Containers, LifecycleError, Running, Timing};
