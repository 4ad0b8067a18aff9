//! Bindings of the `responder` world. Its `mecha:plugin` imports are a subset of the source
//! world's, so they are taken from there and linked once; its outgoing HTTP is `wasi:http`,
//! linked from wasmtime-wasi-http.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "responder",
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

pub use generated::exports::mecha::plugin::responder_api::{ActionReceipt, Receipt, RespondError};
pub use generated::{Responder, ResponderPre};
