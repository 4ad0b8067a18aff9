//! Signing deliveries the way providers do (GitHub, Slack), for `mecha dev send`, the tests and the benchmarks.
//! Verification is the host's `verify` import (`plugin::host::verify`), which uses the same MAC.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The lower-case hex HMAC-SHA256 of `body` under `secret`.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    crate::digest::hex(&mac.finalize().into_bytes())
}

/// The `X-Hub-Signature-256` header GitHub sends with `body`.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret, body))
}

/// The `X-Slack-Signature` header Slack sends with `body` at `timestamp` (its
/// `X-Slack-Request-Timestamp`): the v0 scheme signs `v0:<timestamp>:<body>`.
pub fn slack_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    format!("v0={}", hmac_sha256_hex(secret, &message))
}

#[cfg(test)]
mod tests {
    /// GitHub's published example.
    #[test]
    fn github_vector() {
        assert_eq!(
            super::github_signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    /// Slack's published example (its request-signing documentation).
    #[test]
    fn slack_vector() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            super::slack_signature(
                b"8f742231b10e8888abcd99yyyzzz85a5",
                1_531_420_618,
                body.as_bytes()
            ),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }
}
