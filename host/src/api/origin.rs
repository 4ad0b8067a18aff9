//! Keeps web pages out of the API: the `Host` allow-list and the cross-origin checks.
//!
//! The API is for mecha's CLI and the operator's scripts, and only the dashboard's pages (`/ui`)
//! are for browsers, yet every page the operator opens can send requests to `127.0.0.1:21212`.
//! Two holes are closed here:
//!
//! - **DNS rebinding**: a page at `rebind.attacker.example` re-resolves its own name to
//!   127.0.0.1 and reads the answers, since to the browser they are same-origin. Its requests
//!   still carry `Host: rebind.attacker.example`, so only the names this machine is known by
//!   (loopback, the listen address, `http.allowed_hosts`) are answered.
//! - **Cross-origin requests**: browsers send a "simple" cross-origin request (a form, a
//!   `text/plain` fetch) without asking first. Browsers mark those with `Origin` and
//!   `Sec-Fetch-Site`; a request naming any other origin is refused before it reaches a
//!   handler.
//!
//! Webhooks are exempt: providers reach them under the public name of whatever proxy is in
//! front, and each one proves itself by its signature or by the API key. So are `/health` and
//! `/metrics`, which are open anyway and which probes and scrapers reach by a pod's or a
//! machine's address that no configuration names.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState};

/// The host names and addresses the API answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// Lower-case names and normalized addresses from the configuration.
    extra: Vec<String>,
    /// The address the daemon listens on, when it is one address (not `0.0.0.0` or `::`).
    listen: Option<IpAddr>,
}

impl AllowedHosts {
    /// Loopback names and addresses, `listen`'s address, and `extra` (`http.allowed_hosts`).
    pub fn new(listen: SocketAddr, extra: &[String]) -> AllowedHosts {
        AllowedHosts {
            extra: extra.iter().map(|host| normalize(host)).collect(),
            listen: (!listen.ip().is_unspecified()).then_some(listen.ip()),
        }
    }

    /// Whether `host` (a `Host` header's name or address, without port) is this daemon.
    pub fn allows(&self, host: &str) -> bool {
        let host = normalize(host);
        if host == "localhost" || self.extra.contains(&host) {
            return true;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || Some(ip) == self.listen,
            Err(_) => false,
        }
    }
}

/// Lower case, without the brackets of an IPv6 literal or a trailing dot; addresses in their
/// canonical text form.
fn normalize(host: &str) -> String {
    let host = host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host,
    }
}

/// Middleware: refuses API requests that name a foreign host or come from another origin.
pub async fn refuse_foreign(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path.starts_with("/webhook/") || path == "/health" || path == "/metrics" {
        return next.run(request).await;
    }
    match check(&state.hosts, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

fn check(hosts: &AllowedHosts, headers: &HeaderMap) -> Result<(), ApiError> {
    let host_header = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("send a Host header naming this daemon"))?;
    let authority: Authority = host_header
        .parse()
        .map_err(|_| ApiError::bad_request("the Host header is not a host name"))?;
    if !hosts.allows(authority.host()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this daemon does not answer to the host in the Host header; reach it as localhost \
             or 127.0.0.1, or add the name to http.allowed_hosts in config.yml",
        ));
    }
    let cross_origin = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "requests from web pages of other origins are refused: the API is for mecha's CLI \
             and scripts, not browsers",
        )
    };
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().map_err(|_| cross_origin())?;
        if !is_same_origin(origin, host_header) {
            return Err(cross_origin());
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        // `none`: the user typed the URL or opened a link from elsewhere (a terminal);
        // `same-origin`: a page of this host (the dashboard's).
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err(cross_origin());
        }
    }
    Ok(())
}

/// Whether `origin` (`scheme://host[:port]`) is the origin the request was sent to.
fn is_same_origin(origin: &str, host_header: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        origin
            .get(..scheme.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme))
            && origin[scheme.len()..].eq_ignore_ascii_case(host_header)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn hosts() -> AllowedHosts {
        AllowedHosts::new(
            "192.0.2.7:21212".parse().expect("addr"),
            &["Mecha.Example.com".to_owned()],
        )
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).expect("value"));
        }
        headers
    }

    fn status(pairs: &[(&'static str, &str)]) -> Option<u16> {
        check(&hosts(), &headers(pairs))
            .err()
            .map(|err| err.status().as_u16())
    }

    #[test]
    fn loopback_the_listen_address_and_configured_names_are_allowed() {
        let hosts = hosts();
        for host in [
            "localhost",
            "LOCALHOST.",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "192.0.2.7",
            "mecha.example.com",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
        for host in [
            "rebind.attacker.example",
            "192.0.2.8",
            "0.0.0.0",
            "example.com",
            "localhost.attacker.example",
        ] {
            assert!(!hosts.allows(host), "{host}");
        }
        let any = AllowedHosts::new("0.0.0.0:21212".parse().expect("addr"), &[]);
        assert!(!any.allows("0.0.0.0"), "the wildcard address is no host");
        assert!(any.allows("127.0.0.1"));
    }

    #[test]
    fn foreign_hosts_and_other_origins_are_refused() {
        assert_eq!(status(&[("host", "127.0.0.1:21212")]), None);
        assert_eq!(status(&[("host", "[::1]:21212")]), None);
        assert_eq!(status(&[]), Some(400));
        assert_eq!(
            status(&[("host", "rebind.attacker.example:21212")]),
            Some(403)
        );
        assert_eq!(
            status(&[
                ("host", "127.0.0.1:21212"),
                ("origin", "http://evil.example")
            ]),
            Some(403)
        );
        assert_eq!(
            status(&[("host", "127.0.0.1:21212"), ("origin", "null")]),
            Some(403)
        );
        assert_eq!(
            status(&[
                ("host", "127.0.0.1:21212"),
                ("origin", "http://127.0.0.1:3000")
            ]),
            Some(403),
            "another port is another origin"
        );
        assert_eq!(
            status(&[
                ("host", "127.0.0.1:21212"),
                ("origin", "http://127.0.0.1:21212")
            ]),
            None
        );
        assert_eq!(
            status(&[
                ("host", "127.0.0.1:21212"),
                ("sec-fetch-site", "cross-site")
            ]),
            Some(403)
        );
        assert_eq!(
            status(&[("host", "localhost:21212"), ("sec-fetch-site", "same-site")]),
            Some(403)
        );
        assert_eq!(
            status(&[("host", "localhost:21212"), ("sec-fetch-site", "none")]),
            None
        );
    }
}
