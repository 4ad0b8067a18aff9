//! Loops forever on every webhook: the host's deadline must stop it.

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

struct Spin;

impl Source for Spin {
    fn describe() -> PluginInfo {
        source::info("spin", "0.1.0", "never returns")
    }

    fn handle_webhook(_request: Request) -> Result<Outcome, Error> {
        let mut turns = 0u64;
        loop {
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
    }
}

mecha_plugin_sdk::export_source!(Spin);
