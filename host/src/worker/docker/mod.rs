//! Managed workers: containers mecha runs on a Docker engine.
//!
//! [`engine`] speaks to Docker through bollard and phrases its failures for the operator;
//! [`container`] assembles a worker's container from its definition; [`lifecycle`] starts,
//! stops and removes containers, persistent or one per task; [`reconcile`] keeps started
//! workers' state true to their containers and restarts those that stopped.

pub mod container;
pub mod engine;
pub mod lifecycle;
pub mod reconcile;

pub use container::{HostUser, owner_id};
pub use engine::{DockerError, Engine};
pub use lifecycle::{Containers, LifecycleError, Running, Timing};
pub use reconcile::Reconciler;
