//! Decoding the escapes that hide a secret from a literal search: JSON string escapes
//! (`\u0043`, `\/`, `\"`), percent-encoding (`%43`) and HTML character references (`&#67;`,
//! `&#x43;`, which GitHub and GitLab render in a comment as the character itself).
//!
//! A worker can write any character of a secret as an escape, and any mix of escaped and plain
//! characters, so no list of encoded forms covers them; decoding does. It is done on free text
//! (log lines, error bodies quoted in task errors) as a second search: JSON documents are
//! decoded by a JSON parser instead (see `json`), which knows which escapes are real.

/// `text` with its JSON escapes decoded, then its percent-escapes, then its HTML character
/// references; `None` when it has none of them.
pub(super) fn decode(text: &str) -> Option<String> {
    let unescaped = if text.contains('\\') {
        json_unescape(text)
    } else {
        None
    };
    let current = unescaped.as_deref().unwrap_or(text);
    let decoded = if current.contains('%') {
        percent_decode(current)
    } else {
        None
    };
    let decoded = decoded.or(unescaped);
    let current = decoded.as_deref().unwrap_or(text);
    let referenced = if current.contains('&') {
        html_unescape(current)
    } else {
        None
    };
    referenced.or(decoded)
}

/// The named references a Markdown renderer decodes that can stand for a character of a token.
const HTML_NAMED: [(&str, char); 5] = [
    ("amp;", '&'),
    ("lt;", '<'),
    ("gt;", '>'),
    ("quot;", '"'),
    ("apos;", '\''),
];

/// Decodes `&#DDD;`, `&#xHHH;` and the [`HTML_NAMED`] references; anything else after `&` is
/// kept as written. `None` when nothing was decoded.
fn html_unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut decoded_any = false;
    let mut rest = text;
    while let Some(ampersand) = rest.find('&') {
        out.push_str(&rest[..ampersand]);
        let after = &rest[ampersand + 1..];
        if let Some((character, used)) = numeric_reference(after).or_else(|| {
            HTML_NAMED
                .iter()
                .find(|(name, _)| after.starts_with(name))
                .map(|(name, character)| (*character, name.len()))
        }) {
            out.push(character);
            decoded_any = true;
            rest = &after[used..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    decoded_any.then_some(out)
}

/// `#DDD;` or `#xHHH;` (after its `&`): the character and how many bytes it took. Code points
/// that are not characters become U+FFFD, as browsers render them.
fn numeric_reference(after: &str) -> Option<(char, usize)> {
    let number = after.strip_prefix('#')?;
    let (digits, radix, prefix) = match number.strip_prefix(['x', 'X']) {
        Some(hex) => (hex, 16, 2),
        None => (number, 10, 1),
    };
    let length = digits
        .bytes()
        .take_while(|byte| byte.is_ascii_alphanumeric())
        .count();
    if length == 0 || length > 8 || digits.as_bytes().get(length) != Some(&b';') {
        return None;
    }
    let code = u32::from_str_radix(&digits[..length], radix).ok()?;
    Some((
        char::from_u32(code).unwrap_or('\u{fffd}'),
        prefix + length + 1,
    ))
}

/// Decodes the escapes of a JSON string wherever they appear; an escape that is not one (`\q`,
/// `\u12`) is kept as written. `None` when nothing was decoded.
fn json_unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut decoded_any = false;
    let mut rest = text;
    while let Some(backslash) = rest.find('\\') {
        out.push_str(&rest[..backslash]);
        let after = &rest[backslash + 1..];
        let simple = match after.chars().next() {
            Some('"') => Some('"'),
            Some('\\') => Some('\\'),
            Some('/') => Some('/'),
            Some('b') => Some('\u{8}'),
            Some('f') => Some('\u{c}'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            _ => None,
        };
        if let Some(character) = simple {
            out.push(character);
            decoded_any = true;
            rest = &after[1..];
        } else if let Some((character, used)) = unicode_escape(after) {
            out.push(character);
            decoded_any = true;
            rest = &after[used..];
        } else {
            out.push('\\');
            rest = after;
        }
    }
    out.push_str(rest);
    decoded_any.then_some(out)
}

/// `uXXXX` (after its backslash), or a surrogate pair `uD83D\uDE00`: the character and how many
/// bytes it took. A lone surrogate becomes U+FFFD, as a lenient JSON reader makes it.
fn unicode_escape(after: &str) -> Option<(char, usize)> {
    let high = hex4(after.strip_prefix('u')?)?;
    if (0xD800..0xDC00).contains(&high)
        && let Some(low) = after[5..]
            .strip_prefix("\\u")
            .and_then(hex4)
            .filter(|low| (0xDC00..0xE000).contains(low))
    {
        let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        return Some((char::from_u32(code).unwrap_or('\u{fffd}'), 11));
    }
    Some((char::from_u32(high).unwrap_or('\u{fffd}'), 5))
}

/// The number written by the first four characters of `text`, if they are hex digits.
fn hex4(text: &str) -> Option<u32> {
    let digits = text.get(..4)?;
    if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// Decodes every `%XX`; a `%` not followed by two hex digits is kept. Bytes that do not form
/// UTF-8 become U+FFFD. `None` when nothing was decoded.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut decoded_any = false;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(byte) = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .filter(|hex| hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            decoded_any = true;
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    decoded_any.then(|| String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_are_decoded() {
        assert_eq!(
            decode(r#"\u0043ANARY \"quoted\" a\/b \n"#),
            Some("CANARY \"quoted\" a/b \n".to_owned())
        );
        assert_eq!(decode(r"\ud83d\ude00 \u00e9"), Some("😀 é".to_owned()));
        assert_eq!(decode(r"lone \ud83d"), Some("lone \u{fffd}".to_owned()));
    }

    #[test]
    fn what_is_not_an_escape_is_kept() {
        assert_eq!(decode(r"C:\q\u12 \uZZZZ end\"), None);
        assert_eq!(decode("no escapes at all"), None);
        assert_eq!(decode("100% sure, 50%off"), None);
    }

    #[test]
    fn percent_escapes_are_decoded_after_json_escapes() {
        assert_eq!(decode("p%40ss%2Fw%6Frd"), Some("p@ss/word".to_owned()));
        assert_eq!(decode(r"\u0025\u0034\u0031"), Some("A".to_owned()));
        assert_eq!(decode("%ff%41"), Some("\u{fffd}A".to_owned()));
    }

    #[test]
    fn html_character_references_are_decoded_last() {
        assert_eq!(decode("&#67;ANARY&#x2d;1"), Some("CANARY-1".to_owned()));
        assert_eq!(decode("a &amp; b &lt;c&gt;"), Some("a & b <c>".to_owned()));
        assert_eq!(decode(r"\u0026#67;"), Some("C".to_owned()));
        assert_eq!(
            decode("&#1114112; &#xD800;"),
            Some("\u{fffd} \u{fffd}".to_owned())
        );
    }

    #[test]
    fn what_is_not_a_reference_is_kept() {
        assert_eq!(
            decode("fish & chips &#; &#x; &#12 &nbsp; &#123456789;"),
            None
        );
    }

    #[test]
    fn multibyte_text_around_escapes_survives() {
        assert_eq!(
            decode("ключ=%C3%A9 ✓ \\u2713"),
            Some("ключ=é ✓ ✓".to_owned())
        );
    }
}
