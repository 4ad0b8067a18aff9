//! Trigger plugins: turn the host's clock ticks into events.
//!
//! The operator declares schedules (cron expressions or `@every <duration>`) in the daemon's
//! configuration; the host keeps time and calls [`Trigger::handle_tick`] once per due tick, with
//! the settings of that schedule readable through [`setting`]. Events are built with the same
//! helpers as a source's ([`crate::source::event`]).
//!
//! ```ignore
//! use mecha_plugin_sdk::trigger::{self, Error, Event, PluginInfo, Tick, Trigger};
//!
//! struct Hello;
//!
//! impl Trigger for Hello {
//!     fn describe() -> PluginInfo {
//!         trigger::info("hello", env!("CARGO_PKG_VERSION"), "Says hello on schedule")
//!     }
//!
//!     fn handle_tick(tick: Tick) -> Result<Vec<Event>, Error> {
//!         Ok(vec![trigger::event("hello").actor(tick.schedule)])
//!     }
//! }
//!
//! mecha_plugin_sdk::export_trigger!(Hello);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "trigger",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_trigger_world",
        default_bindings_module: "mecha_plugin_sdk::trigger::bindings",
        // One set of event types for sources and triggers, so the builders are shared.
        with: {
            "mecha:plugin/types@0.1.0": crate::source::bindings::mecha::plugin::types,
            // The same wasi:http (and the interfaces it uses) as the source world.
            "wasi:http/types@0.2.12": crate::source::bindings::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": crate::source::bindings::wasi::http::outgoing_handler,
            "wasi:io/error@0.2.12": crate::source::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::source::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": crate::source::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": crate::source::bindings::wasi::clocks::monotonic_clock,
        },
    });
}

pub use crate::source::{Attr, Error, Event, PluginInfo, Value, event, info};
pub use bindings::exports::mecha::plugin::trigger_api::Tick;
pub use bindings::mecha::plugin::log::Level;

use bindings::mecha::plugin::{config, log};

/// A trigger plugin: implement this on a type and export it with [`export_trigger!`].
pub trait Trigger {
    /// Name, version and the settings and hosts the plugin uses.
    fn describe() -> PluginInfo;

    /// The events of one due tick of a schedule; an empty list skips it.
    fn handle_tick(tick: Tick) -> Result<Vec<Event>, Error>;
}

/// Exports a type implementing [`Trigger`] as the component's `trigger-api`.
///
/// As with sources, the export exists only in wasm builds; natively the plugin is a library.
#[macro_export]
macro_rules! export_trigger {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Exports;
            impl $crate::trigger::bindings::exports::mecha::plugin::trigger_api::Guest for Exports {
                fn describe() -> $crate::trigger::PluginInfo {
                    <$ty as $crate::trigger::Trigger>::describe()
                }
                fn handle_tick(
                    tick: $crate::trigger::Tick,
                ) -> Result<Vec<$crate::trigger::Event>, $crate::trigger::Error> {
                    <$ty as $crate::trigger::Trigger>::handle_tick(tick)
                }
            }
            $crate::trigger::bindings::__export_trigger_world!(Exports with_types_in $crate::trigger::bindings);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::trigger::Trigger>::handle_tick;
        };
    };
}

/// The setting `key` of the schedule being ticked (or of the plugin, when the schedule does not
/// set it).
pub fn setting(key: &str) -> Option<String> {
    config::get(key)
}

/// Writes a line to the daemon's log, tagged with this plugin.
pub fn log(level: Level, message: &str) {
    log::emit(level, message, &[]);
}
