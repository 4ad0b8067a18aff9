//! Parsing of generic webhooks, in plain Rust so that it runs natively in tests.

use mecha_plugin_sdk::source::{self, Error, Event, Value};
use sha2::{Digest, Sha256};

/// The header that carries the event type unless the operator sets `type_header`.
pub const DEFAULT_TYPE_HEADER: &str = "X-Event-Type";

/// An event of type `event_type` whose attrs are the body's top-level scalars.
///
/// The delivery id is derived from the type and the body, so that the same payload sent twice is
/// stored once.
pub fn parse(event_type: &str, body: &[u8]) -> Result<Event, Error> {
    if event_type.trim().is_empty() {
        return Err(Error::BadRequest("the event type header is empty".into()));
    }
    let object = source::json_object(body)?;
    let mut event = source::event(event_type).delivery_id(delivery_id(event_type, body));
    for (name, value) in &object {
        if let Some(value) = Value::from_json(value) {
            event.set_attr(name, value);
        }
    }
    Ok(event)
}

/// `hex(sha256("<type>:<body>"))[..32]`: the same payload of the same type is the same delivery.
fn delivery_id(event_type: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(event_type.as_bytes());
    hasher.update(b":");
    hasher.update(body);
    hasher.finalize()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_scalars_become_attrs() {
        let event = parse(
            "deploy",
            br#"{"env":"prod","n":3,"ok":true,"nested":{"a":1},"list":[1],"none":null}"#,
        )
        .expect("valid body");
        assert_eq!(event.event_type, "deploy");
        let names: Vec<&str> = event.attrs.iter().map(|attr| attr.name.as_str()).collect();
        assert_eq!(names, ["env", "n", "ok"]);
        assert!(matches!(event.get_attr("n"), Some(Value::Integer(3))));
        assert_eq!(event.actor, "");
    }

    #[test]
    fn same_payload_same_delivery_id() {
        let a = parse("deploy", br#"{"x":1}"#).expect("valid");
        let b = parse("deploy", br#"{"x":1}"#).expect("valid");
        let c = parse("other", br#"{"x":1}"#).expect("valid");
        assert_eq!(a.delivery_id, b.delivery_id);
        assert_ne!(a.delivery_id, c.delivery_id);
        assert_eq!(a.delivery_id.as_deref().map(str::len), Some(32));
    }

    #[test]
    fn refuses_non_objects_and_empty_types() {
        assert!(matches!(
            parse("deploy", b"[1,2]"),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            parse("deploy", b"not json"),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(parse(" ", b"{}"), Err(Error::BadRequest(_))));
    }
}
