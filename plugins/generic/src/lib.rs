//! The generic source: any JSON webhook, typed by a header.
//!
//! It verifies nothing itself, so the daemon requires its API key on these webhooks when one is
//! set.

pub mod parse;

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

struct Generic;

impl Source for Generic {
    fn describe() -> PluginInfo {
        source::info(
            "generic",
            env!("CARGO_PKG_VERSION"),
            "Any JSON webhook; the event type comes from a header",
        )
        .with_settings(["type_header"])
    }

    fn handle_webhook(request: Request) -> Result<Outcome, Error> {
        let header = source::setting("type_header");
        let header = header.as_deref().unwrap_or(parse::DEFAULT_TYPE_HEADER);
        let event_type = request.required_header(header)?;
        Ok(Outcome::Events(vec![parse::parse(
            event_type,
            &request.body,
        )?]))
    }
}

mecha_plugin_sdk::export_source!(Generic);
