//! Bindings of the `policy` world. Its imports are a subset of the source world's, so the shared
//! interfaces are taken from there and linked once.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
        exports: { default: async },
        with: {
            "mecha:plugin/types": crate::plugin::bindings::source::types,
            "mecha:plugin/log": crate::plugin::bindings::source::log,
            "mecha:plugin/config": crate::plugin::bindings::source::config,
        },
    });
}

pub use generated::{Policy, PolicyPre};
