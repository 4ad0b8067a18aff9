//! The Slack source: verifies Slack's v0 request signature through the host, then parses Events
//! API callbacks, slash commands and interactive payloads.
//!
//! The order is fixed: the signed message is built and checked ([`signature`]) before the body is
//! parsed ([`parse`]), so an unsigned body is never looked at, not even a `url_verification`
//! handshake. Both steps are plain functions that run natively; only the HMAC comparison needs
//! the host, which holds the signing secret.

mod events;
mod form;
mod interactive;
pub mod parse;
pub mod signature;
mod slash_command;

use std::time::{SystemTime, UNIX_EPOCH};

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Reply, Request, Source};

/// The secret, in the `slack` section of `secrets.yml`, that Slack signs requests with (the app's
/// "Signing Secret").
const SIGNING_SECRET: &str = "signing_secret";

struct Slack;

impl Source for Slack {
    fn describe() -> PluginInfo {
        source::info(
            "slack",
            env!("CARGO_PKG_VERSION"),
            "Slack Events API callbacks, slash commands and interactive payloads",
        )
        .with_secrets([SIGNING_SECRET])
    }

    fn handle_webhook(request: Request) -> Result<Outcome, Error> {
        let (message, signature) = signature::signed_message(&request, unix_now()?)?;
        source::verify_hmac_sha256_hex(SIGNING_SECRET, &message, &signature)?;
        let outcome = parse::request(&request)?;
        if let Outcome::Events(_) = outcome {
            // Slack shows a slash command's answer to the user who typed it and wants an empty
            // 200 for interactive payloads, so stored events are acknowledged with nothing.
            source::acknowledge_with(&Reply {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            });
        }
        Ok(outcome)
    }
}

/// The wall clock in Unix seconds, for the replay window. The host provides the component's
/// clock, so the window is measured against the daemon's time.
fn unix_now() -> Result<i64, Error> {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::Internal("the host clock is set before 1970".into()))?;
    Ok(i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

mecha_plugin_sdk::export_source!(Slack);
