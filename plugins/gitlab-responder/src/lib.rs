//! The GitLab responder: writes a worker's allowed result back to the merge request or issue the
//! event came from, as notes, labels, a commit status and a suggested commit.
//!
//! The plugin never sees the token: the host adds `PRIVATE-TOKEN: <token>` to requests for the
//! granted host (`https://gitlab.com`, or the host of the operator's `api_url`). What to call is
//! decided in [`write_back`], a plain function that unit tests run against a recording fake.

pub mod write_back;

use mecha_plugin_sdk::responder::{
    self, PluginInfo, Receipt, RespondError, Responder, StoredEvent, TaskResult, http::HostClient,
};

/// The setting holding the API base, e.g. `https://gitlab.example.com/api/v4`.
const API_URL: &str = "api_url";

/// GitLab.com's API, used when `api_url` is not set.
const DEFAULT_API_URL: &str = "https://gitlab.com/api/v4";

/// The origin of [`DEFAULT_API_URL`], the host the plugin asks to call.
const DEFAULT_HOST: &str = "https://gitlab.com";

/// The secret the host injects as `PRIVATE-TOKEN`; its value never enters the plugin.
const TOKEN: &str = "token";

struct GitLab;

impl Responder for GitLab {
    fn describe() -> PluginInfo {
        responder::info(
            "gitlab",
            env!("CARGO_PKG_VERSION"),
            "Writes results back to GitLab: notes, labels, commit statuses, suggested commits",
        )
        .with_secrets([TOKEN])
        .with_settings([API_URL])
        .with_hosts([DEFAULT_HOST])
    }

    fn respond(
        event: StoredEvent,
        allowed: TaskResult,
        marker: String,
    ) -> Result<Receipt, RespondError> {
        let api = write_back::rest_api(&responder::api_base(API_URL, DEFAULT_API_URL));
        write_back::write_back(&mut HostClient, &api, &event, &allowed, &marker)
    }
}

mecha_plugin_sdk::export_responder!(GitLab);
