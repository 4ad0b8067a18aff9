//! A source plugin in two versions, for the tests of upgrades, rollbacks and consent: built as
//! is it is 0.1.0 and asks for nothing; built with the `v2` feature it is 0.2.0 and asks for an
//! API origin. Each names its version in the type of the event it makes, so a test sees which
//! version served a webhook.

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

struct Versioned;

#[cfg(not(feature = "v2"))]
const VERSION: &str = "0.1.0";
#[cfg(feature = "v2")]
const VERSION: &str = "0.2.0";

impl Source for Versioned {
    fn describe() -> PluginInfo {
        let info = source::info("versioned", VERSION, "says which version it is");
        if cfg!(feature = "v2") {
            info.with_hosts(["https://api.upgrade.example"])
        } else {
            info
        }
    }

    fn handle_webhook(_request: Request) -> Result<Outcome, Error> {
        Ok(Outcome::Events(vec![source::event(format!(
            "version-{VERSION}"
        ))]))
    }
}

mecha_plugin_sdk::export_source!(Versioned);
