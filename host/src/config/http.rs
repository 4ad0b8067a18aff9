//! The `http:` section of `config.yml`: how the daemon's HTTP server protects itself from
//! slow, oversized and cross-site requests.
//!
//! ```yaml
//! http:
//!   allowed_hosts: [mecha.example.com]   # Host names the API answers besides loopback and addr
//!   header_timeout_ms: 10000             # a request's headers must arrive within this
//!   body_timeout_ms: 20000               # and its body within this
//!   max_connections: 512                 # open connections; more wait to be accepted
//!   max_connections_per_ip: 64           # open connections of one peer address; more get 503
//!   connection_lifetime_ms: 300000       # then a connection finishes its request and closes
//!   body_memory_bytes: 67108864          # request bodies held while read, all together
//! ```
//!
//! Together they bound what a peer that never finishes can hold: at most
//! `max_connections_per_ip` of the `max_connections` slots, each for no longer than a timeout
//! without progress (headers, body, or an answer it does not read, which `body_timeout_ms`
//! bounds too) and never longer than `connection_lifetime_ms` plus a grace to finish; and a
//! share of `body_memory_bytes`.

use serde::Deserialize;

/// 10 s: a client sends its headers in one write; a provider's webhook arrives in
/// milliseconds. Anything slower is a stalled or hostile sender holding a connection.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;

/// 20 s: providers give up on a delivery after 10 s (GitHub) or 3 s (Slack), so a body still
/// arriving after twice GitHub's patience is not going to be acknowledged to anyone.
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 20_000;

/// 512: below the usual limit of 1,024 open files per process, leaving room for the database,
/// plugins, and the connections to workers and forges.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// 64, an eighth of the default `max_connections`: far more than a provider, a proxy or the
/// CLI keeps open at once, while one peer that holds its connections leaves seven eighths of
/// the slots to everyone else. Loopback counts too (see `max_connections_per_ip`).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;

/// 5 minutes: a request of this API is answered in seconds, so a connection kept longer is a
/// client's keep-alive pool (which simply reconnects) or a peer reading its answers just fast
/// enough never to stall.
pub const DEFAULT_CONNECTION_LIFETIME_MS: u64 = 300_000;

/// 64 MiB: a dozen maximum-size (5 MiB) webhooks at once, while a crowd of slow senders cannot
/// take the daemon's memory with them.
pub const DEFAULT_BODY_MEMORY_BYTES: usize = 64 * 1024 * 1024;

/// The daemon's HTTP protections; every key optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Host names and addresses the API answers to besides loopback (`localhost`, 127.0.0.0/8,
    /// `::1`) and the address in `addr`: the public name of a reverse proxy, or this machine's
    /// LAN address when `addr` is `0.0.0.0`. Requests naming any other host are refused, so a
    /// web page that rebinds its own name to this machine cannot use the API. Webhooks are
    /// answered under any name.
    pub allowed_hosts: Vec<String>,
    /// Milliseconds a request's headers may take to arrive (an idle kept-alive connection
    /// waits this long for its next request, too).
    pub header_timeout_ms: u64,
    /// Milliseconds a request's body may take to arrive once its headers are in; a slower one
    /// gets 408. Also how long a write of an answer may make no progress (a peer that does not
    /// read what it asked for) before the connection is closed.
    pub body_timeout_ms: u64,
    /// Connections served at once; further ones wait in the listen queue until one closes.
    /// No connection holds its slot for long: see the timeouts and `connection_lifetime_ms`.
    pub max_connections: usize,
    /// Connections one peer address may have open at once (an IPv6 peer counts by its /64);
    /// more are answered 503 and closed. Loopback counts too: the daemon listens there by
    /// default, where every local process and anything a local tunnel forwards is a loopback
    /// peer. Behind a reverse proxy on this machine, all its connections share its address:
    /// raise this up to `max_connections` and let the proxy limit each client. Values above
    /// `max_connections` act as `max_connections`.
    pub max_connections_per_ip: usize,
    /// Milliseconds a connection is kept; then it finishes its request in flight and closes
    /// (clients reconnect), and one still open `header_timeout_ms + body_timeout_ms` later is
    /// cut off. The same grace bounds how long stopping the daemon waits for requests.
    pub connection_lifetime_ms: u64,
    /// Bytes of request bodies held in memory while they are read, across all connections. The
    /// first 64 KiB of each body are not counted, so ordinary webhooks never wait; past them a
    /// body takes its declared length (or `max_body_bytes` when it declares none) at once, and
    /// when that is not free it waits, reading no further, up to `body_timeout_ms`, then gets 503.
    /// Must be at least `max_body_bytes`.
    pub body_memory_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            allowed_hosts: Vec::new(),
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_MS,
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            connection_lifetime_ms: DEFAULT_CONNECTION_LIFETIME_MS,
            body_memory_bytes: DEFAULT_BODY_MEMORY_BYTES,
        }
    }
}

impl HttpConfig {
    /// What is wrong with these settings, as (field under `http.`, message) pairs.
    pub fn problems(&self, max_body_bytes: usize) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let zero = [
            ("header_timeout_ms", self.header_timeout_ms == 0),
            ("body_timeout_ms", self.body_timeout_ms == 0),
            ("max_connections", self.max_connections == 0),
            ("max_connections_per_ip", self.max_connections_per_ip == 0),
            ("connection_lifetime_ms", self.connection_lifetime_ms == 0),
        ];
        for (field, is_zero) in zero {
            if is_zero {
                problems.push((format!("http.{field}"), "must be greater than 0".to_owned()));
            }
        }
        if self.body_memory_bytes < max_body_bytes {
            problems.push((
                "http.body_memory_bytes".to_owned(),
                format!(
                    "is {} but must be at least max_body_bytes ({max_body_bytes}), or no body of \
                     the largest allowed size could ever be read",
                    self.body_memory_bytes
                ),
            ));
        }
        for (index, host) in self.allowed_hosts.iter().enumerate() {
            if let Err(message) = check_host(host) {
                problems.push((format!("http.allowed_hosts[{index}]"), message));
            }
        }
        problems
    }
}

/// An allowed host is a bare name or address, as it appears in a `Host` header without its
/// port: `mecha.example.com`, `192.0.2.7`, `::1`.
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("is empty; write a host name such as mecha.example.com".to_owned());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let valid = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !valid {
        return Err(format!(
            "`{host}` is not a host name or address; write the name alone, without scheme, \
             port or path (mecha.example.com, not https://mecha.example.com:443/)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_consistent() {
        let config = HttpConfig::default();
        assert!(
            config
                .problems(crate::config::server::DEFAULT_MAX_BODY_BYTES)
                .is_empty()
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let config = HttpConfig {
            allowed_hosts: vec![
                "mecha.example.com".into(),
                "192.0.2.7".into(),
                "::1".into(),
                "https://x.example/".into(),
                String::new(),
            ],
            header_timeout_ms: 0,
            body_timeout_ms: 1,
            max_connections: 0,
            max_connections_per_ip: 0,
            connection_lifetime_ms: 0,
            body_memory_bytes: 10,
        };
        let fields: Vec<String> = config
            .problems(100)
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(
            fields,
            [
                "http.header_timeout_ms",
                "http.max_connections",
                "http.max_connections_per_ip",
                "http.connection_lifetime_ms",
                "http.body_memory_bytes",
                "http.allowed_hosts[3]",
                "http.allowed_hosts[4]",
            ]
        );
    }
}
