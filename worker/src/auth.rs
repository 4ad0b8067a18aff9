//! The API key that guards a worker: `WORKER_API_KEY`, presented by mecha on every call but
//! `/health`.
//!
//! A worker published beyond loopback (`expose: true`) runs whatever prompt it is sent inside the
//! project's checkout, so the key is what stands between the network and the agent. It is
//! compared in constant time and never printed.

use std::fmt;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

/// The header the reference runtime also accepts, for clients that cannot send a bearer token.
const API_KEY_HEADER: &str = "x-api-key";

/// A worker's API key. Its `Debug` shows no part of it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: &str) -> Self {
        Self(key.to_owned())
    }

    /// Whether `given` is the key, in time that does not depend on where they differ.
    pub fn matches(&self, given: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(given).into()
    }

    /// Whether the request carries the key, as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|value| bearer_token(value.as_bytes()));
        let api_key = headers.get(API_KEY_HEADER).map(|value| value.as_bytes());
        bearer.is_some_and(|token| self.matches(token))
            || api_key.is_some_and(|key| self.matches(key))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 9110, section 11.1).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_key_matches_only_itself() {
        let key = ApiKey::new("s3cret");
        assert!(key.matches(b"s3cret"));
        assert!(!key.matches(b"s3cre"));
        assert!(!key.matches(b"s3crets"));
        assert!(!key.matches(b"S3CRET"));
        assert!(!key.matches(b""));
    }

    #[test]
    fn either_header_admits() {
        let key = ApiKey::new("k1");
        assert!(key.admits(&headers(&[("authorization", "Bearer k1")])));
        assert!(key.admits(&headers(&[("authorization", "bearer k1")])));
        assert!(key.admits(&headers(&[("x-api-key", "k1")])));
        assert!(key.admits(&headers(&[
            ("authorization", "Bearer wrong"),
            ("x-api-key", "k1")
        ])));
    }

    #[test]
    fn anything_else_is_refused() {
        let key = ApiKey::new("k1");
        for pairs in [
            &[][..],
            &[("authorization", "k1")][..],
            &[("authorization", "Basic k1")][..],
            &[("authorization", "Bearer  k1")][..],
            &[("authorization", "Bearer k2")][..],
            &[("x-api-key", "Bearer k1")][..],
        ] {
            assert!(!key.admits(&headers(pairs)), "{pairs:?}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", ApiKey::new("s3cret")), "ApiKey(..)");
    }
}
