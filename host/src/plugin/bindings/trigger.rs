//! Bindings of the `trigger` world. Its `mecha:plugin` imports are a subset of the source
//! world's, so they are taken from there and linked once.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "trigger",
        exports: { default: async },
        with: {
            "mecha:plugin/types": crate::plugin::bindings::source::types,
            "mecha:plugin/log": crate::plugin::bindings::source::log,
            "mecha:plugin/config": crate::plugin::bindings::source::config,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

pub use generated::exports::mecha::plugin::trigger_api::Tick;
pub use generated::{Trigger, TriggerPre};
