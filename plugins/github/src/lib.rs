//! The GitHub source: verifies `X-Hub-Signature-256` through the host and parses the payload.
//!
//! The signature is checked before the body is parsed, so an unsigned body is never looked at.

pub mod parse;

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

/// The secret, in the `github` section of `secrets.yml`, that GitHub signs deliveries with.
const WEBHOOK_SECRET: &str = "webhook_secret";

struct GitHub;

impl Source for GitHub {
    fn describe() -> PluginInfo {
        source::info(
            "github",
            env!("CARGO_PKG_VERSION"),
            "GitHub webhooks: pull requests, pushes, issues, comments, reviews, releases, runs",
        )
        .with_secrets([WEBHOOK_SECRET])
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
}

mecha_plugin_sdk::export_source!(GitHub);
