//! The Slack responder: answers a Slack mention, message or slash command where it was asked,
//! in the message's thread or at the command's `response_url`, and turns labels into emoji
//! reactions on the asking message.
//!
//! The plugin never sees the bot token: the host adds `Authorization: Bearer <token>` to
//! requests for the Web API's origin (`https://slack.com`, or the operator's `api_url`) and to
//! nothing else; a `response_url` needs no token and reaches only Slack's response host
//! (`https://hooks.slack.com`). What to call is decided in [`write_back`], a plain function
//! that unit tests run against a recording fake.

pub mod mrkdwn;
pub mod web_api;
pub mod write_back;

use mecha_plugin_sdk::responder::{
    self, PluginInfo, Receipt, RespondError, Responder, StoredEvent, TaskResult, http::HostClient,
};
use write_back::ResponseType;

/// The setting holding the Web API base, e.g. `https://slack.com/api`.
const API_URL: &str = "api_url";

/// The setting choosing who sees answers at a `response_url`: `ephemeral` or `in_channel`.
const RESPONSE_TYPE: &str = "response_type";

/// Slack's Web API, used when `api_url` is not set.
const DEFAULT_API_URL: &str = "https://slack.com/api";

/// The Web API's origin, where the token goes, and the host of `response_url`s, where it does
/// not. The host grants the first as the API and the others without credentials.
const HOSTS: [&str; 2] = ["https://slack.com", "https://hooks.slack.com"];

/// The secret the host injects as `Authorization: Bearer …`; its value never enters the plugin.
const TOKEN: &str = "token";

struct Slack;

impl Responder for Slack {
    fn describe() -> PluginInfo {
        responder::info(
            "slack",
            env!("CARGO_PKG_VERSION"),
            "Answers Slack mentions, messages and slash commands in their thread; labels become reactions",
        )
        .with_secrets([TOKEN])
        .with_settings([API_URL, RESPONSE_TYPE])
        .with_hosts(HOSTS)
    }

    fn respond(
        event: StoredEvent,
        allowed: TaskResult,
        marker: String,
    ) -> Result<Receipt, RespondError> {
        let api = web_api_base(&responder::api_base(API_URL, DEFAULT_API_URL));
        let response_type = ResponseType::parse(responder::setting(RESPONSE_TYPE).as_deref());
        write_back::write_back(
            &mut HostClient,
            &api,
            response_type,
            &event,
            &allowed,
            &marker,
        )
    }
}

/// The Web API under `api_url`: Slack serves it under `/api`, so an origin alone
/// (`https://slack.com`, as the host passes the plugin's declared origin) means its `/api`.
pub fn web_api_base(api_url: &str) -> String {
    match api_url.split_once("://") {
        Some((_, rest)) if !rest.contains('/') => format!("{api_url}/api"),
        _ => api_url.to_owned(),
    }
}

mecha_plugin_sdk::export_responder!(Slack);

#[cfg(test)]
mod tests {
    #[test]
    fn an_origin_alone_means_its_api_path() {
        assert_eq!(
            super::web_api_base("https://slack.com"),
            "https://slack.com/api"
        );
        assert_eq!(
            super::web_api_base("https://slack.com/api"),
            "https://slack.com/api"
        );
        assert_eq!(
            super::web_api_base("http://127.0.0.1:9/x/api"),
            "http://127.0.0.1:9/x/api"
        );
    }
}
