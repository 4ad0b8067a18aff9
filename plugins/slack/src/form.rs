//! `application/x-www-form-urlencoded` bodies, the encoding of slash commands and interactive
//! payloads.
//!
//! Decoding is strict: `+` is a space and `%XX` a byte, but a `%` not followed by two hex digits
//! is a `bad-request` rather than kept literally, because Slack always escapes `%`, so a broken
//! escape means the body is not one Slack sent. Each name and value must be UTF-8 once decoded.

use mecha_plugin_sdk::source::Error;

/// The decoded fields of a form body, in the order they were sent.
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// Decodes `name=value&...`. Empty pairs (`a=1&&b=2`) are skipped and a pair without `=`
    /// has an empty value, as browsers do.
    pub fn decode(body: &[u8]) -> Result<Self, Error> {
        let fields = body
            .split(|&byte| byte == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let mut parts = pair.splitn(2, |&byte| byte == b'=');
                let name = decode_component(parts.next().unwrap_or_default())
                    .map_err(|problem| Error::BadRequest(format!("a form field name {problem}")))?;
                let value =
                    decode_component(parts.next().unwrap_or_default()).map_err(|problem| {
                        Error::BadRequest(format!("the form field {name:?} {problem}"))
                    })?;
                Ok((name, value))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self { fields })
    }

    /// The value of the first field called `name`. Later duplicates are ignored, as the first
    /// header of a name is in [`mecha_plugin_sdk::source::Request::header`].
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Percent-decodes one name or value; the error completes "the form field ... <problem>".
fn decode_component(encoded: &[u8]) -> Result<String, &'static str> {
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => decoded.push(b' '),
            b'%' => {
                let escaped = match rest {
                    [high, low, tail @ ..] => {
                        rest = tail;
                        hex_byte(*high, *low)
                    }
                    _ => None,
                };
                decoded.push(escaped.ok_or("has a % not followed by two hex digits")?);
            }
            other => decoded.push(other),
        }
    }
    String::from_utf8(decoded).map_err(|_| "is not UTF-8 once percent-decoded")
}

fn hex_byte(high: u8, low: u8) -> Option<u8> {
    let digit = |byte: u8| char::from(byte).to_digit(16);
    u8::try_from(digit(high)? << 4 | digit(low)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_request(body: &[u8]) -> String {
        match Form::decode(body) {
            Err(Error::BadRequest(message)) => message,
            Ok(form) => panic!("expected a bad request, got {:?}", form.fields),
            Err(other) => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn decodes_plus_and_percent_escapes() {
        let form = Form::decode(b"text=review+acme%2Fwidgets%2342&name%21=caf%C3%A9&Up=%2f%2F")
            .expect("valid form");
        assert_eq!(form.get("text"), Some("review acme/widgets#42"));
        assert_eq!(form.get("name!"), Some("café"));
        assert_eq!(form.get("Up"), Some("//"));
        assert_eq!(form.get("up"), None);
    }

    #[test]
    fn a_literal_plus_arrives_escaped() {
        let form = Form::decode(b"text=1%2B1+%3D+2").expect("valid form");
        assert_eq!(form.get("text"), Some("1+1 = 2"));
    }

    #[test]
    fn empty_pairs_missing_values_and_duplicates() {
        let form = Form::decode(b"&a=1&&flag&a=2&b=&=x&").expect("valid form");
        assert_eq!(form.get("a"), Some("1"));
        assert_eq!(form.get("flag"), Some(""));
        assert_eq!(form.get("b"), Some(""));
        assert_eq!(form.get(""), Some("x"));
        assert_eq!(form.get("c"), None);
        assert!(Form::decode(b"").expect("empty form").fields.is_empty());
    }

    #[test]
    fn only_the_first_equals_sign_splits() {
        let form = Form::decode(b"q=a=b").expect("valid form");
        assert_eq!(form.get("q"), Some("a=b"));
    }

    #[test]
    fn broken_escapes_are_bad_requests() {
        for body in [
            &b"text=100%"[..],
            b"text=%4",
            b"text=%zz",
            b"text=%+1",
            b"text=%\xc3\xa9",
        ] {
            let message = bad_request(body);
            assert!(
                message.contains("\"text\"") && message.contains("hex"),
                "{message}"
            );
        }
        assert!(bad_request(b"%g0=1").contains("name"));
    }

    #[test]
    fn non_utf8_is_a_bad_request() {
        assert!(bad_request(b"text=%C3%28").contains("UTF-8"));
        assert!(bad_request(b"text=\xff").contains("UTF-8"));
        assert!(bad_request(b"\xfe=1").contains("UTF-8"));
    }
}
