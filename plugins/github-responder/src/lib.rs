//! The GitHub responder: writes a worker's allowed result back to the pull request or issue the
//! event came from, as comments, labels, a commit status and a suggested commit.
//!
//! The plugin never sees the token: the host adds `Authorization: Bearer <token>` to requests
//! for the granted API host (`https://api.github.com`, or the operator's `api_url`, which
//! `GITHUB_API_URL` sets). What to call is decided in [`write_back`], a plain function that unit
//! tests run against a recording fake.

pub mod write_back;

use mecha_plugin_sdk::responder::{
    self, PluginInfo, Receipt, RespondError, Responder, StoredEvent, TaskResult, http::HostClient,
};

/// The setting holding the API base, e.g. `https://ghe.example.com/api/v3`.
const API_URL: &str = "api_url";

/// GitHub.com's API, used when `api_url` is not set.
const DEFAULT_API_URL: &str = "https://api.github.com";

/// The secret the host injects as `Authorization: Bearer …`; its value never enters the plugin.
const TOKEN: &str = "token";

struct GitHub;

impl Responder for GitHub {
    fn describe() -> PluginInfo {
        responder::info(
            "github",
            env!("CARGO_PKG_VERSION"),
            "Writes results back to GitHub: comments, labels, commit statuses, suggested commits",
        )
        .with_secrets([TOKEN])
        .with_settings([API_URL])
        .with_hosts([DEFAULT_API_URL])
    }

    fn respond(
        event: StoredEvent,
        allowed: TaskResult,
        marker: String,
    ) -> Result<Receipt, RespondError> {
        let api = responder::api_base(API_URL, DEFAULT_API_URL);
        write_back::write_back(&mut HostClient, &api, &event, &allowed, &marker)
    }
}

mecha_plugin_sdk::export_responder!(GitHub);
