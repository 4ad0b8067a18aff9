//! Counts its calls in a global and answers one `tally` event with the count, its setting `tag`
//! and whether the header `x-token` matched its secret `token`. Every call must report 1 and
//! its own tag and secret: a count above 1 is an instance used twice, another call's tag or
//! secret is state that outlived its call.

use std::sync::atomic::{AtomicI64, Ordering};

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

static CALLS: AtomicI64 = AtomicI64::new(0);

struct Tally;

impl Source for Tally {
    fn describe() -> PluginInfo {
        source::info("tally", "0.1.0", "counts its calls")
            .with_secrets(["token"])
            .with_settings(["tag"])
    }

    fn handle_webhook(request: Request) -> Result<Outcome, Error> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let verified = source::verify_token_header(&request, "x-token", "token").is_ok();
        let event = source::event("tally")
            .attr("calls", calls)
            .attr("tag", source::setting("tag").unwrap_or_default())
            .attr("verified", verified);
        Ok(Outcome::Events(vec![event]))
    }
}

mecha_plugin_sdk::export_source!(Tally);
