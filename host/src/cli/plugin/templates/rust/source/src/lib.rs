//! {{name}}: a mecha source plugin. It turns a JSON webhook into one event.
//!
//! The body it accepts (see `fixtures/request.json`):
//!
//! ```json
//! {"type": "ticket.opened", "id": "delivery-1", "actor": "octocat", "subject": "acme/widgets",
//!  "attrs": {"number": 7, "urgent": true}}
//! ```
//!
//! `type` is required; `id` becomes the delivery id (a redelivery is then stored once); `attrs`
//! holds strings, numbers and booleans for workers' filters and prompt templates.
//!
//! The logic is in plain functions ([`parse`]) that `cargo test` runs natively. The host's
//! imports (`log`, `config`, `verify`, `acknowledge`, outgoing HTTP) only work inside mecha:
//! natively they compile but must not be called.

wit_bindgen::generate!({
    world: "source",
    path: "wit",
    generate_all,
});

use exports::mecha::plugin::source_api::{Guest, Outcome};
use mecha::plugin::log::{self, Field, Level};
use mecha::plugin::types::{Attr, Error, Event, PluginInfo, Request, Value};

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "{{name}}".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            summary: "Turns a JSON webhook into an event".to_owned(),
            // To check signatures, name a secret here (e.g. `webhook_secret`) and call
            // `mecha::plugin::verify::hmac_sha256("webhook_secret", &request.body, &signature)`:
            // the host compares with the operator's value, which never enters the plugin.
            secrets: Vec::new(),
            // Settings read with `mecha::plugin::config::get`.
            settings: Vec::new(),
            // Origins called with outgoing HTTP (from `hydrate`), e.g. `https://api.example.com`.
            hosts: Vec::new(),
        }
    }

    fn handle_webhook(request: Request) -> Result<Outcome, Error> {
        let event = parse(&request)?;
        log::emit(
            Level::Debug,
            "webhook parsed",
            &[Field {
                key: "type".to_owned(),
                value: event.event_type.clone(),
            }],
        );
        Ok(Outcome::Events(vec![event]))
    }

    fn hydrate(event: Event) -> Result<Event, Error> {
        // Nothing to add: a source that fetches more from its provider's API (e.g. a diff) does
        // it here, with `wasi:http/outgoing-handler`.
        Ok(event)
    }
}

// The export exists only in the component: natively (`cargo test`) this is a plain library.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

/// The event of one webhook request, or why the request is refused. Never panics: anything
/// malformed is a `bad-request`, whose message the sender sees.
pub fn parse(request: &Request) -> Result<Event, Error> {
    if let Some(content_type) = header(request, "content-type")
        && !content_type
            .to_ascii_lowercase()
            .starts_with("application/json")
    {
        return Err(Error::BadRequest(format!(
            "expected Content-Type application/json, got {content_type}"
        )));
    }
    let body: serde_json::Value = serde_json::from_slice(&request.body)
        .map_err(|err| Error::BadRequest(format!("the body is not JSON: {err}")))?;
    let Some(body) = body.as_object() else {
        return Err(Error::BadRequest(
            "the body must be a JSON object".to_owned(),
        ));
    };
    let text = |key: &str| body.get(key).and_then(serde_json::Value::as_str);
    let event_type = text("type")
        .map(str::trim)
        .filter(|event_type| !event_type.is_empty())
        .ok_or_else(|| Error::BadRequest("the body has no `type` string".to_owned()))?;
    let mut attrs = Vec::new();
    match body.get("attrs") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(object)) => {
            for (name, value) in object {
                let value = scalar(value).ok_or_else(|| {
                    Error::BadRequest(format!(
                        "attrs.{name} must be a string, a number or a boolean"
                    ))
                })?;
                attrs.push(Attr {
                    name: name.clone(),
                    value,
                });
            }
        }
        Some(_) => {
            return Err(Error::BadRequest(
                "`attrs` must be a JSON object".to_owned(),
            ));
        }
    }
    Ok(Event {
        event_type: event_type.to_owned(),
        delivery_id: text("id").map(str::to_owned),
        dedup_key: None,
        actor: text("actor").unwrap_or_default().to_owned(),
        subject: text("subject").unwrap_or_default().to_owned(),
        attrs,
    })
}

/// The first value of the header `name` (the host gives names in lower case).
fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case(name))
        .map(|header| header.value.as_str())
}

/// A JSON scalar as an attribute value; `None` for null, arrays and objects.
fn scalar(value: &serde_json::Value) -> Option<Value> {
    match value {
        serde_json::Value::String(text) => Some(Value::Text(text.clone())),
        serde_json::Value::Bool(flag) => Some(Value::Boolean(*flag)),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(integer) => Some(Value::Integer(integer)),
            None => number.as_f64().map(Value::Float),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mecha::plugin::types::Header;

    fn request(body: &str) -> Request {
        Request {
            method: "POST".to_owned(),
            query: String::new(),
            headers: vec![Header {
                name: "content-type".to_owned(),
                value: "application/json".to_owned(),
            }],
            body: body.as_bytes().to_vec(),
        }
    }

    fn attr<'a>(event: &'a Event, name: &str) -> Option<&'a Value> {
        event
            .attrs
            .iter()
            .find(|attr| attr.name == name)
            .map(|attr| &attr.value)
    }

    fn bad_request(result: Result<Event, Error>) -> String {
        match result {
            Err(Error::BadRequest(message)) => message,
            other => panic!("expected a bad-request, got {other:?}"),
        }
    }

    #[test]
    fn describes_itself() {
        let info = Plugin::describe();
        assert_eq!(info.name, "{{name}}");
        assert!(info.secrets.is_empty() && info.hosts.is_empty());
    }

    #[test]
    fn the_fixture_becomes_one_event() {
        let event = parse(&request(include_str!("../fixtures/request.json"))).expect("valid");
        assert_eq!(event.event_type, "ticket.opened");
        assert_eq!(event.delivery_id.as_deref(), Some("delivery-0001"));
        assert_eq!(event.actor, "octocat");
        assert_eq!(event.subject, "acme/widgets");
        assert!(matches!(attr(&event, "number"), Some(Value::Integer(7))));
        assert!(matches!(attr(&event, "urgent"), Some(Value::Boolean(true))));
        assert!(matches!(attr(&event, "score"), Some(Value::Float(score)) if *score == 0.75));
        assert!(
            matches!(attr(&event, "title"), Some(Value::Text(title)) if title == "The widget squeaks")
        );
    }

    #[test]
    fn only_type_is_required() {
        let event = parse(&request(r#"{"type": "ping"}"#)).expect("valid");
        assert_eq!(event.event_type, "ping");
        assert_eq!(event.delivery_id, None);
        assert_eq!(event.actor, "");
        assert!(event.attrs.is_empty());
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        assert!(bad_request(parse(&request("not json"))).contains("not JSON"));
        assert!(bad_request(parse(&request("[1, 2]"))).contains("JSON object"));
        assert!(bad_request(parse(&request(r#"{"actor": "x"}"#))).contains("type"));
        assert!(bad_request(parse(&request(r#"{"type": "x", "attrs": [1]}"#))).contains("attrs"));
        let nested = r#"{"type": "x", "attrs": {"user": {"login": "x"}}}"#;
        assert!(bad_request(parse(&request(nested))).contains("attrs.user"));
    }

    #[test]
    fn other_content_types_are_refused() {
        let mut form = request("{}");
        form.headers[0].value = "application/x-www-form-urlencoded".to_owned();
        assert!(bad_request(parse(&form)).contains("Content-Type"));
    }
}
