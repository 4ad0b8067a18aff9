//! Allocates without end on every webhook: the host's memory cap must stop it.

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

struct Bomb;

impl Source for Bomb {
    fn describe() -> PluginInfo {
        source::info("bomb", "0.1.0", "allocates until stopped")
    }

    fn handle_webhook(_request: Request) -> Result<Outcome, Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

mecha_plugin_sdk::export_source!(Bomb);
