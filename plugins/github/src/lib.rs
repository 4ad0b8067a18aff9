//! The GitHub source: verifies `X-Hub-Signature-256` through the host and parses the payload;
//! hydrates pull request events with their diff and changed files.
//!
//! The signature is checked before the body is parsed, so an unsigned body is never looked at.
//! Hydration runs only when the operator gave this source a token: the host then grants the API
//! origin (`https://api.github.com`, or the `api_url` setting) and adds the token to requests
//! itself, so the plugin never holds it. What to call is decided in [`hydrate`], a plain
//! function that unit tests run against a recording fake.

pub mod hydrate;
mod link;
pub mod parse;

use mecha_plugin_sdk::http::{self, HostClient};
use mecha_plugin_sdk::source::{
    self, Error, Event, Level, Outcome, PluginInfo, Request, Source, Value,
};

/// The secret, in the `github` section of `secrets.yml`, that GitHub signs deliveries with.
const WEBHOOK_SECRET: &str = "webhook_secret";

/// The setting holding the API base, e.g. `https://ghe.example.com/api/v3`.
const API_URL: &str = "api_url";

struct GitHub;

impl Source for GitHub {
    fn describe() -> PluginInfo {
        source::info(
            "github",
            env!("CARGO_PKG_VERSION"),
            "GitHub webhooks: pull requests, pushes, issues, comments, reviews, releases, runs",
        )
        .with_secrets([WEBHOOK_SECRET])
        .with_settings([API_URL])
        .with_hosts([hydrate::DEFAULT_API_URL])
    }

    fn handle_webhook(request: Request) -> Result<Outcome, Error> {
        let signature = request
            .header("X-Hub-Signature-256")
            .ok_or_else(|| Error::Unauthorized("missing X-Hub-Signature-256 header".into()))?;
        let signature = signature.strip_prefix("sha256=").ok_or_else(|| {
            Error::Unauthorized("X-Hub-Signature-256 must start with sha256=".into())
        })?;
        source::verify_hmac_sha256_hex(WEBHOOK_SECRET, &request.body, signature)?;
        let event_name = request.required_header("X-GitHub-Event")?;
        let delivery = request.header("X-GitHub-Delivery");
        Ok(Outcome::Events(vec![parse::parse(
            event_name,
            delivery,
            &request.body,
        )?]))
    }

    fn hydrate(event: Event) -> Result<Event, Error> {
        let api = http::base_url(
            source::setting(API_URL).as_deref(),
            hydrate::DEFAULT_API_URL,
        );
        let event = hydrate::hydrate(&mut HostClient, &api, event);
        // The task runs anyway; the log tells the operator why its prompt lacks the diff.
        for attr in ["diff_error", "file_list_error"] {
            if let Some(Value::Text(message)) = event.get_attr(attr) {
                source::log(
                    Level::Warn,
                    &format!("hydrating {}: {message}", event.subject),
                );
            }
        }
        Ok(event)
    }
}

mecha_plugin_sdk::export_source!(GitHub);
