//! Host-side bindings of the `mecha:plugin` worlds, one module per world, each generated from
//! `wit/` by a private `bindgen!`. The shared interfaces (`types`, `log`, `config`, `verify`) are
//! generated once, in [`source`], reused by the other worlds, and implemented once in
//! [`super::host`].

pub mod policy;
pub mod responder;
pub mod source;
pub mod trigger;
