//! Events between the store's terms (JSON attrs) and the plugins' (typed scalar attrs).

use serde_json::{Map, Value};

use crate::plugin::bindings::source::types;
use crate::store::EventRecord;

/// A stored event as policies, responders and `hydrate` receive it.
pub fn stored_event(event: &EventRecord) -> types::StoredEvent {
    let attrs = plugin_attrs(&event.attrs);
    let optional = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    types::StoredEvent {
        id: event.id.to_string(),
        source: event.source.clone(),
        trace_id: event.id.to_string(),
        event: types::Event {
            event_type: event.event_type.clone(),
            delivery_id: optional(&event.delivery_id),
            dedup_key: optional(&event.dedup_key),
            actor: event.actor.clone(),
            subject: event.subject.clone(),
            attrs,
        },
    }
}

/// Stored attrs in the plugins' terms; values that are not scalars are left out.
pub fn plugin_attrs(attrs: &Map<String, Value>) -> Vec<types::Attr> {
    attrs
        .iter()
        .filter_map(|(name, value)| {
            Some(types::Attr {
                name: name.clone(),
                value: plugin_value(value)?,
            })
        })
        .collect()
}

/// A plugin's attrs as the store keeps them; a later attr of the same name wins.
pub fn json_attrs(attrs: Vec<types::Attr>) -> Map<String, Value> {
    attrs
        .into_iter()
        .map(|attr| (attr.name, json_value(attr.value)))
        .collect()
}

/// A plugin's own error as text.
pub fn error_text(err: types::Error) -> String {
    match err {
        types::Error::Unauthorized(message)
        | types::Error::BadRequest(message)
        | types::Error::Internal(message) => message,
    }
}

fn plugin_value(value: &Value) -> Option<types::Value> {
    Some(match value {
        Value::String(text) => types::Value::Text(text.clone()),
        Value::Bool(flag) => types::Value::Boolean(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => types::Value::Integer(integer),
            None => types::Value::Float(number.as_f64()?),
        },
        _ => return None,
    })
}

fn json_value(value: types::Value) -> Value {
    match value {
        types::Value::Text(text) => Value::String(text),
        types::Value::Integer(number) => Value::from(number),
        types::Value::Float(number) => serde_json::Number::from_f64(number)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        types::Value::Boolean(flag) => Value::Bool(flag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_survive_the_round_trip_and_containers_are_dropped() {
        let attrs = vec![
            types::Attr {
                name: "n".into(),
                value: types::Value::Integer(42),
            },
            types::Attr {
                name: "x".into(),
                value: types::Value::Float(1.5),
            },
            types::Attr {
                name: "nan".into(),
                value: types::Value::Float(f64::NAN),
            },
        ];
        let json = json_attrs(attrs);
        assert_eq!(json["n"], 42);
        assert_eq!(json["x"], 1.5);
        assert_eq!(json["nan"], Value::Null);
        assert!(matches!(
            plugin_value(&json["n"]),
            Some(types::Value::Integer(42))
        ));
        assert!(plugin_value(&Value::Null).is_none());
        assert!(plugin_value(&serde_json::json!([1])).is_none());
    }
}
