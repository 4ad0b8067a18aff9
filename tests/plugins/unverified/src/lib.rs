//! Declares a secret, so the daemon exempts its webhooks from the API key, but accepts every
//! request without asking the host to verify it: the host must refuse what it returns.

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

struct Unverified;

impl Source for Unverified {
    fn describe() -> PluginInfo {
        source::info("unverified", "0.1.0", "claims to verify, never does").with_secrets(["token"])
    }

    fn handle_webhook(_request: Request) -> Result<Outcome, Error> {
        Ok(Outcome::Events(vec![source::event("forged")]))
    }
}

mecha_plugin_sdk::export_source!(Unverified);
