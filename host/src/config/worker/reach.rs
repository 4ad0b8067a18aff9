//! Endpoints and upstreams written as IP addresses, checked with the definition: one that mecha
//! never connects to (a metadata service, link-local, "this host", in any IPv4 or IPv6 spelling;
//! see [`crate::net::address`]) is refused at `mecha worker add`, not at the first task. A host
//! name is checked each time it is resolved, by the client that connects to it.

use crate::net::address::Reach;
use crate::net::resolve::check_url_literal;

/// Refuses `url` when its host is an IP address no worker may be reached at. The URL's shape
/// is `check_http_url`'s business; a URL that does not parse passes here. The message does not
/// repeat the URL, which may carry credentials.
pub(super) fn check_address(url: &str) -> Result<(), String> {
    check_url_literal(url, Reach::Internal).map_err(|refusal| {
        format!(
            "points at {}, {}; point it at the server itself",
            refusal.address, refusal.reason
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_literals_are_refused_in_any_spelling() {
        for (url, shown) in [
            ("http://169.254.169.254/latest", "169.254.169.254"),
            ("http://2852039166", "169.254.169.254"),
            ("http://0xa9.0xfe.0xa9.0xfe:80", "169.254.169.254"),
            ("http://169.254.170.2", "169.254.170.2"),
            ("http://100.100.100.200", "100.100.100.200"),
            ("http://[fd00:ec2::254]:8080", "fd00:ec2::254"),
            ("http://[::ffff:169.254.169.254]", "::ffff:169.254.169.254"),
            ("http://[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe"),
            ("http://user:hunter2@[fe80::1]", "fe80::1"),
            ("http://0.0.0.0:9000", "0.0.0.0"),
        ] {
            let err = check_address(url).expect_err(url);
            assert!(
                err.starts_with(&format!("points at {shown}, ")),
                "{url}: {err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn names_loopback_and_private_addresses_pass() {
        for url in [
            "http://127.0.0.1:9000",
            "http://[::1]:11434",
            "http://10.0.0.5",
            "http://metadata.google.internal",
            "https://api.openai.com/v1",
            "not a url",
        ] {
            assert_eq!(check_address(url), Ok(()), "{url}");
        }
    }
}
