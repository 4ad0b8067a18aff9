//! The forms of a secret searched for beside the secret itself: its base64 encodings.
//!
//! Base64 cannot be decoded out of free text (any word is the base64 of something), so it is
//! searched for encoded instead. A secret inside a longer base64 text (a Basic header, a data
//! URL, a JSON Web Token) is encoded differently depending on where it starts, modulo 3 bytes.
//! For each of the three alignments, the characters that depend on the secret's bits alone form
//! a core, and one of the three cores appears in any base64 text that contains the secret. The
//! cores are listed for both alphabets (standard and URL-safe), with the whole encoding padded
//! and unpadded, so that a secret encoded on its own is hidden to its last character.
//!
//! Percent-encoding and JSON escapes are decoded instead (see `escapes`): that catches every mix
//! of encoded and plain characters, which no list of forms could.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `secret` and its base64 forms, without duplicates.
pub(super) fn forms(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let mut forms = vec![secret.to_owned()];
    for alphabet in [STANDARD, URL_SAFE] {
        let whole = encode(bytes, alphabet);
        let padding = (4 - whole.len() % 4) % 4;
        forms.push(format!("{whole}{}", "=".repeat(padding)));
        forms.push(whole);
        for offset in 0..3 {
            forms.push(core(bytes, offset, alphabet));
        }
    }
    forms.retain(|form| !form.is_empty());
    forms.sort();
    forms.dedup();
    forms
}

/// The base64 characters that depend only on `secret` when it follows `offset` other bytes.
/// Character `i` covers bits `6i..6i+6`; the secret covers bits `8·offset..8·(offset+len)`.
fn core(secret: &[u8], offset: usize, alphabet: &[u8; 64]) -> String {
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(secret);
    let encoded = encode(&bytes, alphabet);
    let start = (8 * offset).div_ceil(6);
    let end = 8 * bytes.len() / 6;
    encoded.get(start..end).unwrap_or_default().to_owned()
}

/// Base64 of `bytes` in `alphabet`, without padding.
fn encode(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (index, byte)| {
            group | (u32::from(*byte) << (16 - 8 * index))
        });
        // 1 byte gives 2 characters, 2 give 3, 3 give 4.
        for index in 0..=chunk.len() {
            let sextet = (group >> (18 - 6 * index)) & 0x3f;
            out.push(char::from(alphabet[sextet as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes(), STANDARD), encoded, "{plain:?}");
        }
        assert_eq!(encode(&[0xfb, 0xff], STANDARD), "+/8");
        assert_eq!(encode(&[0xfb, 0xff], URL_SAFE), "-_8");
    }

    #[test]
    fn a_secret_is_found_in_base64_wherever_it_starts() {
        let secret = "canary-secret-4f2a";
        let forms = forms(secret);
        for prefix in ["", "a", "ab", "abc", "user:", "x-access-token:"] {
            for suffix in ["", "z", "@host"] {
                let text = format!("{prefix}{secret}{suffix}");
                for alphabet in [STANDARD, URL_SAFE] {
                    let encoded = encode(text.as_bytes(), alphabet);
                    assert!(
                        forms.iter().any(|form| encoded.contains(form.as_str())),
                        "{text:?} as {encoded}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_whole_padded_encoding_is_a_form() {
        let even = forms("hunter2-hunter2");
        assert!(
            even.contains(&"aHVudGVyMi1odW50ZXIy".to_owned()),
            "{even:?}"
        );
        let padded = forms("hunter2-hunter");
        assert!(
            padded.contains(&"aHVudGVyMi1odW50ZXI=".to_owned()),
            "{padded:?}"
        );
        assert!(padded.contains(&"hunter2-hunter".to_owned()));
    }

    #[test]
    fn forms_are_long_enough_not_to_match_by_chance() {
        // The shortest secret redacted (8 characters) still gives cores of 10 characters.
        for form in forms("12345678") {
            assert!(form.len() >= 8, "{form}");
        }
    }
}
