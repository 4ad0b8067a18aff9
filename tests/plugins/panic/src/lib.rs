//! Panics on every webhook whose body is not `ok`: the panic must fail that call only.

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

struct Panic;

impl Source for Panic {
    fn describe() -> PluginInfo {
        source::info("panic", "0.1.0", "panics unless the body is ok")
    }

    fn handle_webhook(request: Request) -> Result<Outcome, Error> {
        if request.body != b"ok" {
            panic!("this plugin panics on purpose");
        }
        Ok(Outcome::Events(vec![source::event("ok")]))
    }
}

mecha_plugin_sdk::export_source!(Panic);
