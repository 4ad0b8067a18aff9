//! The GitLab source: checks `X-Gitlab-Token` through the host, then parses the hook.
//!
//! GitLab does not sign its deliveries: it sends the secret token configured on the webhook in
//! a header. The host compares it with the operator's secret in constant time, so the secret
//! never enters the plugin, and the body of a delivery without the right token is never parsed.

pub mod parse;

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

/// The secret, in the `gitlab` section of `secrets.yml`, that GitLab sends as its token.
const WEBHOOK_SECRET: &str = "webhook_secret";

/// The header GitLab puts the webhook's secret token in.
const TOKEN_HEADER: &str = "X-Gitlab-Token";

struct GitLab;

impl Source for GitLab {
    fn describe() -> PluginInfo {
        source::info(
            "gitlab",
            env!("CARGO_PKG_VERSION"),
            "GitLab webhooks: merge requests, pushes, tags, notes, issues, pipelines, jobs, releases",
        )
        .with_secrets([WEBHOOK_SECRET])
    }

    fn handle_webhook(request: Request) -> Result<Outcome, Error> {
        source::verify_token_header(&request, TOKEN_HEADER, WEBHOOK_SECRET)?;
        Ok(Outcome::Events(parse::request(&request)?))
    }
}

mecha_plugin_sdk::export_source!(GitLab);
