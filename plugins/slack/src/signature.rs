//! Slack's v0 request signing, up to the HMAC: which bytes are signed, and whether the request is
//! fresh enough to be checked at all.
//!
//! Slack signs `v0:<X-Slack-Request-Timestamp>:<raw body>` with the app's signing secret and sends
//! `X-Slack-Signature: v0=<hex HMAC-SHA256>`. The HMAC itself runs on the host, which holds the
//! secret; this module only builds the message and refuses stale or malformed headers, so it is
//! pure and tested natively against Slack's published vector.

use mecha_plugin_sdk::source::{Error, Request};

/// The header carrying `v0=<hex signature>`.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";

/// The header carrying the Unix time (seconds) at which Slack signed the request.
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";

/// 5 minutes, Slack's documented window: a captured request replayed later than this is refused
/// even though its signature is valid. It applies both ways, so a sender clock running ahead does
/// not buy an attacker a longer window.
pub const REPLAY_WINDOW_SECS: u64 = 300;

/// The version prefix of both the signature and the signed message; the only one Slack uses.
const VERSION: &str = "v0";

/// The bytes Slack signed (`v0:<timestamp>:<body>`) and the hex part of `X-Slack-Signature`,
/// for the host to compare with its own HMAC.
///
/// Every failure is `unauthorized`: a request without a usable signature is not Slack's, whatever
/// its body says. Errors name the header but never echo the signature.
pub fn signed_message(request: &Request, now_unix: i64) -> Result<(Vec<u8>, String), Error> {
    let signature = required_header(request, SIGNATURE_HEADER)?;
    let timestamp = required_header(request, TIMESTAMP_HEADER)?;
    let hex = signature
        .strip_prefix(VERSION)
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or_else(|| {
            Error::Unauthorized(format!("{SIGNATURE_HEADER} must start with {VERSION}="))
        })?;
    let signed_at = unix_seconds(timestamp)?;
    if now_unix.abs_diff(signed_at) > REPLAY_WINDOW_SECS {
        return Err(Error::Unauthorized(format!(
            "request timestamp is outside the {REPLAY_WINDOW_SECS} s replay window; \
             check that this host's clock is synchronised"
        )));
    }
    let mut message = Vec::with_capacity(VERSION.len() + timestamp.len() + request.body.len() + 2);
    message.extend_from_slice(VERSION.as_bytes());
    message.push(b':');
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b':');
    message.extend_from_slice(&request.body);
    Ok((message, hex.to_owned()))
}

/// Like [`Request::required_header`], but a missing signing header is `unauthorized`, not
/// `bad-request`: it means the request is unsigned.
fn required_header<'a>(request: &'a Request, name: &str) -> Result<&'a str, Error> {
    request
        .header(name)
        .ok_or_else(|| Error::Unauthorized(format!("missing {name} header")))
}

/// The timestamp header as seconds. Only plain digits are accepted: Slack sends nothing else, and
/// a sign, spaces or a fraction would make the text that is signed differ from the number that
/// is checked.
fn unix_seconds(text: &str) -> Result<i64, Error> {
    let invalid =
        || Error::Unauthorized(format!("{TIMESTAMP_HEADER} must be a Unix time in seconds"));
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    text.parse().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    /// Slack's published test vector (see tests/fixtures/slack/README.md).
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: i64 = 1531420618;
    const BODY: &[u8] = include_bytes!("../../../tests/fixtures/slack/signature_vector.form");
    const EXPECTED_HEX: &str = "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn request(headers: &[(&str, &str)]) -> Request {
        Request::post(headers, BODY)
    }

    fn signed(timestamp: &str, signature: &str) -> Request {
        request(&[(TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)])
    }

    fn vector() -> Request {
        signed(&TIMESTAMP.to_string(), &format!("v0={EXPECTED_HEX}"))
    }

    fn unauthorized(result: Result<(Vec<u8>, String), Error>) -> String {
        match result {
            Err(Error::Unauthorized(message)) => message,
            other => panic!("expected unauthorized, got {other:?}"),
        }
    }

    #[test]
    fn builds_the_message_of_slacks_published_vector() {
        let (message, hex) = signed_message(&vector(), TIMESTAMP).expect("valid vector");
        let mut expected = b"v0:1531420618:".to_vec();
        expected.extend_from_slice(BODY);
        assert_eq!(message, expected);
        assert_eq!(hex, EXPECTED_HEX);
    }

    #[test]
    fn the_message_hashes_to_the_published_signature() {
        let (message, hex) = signed_message(&vector(), TIMESTAMP).expect("valid vector");
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
        mac.update(&message);
        let computed: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(computed, hex);
    }

    #[test]
    fn the_replay_window_is_300_seconds_either_way() {
        for now in [TIMESTAMP - 300, TIMESTAMP + 300] {
            assert!(signed_message(&vector(), now).is_ok(), "now = {now}");
        }
        for now in [TIMESTAMP - 301, TIMESTAMP + 301, 0, i64::MIN, i64::MAX] {
            let message = unauthorized(signed_message(&vector(), now));
            assert!(message.contains("300 s replay window"), "{message}");
        }
    }

    #[test]
    fn missing_headers_are_named() {
        let signature = format!("v0={EXPECTED_HEX}");
        let message = unauthorized(signed_message(
            &request(&[(SIGNATURE_HEADER, &signature)]),
            TIMESTAMP,
        ));
        assert!(message.contains(TIMESTAMP_HEADER), "{message}");
        let message = unauthorized(signed_message(
            &request(&[(TIMESTAMP_HEADER, "1531420618")]),
            TIMESTAMP,
        ));
        assert!(message.contains(SIGNATURE_HEADER), "{message}");
    }

    #[test]
    fn header_names_match_in_any_case() {
        let request = request(&[
            ("x-slack-request-timestamp", "1531420618"),
            ("X-SLACK-SIGNATURE", &format!("v0={EXPECTED_HEX}")),
        ]);
        assert!(signed_message(&request, TIMESTAMP).is_ok());
    }

    #[test]
    fn a_signature_without_the_v0_prefix_is_refused() {
        for signature in [EXPECTED_HEX, "v1=abcd", "v0", "V0=abcd", "sha256=abcd", ""] {
            let message = unauthorized(signed_message(&signed("1531420618", signature), TIMESTAMP));
            assert!(message.contains("v0="), "{message}");
            assert!(
                !message.contains("abcd"),
                "the signature is echoed: {message}"
            );
        }
    }

    #[test]
    fn garbage_timestamps_are_refused_without_panicking() {
        let signature = format!("v0={EXPECTED_HEX}");
        for timestamp in [
            "",
            "abc",
            "-1531420618",
            "+1531420618",
            " 1531420618",
            "1531420618.5",
            "1e9",
            "99999999999999999999999999",
            "9223372036854775807",
            "٣",
        ] {
            let result = signed_message(&signed(timestamp, &signature), TIMESTAMP);
            unauthorized(result);
        }
    }
}
