//! Redacting JSON by its decoded values.
//!
//! A JSON text can spell a secret with escapes (`"\u0043ANARY…"`) that a search of the text
//! never sees, while every reader of the document (the API's client, a responder posting a
//! comment) sees the decoded secret. So a JSON document is parsed, each string (and object key)
//! is redacted as the reader would see it, and the document is written out again. Numbers are
//! compared by their digits, since a numeric secret can come back as a JSON number.

use std::borrow::Cow;

use serde_json::Value;

use super::{Compiled, REDACTED, Redactor};

impl Redactor {
    /// Redacts every decoded string of `value`, object keys included, and replaces every number
    /// whose digits are a secret by `"[REDACTED]"`. Returns whether anything changed.
    pub fn redact_value(&self, value: &mut Value) -> bool {
        self.compiled().redact_value(value)
    }

    /// `text` redacted by what it says: a JSON document is decoded, redacted value by value
    /// ([`Redactor::redact_value`]) and written out again (compact); any other text is redacted
    /// as text. Borrowed when nothing matched.
    pub fn redact_json_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let compiled = self.compiled();
        match serde_json::from_str::<Value>(text) {
            Ok(mut value) => {
                if !compiled.redact_value(&mut value) {
                    return Cow::Borrowed(text);
                }
                match serde_json::to_string(&value) {
                    Ok(encoded) => Cow::Owned(encoded),
                    // Writing a `Value` out cannot fail; if it ever did, nothing of it is shown.
                    Err(_) => Cow::Borrowed(REDACTED),
                }
            }
            Err(_) => compiled.redact(text),
        }
    }
}

impl Compiled {
    fn redact_value(&self, value: &mut Value) -> bool {
        match value {
            Value::String(text) => match self.redact(text) {
                Cow::Owned(redacted) => {
                    *text = redacted;
                    true
                }
                Cow::Borrowed(_) => false,
            },
            Value::Number(number) => {
                let digits = number.to_string();
                if self.redact(&digits) == digits {
                    return false;
                }
                *value = Value::String(REDACTED.to_owned());
                true
            }
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, item| self.redact_value(item) | changed),
            Value::Object(map) => {
                let keys_hide_secrets = map
                    .keys()
                    .any(|key| matches!(self.redact(key), Cow::Owned(_)));
                if keys_hide_secrets {
                    let entries = std::mem::take(map);
                    for (key, mut item) in entries {
                        self.redact_value(&mut item);
                        map.insert(self.redact(&key).into_owned(), item);
                    }
                    return true;
                }
                map.values_mut()
                    .fold(false, |changed, item| self.redact_value(item) | changed)
            }
            Value::Null | Value::Bool(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CANARY: &str = "CANARY-7b1e-secret";

    fn redactor() -> Redactor {
        Redactor::new([CANARY.to_owned(), "918273645012".to_owned()])
    }

    #[test]
    fn escaped_secrets_are_redacted_once_decoded() {
        let text = r#"{"comment":{"body":"token: \u0043ANARY-7b1e-secret"},"output":"\u0043\u0041NARY\u002d7b1e-secret"}"#;
        let redacted = redactor().redact_json_text(text);
        let value: Value = serde_json::from_str(&redacted).expect("still JSON");
        assert_eq!(value["comment"]["body"], "token: [REDACTED]");
        assert_eq!(value["output"], REDACTED);
        assert!(!redacted.contains("ANARY"), "{redacted}");
    }

    #[test]
    fn keys_numbers_and_nesting_are_covered() {
        let mut value = json!({
            "list": [1, "x", {"deep": "CANARY-7b1e-secret!"}],
            "CANARY-7b1e-secret": "as a key",
            "number": 918273645012u64,
            "other": 42
        });
        assert!(redactor().redact_value(&mut value));
        assert_eq!(
            value,
            json!({
                "list": [1, "x", {"deep": "[REDACTED]!"}],
                "[REDACTED]": "as a key",
                "number": "[REDACTED]",
                "other": 42
            })
        );
    }

    #[test]
    fn clean_documents_are_borrowed_as_written() {
        let text = "{ \"output\" : \"fine\\n\", \"n\": 1.5 }";
        assert!(matches!(
            redactor().redact_json_text(text),
            Cow::Borrowed(same) if same == text
        ));
    }

    #[test]
    fn text_that_is_not_json_is_redacted_as_text() {
        assert_eq!(
            redactor().redact_json_text(r"plain \u0043ANARY-7b1e-secret and more"),
            "plain [REDACTED] and more"
        );
        assert_eq!(
            redactor().redact_json_text("{ not json CANARY-7b1e-secret"),
            "{ not json [REDACTED]"
        );
    }
}
