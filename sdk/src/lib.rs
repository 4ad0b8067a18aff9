//! Write mecha plugins in Rust.
//!
//! A mecha plugin is a WebAssembly component that implements one world of the `mecha:plugin`
//! WIT package (see `wit/` in the mecha repository). This crate generates the bindings of each
//! world and adds what every plugin of that kind needs, so that a plugin is one type and one
//! export macro. Enable the feature named after your plugin's world:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! mecha-plugin-sdk = { version = "0.1", features = ["source"] }
//! ```
//!
//! and build with `cargo build --target wasm32-wasip2 --release`.
//!
//! Keep the plugin's logic in plain functions over the types re-exported here: they compile
//! natively too, so they can be unit tested and benchmarked with ordinary `cargo test`. Only the
//! host imports (`verify`, `log`, `config`) need the wasm host; natively they are unreachable.

#[cfg(feature = "source")]
pub mod source;

#[cfg(feature = "policy")]
pub mod policy;

#[cfg(feature = "responder")]
pub mod responder;

#[cfg(feature = "trigger")]
pub mod trigger;

#[cfg(feature = "http")]
pub mod http;

pub mod hex;
