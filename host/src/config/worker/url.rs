//! What a worker's `endpoint` and an adapter's `upstream` must look like: an `http://` or
//! `https://` URL with a host.
//!
//! Only the shape is checked here, with no URL crate: scheme, a non-empty host (a name, an IPv4
//! address or a bracketed IPv6 address) and a numeric port when one is given. Where the host
//! resolves to is a question for the code that connects to it.
//!
//! The URL is checked after `${VAR}` references are resolved, so it may hold a password
//! (`http://user:${PASS}@host`); an error quotes it with its user part hidden.

use crate::redact::without_url_credentials;

/// Checks the shape of an HTTP URL; the error says what is wrong with `text`, quoting it without
/// its credentials.
pub fn check_http_url(text: &str) -> Result<(), String> {
    let problem = |what: &str| Err(format!("`{}` {what}", without_url_credentials(text)));
    if text.chars().any(char::is_whitespace) {
        // Not quoted: whitespace would end the user part where the redactor looks for it.
        return Err("the URL contains whitespace; remove it (write a space as %20)".to_owned());
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return problem("is not a URL; write it like http://127.0.0.1:8080");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return problem("must start with http:// or https://");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials in the URL (`user:pass@`) are allowed; the host follows the last `@`.
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((host, after)) => match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return problem("has text after its IPv6 address"),
                },
            },
            None => return problem("has an IPv6 address without its closing `]`"),
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return problem("has no host");
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return problem("has a port that is not a number from 0 to 65535");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_urls_with_a_host() {
        for url in [
            "http://127.0.0.1:8080",
            "https://api.example.com/v1",
            "http://localhost",
            "HTTP://host:1/x?y#z",
            "http://user:pass@host:80",
            "http://[::1]:11434",
            "http://[fe80::1]",
        ] {
            assert_eq!(check_http_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn refuses_other_schemes_missing_hosts_and_bad_ports() {
        for (url, expected) in [
            ("ftp://host", "must start with http:// or https://"),
            ("host:8080", "is not a URL"),
            ("http://", "has no host"),
            ("http://:8080", "has no host"),
            ("http:///path", "has no host"),
            ("http://host:http", "port that is not a number"),
            ("http://host:99999", "port that is not a number"),
            ("http://[::1", "without its closing"),
            ("http://[::1]x", "text after its IPv6 address"),
            ("http://a b", "contains whitespace"),
        ] {
            let err = check_http_url(url).expect_err(url);
            assert!(err.contains(expected), "{url}: {err}");
        }
    }

    #[test]
    fn errors_never_quote_credentials() {
        for url in [
            "http://user:hunter2-pass@host:http",
            "http://hunter2-pass@host:99999",
            "http://user:hunter2-pass@[::1",
        ] {
            let err = check_http_url(url).expect_err(url);
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("[REDACTED]@"), "{err}");
        }
    }
}
