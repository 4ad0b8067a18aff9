//! Bindings of the `source` world.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "source",
        exports: { default: async },
        // Outgoing HTTP is wasmtime-wasi-http's, linked by `host::linker`.
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

pub use generated::exports::mecha::plugin::source_api::Outcome;
pub use generated::mecha::plugin::{acknowledge, config, log, types, verify};
pub use generated::{Source, SourcePre};
