//! Which upstreams an adapter may reach (reference section 2.3).
//!
//! An adapter makes requests from inside the daemon, so an `upstream` pointing at a cloud
//! metadata service (169.254.169.254) would hand instance credentials to whoever writes worker
//! files. Every address the host resolves to is checked, and the adapter's client is then pinned
//! to those addresses, so a DNS answer that changes after the check (rebinding) is never used.
//! Loopback and private ranges stay allowed: a local Ollama is the common case. Which address is
//! which is [`crate::net::address`]'s to say.

use std::net::SocketAddr;

use reqwest::Url;

use super::AdapterError;
use crate::net::address::Reach;
use crate::net::resolve::{ResolveError, Resolver, literal};

/// An upstream that passed [`validate_upstream`].
#[derive(Debug, Clone)]
pub struct ValidatedUpstream {
    /// The base URL without a trailing slash; API paths are appended to it.
    pub(super) base: String,
    /// The host name when the URL names one (not an IP literal), for pinning its addresses.
    pub(super) domain: Option<String>,
    /// Every address the host resolved to, all of them allowed.
    pub(super) addresses: Vec<SocketAddr>,
}

/// Checks that `upstream` is an http(s) URL with a host, resolves the host, and refuses it when
/// any address is one mecha never connects to (metadata services, link-local, unspecified, and
/// their IPv6 translations: see [`crate::net::address`]).
pub async fn validate_upstream(upstream: &str) -> Result<ValidatedUpstream, AdapterError> {
    let url = Url::parse(upstream).map_err(|err| AdapterError::InvalidUpstream {
        reason: err.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AdapterError::InvalidUpstream {
            reason: format!("scheme `{}` is not http or https", url.scheme()),
        });
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| AdapterError::InvalidUpstream {
            reason: "no port".to_owned(),
        })?;
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => {
            return Err(AdapterError::InvalidUpstream {
                reason: "no host".to_owned(),
            });
        }
    };
    // The URL parser has already normalised IP literals (`2852039166`, `0xa9.0xfe.0xa9.0xfe`)
    // to their usual form; IPv6 literals keep their brackets, which `resolve` takes off.
    let domain = literal(host).is_none().then(|| host.to_owned());
    let addresses = Resolver::system()
        .resolve(host, port, Reach::Internal)
        .await
        .map_err(|err| match err {
            ResolveError::Lookup { host, source } => AdapterError::Resolve { host, source },
            ResolveError::NoAddress { host } => AdapterError::NoAddress { host },
            ResolveError::Refused { host, refusal } => AdapterError::ForbiddenAddress {
                host,
                address: refusal.address,
                reason: refusal.reason,
            },
        })?;
    Ok(ValidatedUpstream {
        base: upstream.trim_end_matches('/').to_owned(),
        domain,
        addresses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn refused(upstream: &str) -> AdapterError {
        validate_upstream(upstream).await.expect_err(upstream)
    }

    #[tokio::test]
    async fn metadata_and_link_local_addresses_are_refused() {
        for (upstream, address) in [
            ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("http://169.254.10.1:11434", "169.254.10.1"),
            ("http://0.0.0.0:11434", "0.0.0.0"),
            ("http://0.1.2.3", "0.1.2.3"),
            ("http://[fe80::1]:11434", "fe80::1"),
            ("http://[febf::1]", "febf::1"),
            ("http://[::ffff:169.254.169.254]", "::ffff:169.254.169.254"),
            ("http://[fd00:ec2::254]", "fd00:ec2::254"),
            ("http://100.100.100.200", "100.100.100.200"),
            ("http://169.254.170.2", "169.254.170.2"),
            ("http://[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe"),
            ("http://[2002:a9fe:a9fe::1]", "2002:a9fe:a9fe::1"),
        ] {
            let err = refused(upstream).await;
            assert!(
                matches!(err, AdapterError::ForbiddenAddress { .. }),
                "{upstream}: {err}"
            );
            assert!(err.to_string().contains(address), "{err}");
        }
    }

    #[tokio::test]
    async fn unusual_spellings_of_the_metadata_address_are_caught() {
        for upstream in [
            "http://169.254.169.254.",
            "http://2852039166",
            "http://0xa9.0xfe.0xa9.0xfe",
            "http://[0:0:0:0:0:ffff:a9fe:a9fe]",
        ] {
            let err = refused(upstream).await;
            assert!(
                matches!(err, AdapterError::ForbiddenAddress { .. }),
                "{upstream}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn loopback_private_and_names_are_allowed() {
        for upstream in [
            "http://127.0.0.1:11434",
            "http://10.0.0.5:8000/",
            "http://192.168.1.20",
            "https://172.16.0.1/openai",
            "http://[::1]:11434",
            "http://localhost:11434",
        ] {
            let validated = validate_upstream(upstream).await.expect(upstream);
            assert!(!validated.base.ends_with('/'));
            assert!(!validated.addresses.is_empty());
        }
        let validated = validate_upstream("http://localhost:1")
            .await
            .expect("localhost");
        assert_eq!(validated.domain.as_deref(), Some("localhost"));
    }

    #[tokio::test]
    async fn bad_urls_are_refused_without_echoing_them() {
        for upstream in [
            "ftp://user:hunter2@10.0.0.1",
            "not a url",
            "http://",
            "file:///etc/passwd",
            "unix:/run/ollama.sock",
        ] {
            let err = refused(upstream).await;
            assert!(
                matches!(err, AdapterError::InvalidUpstream { .. }),
                "{upstream}: {err}"
            );
            assert!(!err.to_string().contains("hunter2"));
        }
    }
}
