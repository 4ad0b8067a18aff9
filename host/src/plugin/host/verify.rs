//! The `verify` import: signature and token checks with secrets the plugin never sees.
//!
//! Comparisons are constant-time. A successful check is remembered for the call: a source that
//! is exempt from the daemon's API key must prove, call by call, that it verified the request.
//! A matching HMAC also leaves the digest of the message it covered, so that the store can
//! recognise the same signed message sent again (a replay) whatever unsigned delivery id comes
//! with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::PluginState;
use crate::config::secrets::Secret;
use crate::plugin::bindings::source::verify::{self, VerifyError};

pub struct VerifyContext {
    secrets: Arc<BTreeMap<String, Secret>>,
    verified: bool,
    /// The SHA-256 of the first message whose HMAC matched during this call.
    signed: Option<[u8; 32]>,
}

impl VerifyContext {
    pub fn new(secrets: Arc<BTreeMap<String, Secret>>) -> VerifyContext {
        VerifyContext {
            secrets,
            verified: false,
            signed: None,
        }
    }

    /// The SHA-256 of the message an HMAC check vouched for during this call, if any. A token
    /// check leaves none: a token does not tie the body to its sender.
    pub fn signed_digest(&self) -> Option<[u8; 32]> {
        self.signed
    }

    /// Whether a check succeeded during this call.
    pub fn verified(&self) -> bool {
        self.verified
    }

    /// The secret `name`; a blank value counts as none, since anyone could sign with it.
    fn secret(&self, name: &str) -> Result<&Secret, VerifyError> {
        self.secrets
            .get(name)
            .filter(|secret| !secret.expose().trim().is_empty())
            .ok_or(VerifyError::UnknownSecret)
    }

    fn record(&mut self, matched: bool) -> Result<(), VerifyError> {
        if matched {
            self.verified = true;
            Ok(())
        } else {
            Err(VerifyError::Mismatch)
        }
    }
}

/// Whether `signature` is the HMAC-SHA256 of `message` under `key`, in constant time.
pub fn hmac_sha256_matches(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(message);
    mac.verify_slice(signature).is_ok()
}

impl verify::Host for PluginState {
    fn hmac_sha256(
        &mut self,
        secret: String,
        message: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<(), VerifyError> {
        let key = self.verify.secret(&secret)?;
        let matched = hmac_sha256_matches(key.expose().as_bytes(), &message, &signature);
        if matched && self.verify.signed.is_none() {
            self.verify.signed = Some(Sha256::digest(&message).into());
        }
        self.verify.record(matched)
    }

    fn token_equals(&mut self, secret: String, presented: String) -> Result<(), VerifyError> {
        let expected = self.verify.secret(&secret)?;
        let matched: bool = expected
            .expose()
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into();
        self.verify.record(matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_secret_verifies_nothing() {
        let mut secrets = BTreeMap::new();
        secrets.insert("webhook_secret".to_owned(), Secret::new(" "));
        let context = VerifyContext::new(Arc::new(secrets));
        assert!(matches!(
            context.secret("webhook_secret"),
            Err(VerifyError::UnknownSecret)
        ));
    }

    /// GitHub's published test vector for `X-Hub-Signature-256`.
    #[test]
    fn github_signature_vector() {
        let signature =
            decode_hex("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
        assert!(hmac_sha256_matches(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            &signature
        ));
        assert!(!hmac_sha256_matches(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            &signature
        ));
        assert!(!hmac_sha256_matches(
            b"another secret",
            b"Hello, World!",
            &signature
        ));
    }

    #[test]
    fn only_configured_secrets_verify_and_success_is_remembered() {
        let mut secrets = BTreeMap::new();
        secrets.insert("token".to_owned(), Secret::new("abc"));
        let mut context = VerifyContext::new(Arc::new(secrets));
        assert!(matches!(
            context.secret("other"),
            Err(VerifyError::UnknownSecret)
        ));
        assert!(context.record(false).is_err());
        assert!(!context.verified());
        assert!(context.record(true).is_ok());
        assert!(context.verified());
    }

    fn decode_hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
