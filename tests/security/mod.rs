//! The daemon probed as an attacker would, over loopback: each test drives the real binary and
//! shows one defence holding.

/// Slow and oversized requests, the API's key, `Host` and cross-origin checks, event lists.
mod http;
/// Replayed signed deliveries, CLI redirects, plugin install inputs and names, file modes.
mod local;
/// Redaction of decoded and encoded secrets, reloads, URL credentials, config errors.
mod secrets;
/// Managed workers' `cwd`, container users, adapter keys and the outgoing HTTP gate.
mod workers;
