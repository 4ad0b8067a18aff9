//! Bindings of the `source` world.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "source",
        exports: { default: async },
    });
}

pub use generated::exports::mecha::plugin::source_api::Outcome;
pub use generated::mecha::plugin::{acknowledge, config, log, types, verify};
pub use generated::{Source, SourcePre};
