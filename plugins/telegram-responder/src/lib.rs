//! The Telegram responder: answers a Telegram message with a reply to it, in the chat (and forum
//! topic) it was sent in.
//!
//! The Bot API takes the bot token in the URL path (`/bot<token>/sendMessage`). The plugin
//! never holds it: it calls `{api_url}/bot/sendMessage` and the host, for the granted API origin
//! only, puts the token into the path, and hides it again in whatever Telegram answers. What to
//! call is decided in [`write_back`], a plain function that unit tests run against a recording
//! fake.

pub mod bot_api;
pub mod html;
pub mod write_back;

use mecha_plugin_sdk::responder::{
    self, PluginInfo, Receipt, RespondError, Responder, StoredEvent, TaskResult, http::HostClient,
};

/// The setting holding the Bot API base, e.g. `https://api.telegram.org`.
const API_URL: &str = "api_url";

/// Telegram's Bot API, used when `api_url` is not set.
const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// The secret the host puts into the path; its value never enters the plugin.
const TOKEN: &str = "token";

struct Telegram;

impl Responder for Telegram {
    fn describe() -> PluginInfo {
        responder::info(
            "telegram",
            env!("CARGO_PKG_VERSION"),
            "Answers Telegram messages with a reply in their chat",
        )
        .with_secrets([TOKEN])
        .with_settings([API_URL])
        .with_hosts([DEFAULT_API_URL])
    }

    /// `marker` is not used: Telegram has nowhere to keep it (see [`write_back`]).
    fn respond(
        event: StoredEvent,
        allowed: TaskResult,
        _marker: String,
    ) -> Result<Receipt, RespondError> {
        let api = responder::api_base(API_URL, DEFAULT_API_URL);
        write_back::write_back(&mut HostClient, &api, &event, &allowed)
    }
}

mecha_plugin_sdk::export_responder!(Telegram);
