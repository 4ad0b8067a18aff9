//! Signing deliveries the way providers do, for `mecha dev send`, the tests and the benchmarks.
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
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The `X-Hub-Signature-256` header GitHub sends with `body`.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret, body))
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
}
