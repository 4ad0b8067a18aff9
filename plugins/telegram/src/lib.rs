//! The Telegram source: checks `X-Telegram-Bot-Api-Secret-Token` through the host, then parses
//! the update.
//!
//! Telegram does not sign updates: it sends the `secret_token` given to `setWebhook` in a header.
//! The host compares it with the operator's secret in constant time, so the secret never enters
//! the plugin, and the body of an update without the right token is never parsed.

pub mod parse;

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

/// The secret, in the `telegram` section of `secrets.yml`, given to `setWebhook` as
/// `secret_token`.
const SECRET_TOKEN: &str = "secret_token";

/// The header Telegram puts the webhook's secret token in.
const TOKEN_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

struct Telegram;

impl Source for Telegram {
    fn describe() -> PluginInfo {
        source::info(
            "telegram",
            env!("CARGO_PKG_VERSION"),
            "Telegram bot updates: messages and bot commands, channel posts, callback and inline queries",
        )
        .with_secrets([SECRET_TOKEN])
    }

    fn handle_webhook(request: Request) -> Result<Outcome, Error> {
        source::verify_token_header(&request, TOKEN_HEADER, SECRET_TOKEN)?;
        Ok(Outcome::Events(parse::request(&request)?))
    }
}

mecha_plugin_sdk::export_source!(Telegram);
