//! `GET /plugins`: the plugins the daemon runs at this moment, with their world, version and
//! digest, so an operator (or a deploy script) can see that an install or upgrade took effect.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::ApiState;
use crate::plugin::{Origin, World};

pub fn router() -> Router<ApiState> {
    Router::new().route("/plugins", get(list))
}

/// One running plugin; what it runs with is its own (the grant narrows what it declares).
#[derive(Serialize)]
struct Running {
    name: String,
    world: World,
    version: String,
    sha256: String,
    /// `bundled` or `installed`.
    origin: &'static str,
    hosts: Vec<String>,
    secrets: Vec<String>,
}

async fn list(State(state): State<ApiState>) -> Json<Vec<Running>> {
    let registry = state.plugins.current();
    Json(
        registry
            .iter()
            .map(|plugin| Running {
                name: plugin.info.name.clone(),
                world: plugin.world,
                version: plugin.info.version.clone(),
                sha256: plugin.sha256.clone(),
                origin: match plugin.origin {
                    Origin::Bundled => "bundled",
                    Origin::Installed(_) => "installed",
                },
                hosts: plugin.info.hosts.clone(),
                secrets: plugin.info.secrets.clone(),
            })
            .collect(),
    )
}
