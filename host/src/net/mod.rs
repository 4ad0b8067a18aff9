//! Outgoing connections: which addresses mecha may reach ([`address`]), how a host is
//! resolved once so that the address checked is the address connected to ([`resolve`]), and
//! the TLS settings of the connections mecha makes itself ([`tls`]).
//!
//! Every outgoing HTTP client goes through here: the plugin gate
//! (`plugin::host::http`), adapters' upstreams (`worker::adapter`) and the daemon's client for
//! worker endpoints (`worker::client`). They differ only in their [`address::Reach`].

pub mod address;
pub mod http1;
pub mod resolve;
pub mod tls;
