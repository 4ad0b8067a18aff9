//! The plugins built into the `mecha` binary, so a fresh install runs with no other files.
//! `build.rs` compiles them from `plugins/` for wasm32-wasip2.

/// (file label, component bytes) of each bundled plugin.
pub const BUNDLED: &[(&str, &[u8])] = &[
    (
        "github.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/github.wasm")),
    ),
    (
        "generic.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/generic.wasm")),
    ),
    (
        "gitlab.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/gitlab.wasm")),
    ),
    (
        "telegram.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/telegram.wasm")),
    ),
    (
        "slack.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/slack.wasm")),
    ),
    (
        "cron.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/cron.wasm")),
    ),
    (
        "rules.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/rules.wasm")),
    ),
    (
        "github-responder.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/github-responder.wasm")),
    ),
    (
        "gitlab-responder.wasm",
        include_bytes!(concat!(env!("OUT_DIR"), "/gitlab-responder.wasm")),
    ),
];
