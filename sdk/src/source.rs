//! Source plugins: turn a provider's webhook into events.
//!
//! ```ignore
//! use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};
//!
//! struct Hello;
//!
//! impl Source for Hello {
//!     fn describe() -> PluginInfo {
//!         source::info("hello", env!("CARGO_PKG_VERSION"), "Says hello").with_secrets(["webhook_secret"])
//!     }
//!
//!     fn handle_webhook(request: Request) -> Result<Outcome, Error> {
//!         let signature = request.required_header("x-signature")?;
//!         source::verify_hmac_sha256_hex("webhook_secret", &request.body, signature)?;
//!         let body = source::json_object(&request.body)?;
//!         Ok(Outcome::Events(vec![source::event("hello").actor(body["user"].as_str().unwrap_or(""))]))
//!     }
//! }
//!
//! mecha_plugin_sdk::export_source!(Hello);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "source",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_source_world",
        default_bindings_module: "mecha_plugin_sdk::source::bindings",
        // The shared types, also used by the other worlds; policies are tested by comparing
        // results.
        additional_derives: [PartialEq],
        // Variants that carry a resource cannot be compared.
        additional_derives_ignore: ["stream-error"],
        // Including `wasi:http/outgoing-handler` and what it uses, shared with the other
        // worlds that import it (the `http` module's client).
        generate_all,
    });
}

pub use bindings::exports::mecha::plugin::source_api::Outcome;
pub use bindings::mecha::plugin::log::Level;
pub use bindings::mecha::plugin::types::{
    Attr, Error, Event, Header, PluginInfo, Reply, Request, Value,
};

use bindings::mecha::plugin::{acknowledge, config, log, verify};

/// A source plugin: implement this on a type and export it with [`export_source!`].
pub trait Source {
    /// Name, version and the secrets, settings and hosts the plugin uses.
    fn describe() -> PluginInfo;

    /// Verifies and parses one webhook delivery.
    fn handle_webhook(request: Request) -> Result<Outcome, Error>;

    /// Adds data from the provider's API to a stored event; by default adds nothing.
    fn hydrate(event: Event) -> Result<Event, Error> {
        Ok(event)
    }
}

/// Exports a type implementing [`Source`] as the component's `source-api`.
///
/// The export exists only in wasm builds: natively (tests, benchmarks) the plugin is a plain
/// library, and symbol names like `mecha:plugin/source-api@0.1.0#describe` would not link.
#[macro_export]
macro_rules! export_source {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Exports;
            impl $crate::source::bindings::exports::mecha::plugin::source_api::Guest for Exports {
                fn describe() -> $crate::source::PluginInfo {
                    <$ty as $crate::source::Source>::describe()
                }
                fn handle_webhook(
                    request: $crate::source::Request,
                ) -> Result<$crate::source::Outcome, $crate::source::Error> {
                    <$ty as $crate::source::Source>::handle_webhook(request)
                }
                fn hydrate(
                    event: $crate::source::Event,
                ) -> Result<$crate::source::Event, $crate::source::Error> {
                    <$ty as $crate::source::Source>::hydrate(event)
                }
            }
            $crate::source::bindings::__export_source_world!(Exports with_types_in $crate::source::bindings);
        };
        // Natively the plugin is a library; this keeps its exported type from looking unused.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::source::Source>::handle_webhook;
        };
    };
}

/// A [`PluginInfo`] with a name, version and summary, and no capabilities yet.
pub fn info(name: &str, version: &str, summary: &str) -> PluginInfo {
    PluginInfo {
        name: name.to_owned(),
        version: version.to_owned(),
        summary: summary.to_owned(),
        secrets: Vec::new(),
        settings: Vec::new(),
        hosts: Vec::new(),
    }
}

impl PluginInfo {
    /// Declares the secrets the plugin uses: a source verifies requests with them, a
    /// responder's are added to its requests by the host.
    pub fn with_secrets<const N: usize>(mut self, names: [&str; N]) -> Self {
        self.secrets
            .extend(names.iter().map(|name| name.to_string()));
        self
    }

    /// Declares the settings the plugin reads.
    pub fn with_settings<const N: usize>(mut self, names: [&str; N]) -> Self {
        self.settings
            .extend(names.iter().map(|name| name.to_string()));
        self
    }

    /// Declares the origins (`scheme://host[:port]`) the plugin calls, e.g. to hydrate events.
    pub fn with_hosts<const N: usize>(mut self, origins: [&str; N]) -> Self {
        self.hosts
            .extend(origins.iter().map(|origin| origin.to_string()));
        self
    }
}

impl Request {
    /// A `POST` with `headers` and `body`, as the host hands it to a source (for tests).
    pub fn post(headers: &[(&str, &str)], body: &[u8]) -> Request {
        Request {
            method: "POST".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            body: body.to_vec(),
        }
    }

    /// The first value of the header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.as_str())
    }

    /// Like [`Request::header`], but a missing header is a `bad-request` that names it.
    pub fn required_header(&self, name: &str) -> Result<&str, Error> {
        self.header(name)
            .ok_or_else(|| Error::BadRequest(format!("missing header {name}")))
    }
}

/// Parses a body that must be a JSON object; anything else is a `bad-request` saying why.
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::BadRequest("body must be a JSON object".into())),
        Err(err) => Err(Error::BadRequest(format!("body is not valid JSON: {err}"))),
    }
}

/// Asks the host whether `signature_hex` (hex, any case) is the HMAC-SHA256 of `message` under
/// the operator's secret `secret`. The secret never enters the plugin.
pub fn verify_hmac_sha256_hex(
    secret: &str,
    message: &[u8],
    signature_hex: &str,
) -> Result<(), Error> {
    let signature = crate::hex::decode(signature_hex)
        .ok_or_else(|| Error::Unauthorized("signature is not hex".into()))?;
    verify::hmac_sha256(secret, message, &signature)
        .map_err(|err| verify_failure(secret, "signature does not match", err))
}

/// Asks the host whether the header `header` of `request` equals the operator's secret
/// `secret`, in constant time (e.g. GitLab's `X-Gitlab-Token`). A missing header, like a wrong
/// token, is `unauthorized`.
pub fn verify_token_header(request: &Request, header: &str, secret: &str) -> Result<(), Error> {
    let presented = request
        .header(header)
        .ok_or_else(|| Error::Unauthorized(format!("missing {header} header")))?;
    verify::token_equals(secret, presented)
        .map_err(|err| verify_failure(secret, &format!("{header} does not match"), err))
}

fn verify_failure(secret: &str, mismatch: &str, err: verify::VerifyError) -> Error {
    match err {
        verify::VerifyError::Mismatch => Error::Unauthorized(mismatch.to_owned()),
        verify::VerifyError::UnknownSecret => Error::Internal(format!(
            "the secret {secret} is not configured for this source"
        )),
    }
}

/// Answers the webhook with `reply` once its events are stored, instead of the host's 202 with
/// the stored event: for providers that show or parse the answer (Slack).
pub fn acknowledge_with(reply: &Reply) {
    acknowledge::set_reply(reply);
}

/// The operator's setting `key` for this plugin instance.
pub fn setting(key: &str) -> Option<String> {
    config::get(key)
}

/// Writes a line to the daemon's log, tagged with this plugin and the current trace id.
pub fn log(level: Level, message: &str) {
    log::emit(level, message, &[]);
}

/// Starts an event of type `event_type` with nothing else set.
pub fn event(event_type: impl Into<String>) -> Event {
    Event {
        event_type: event_type.into(),
        delivery_id: None,
        dedup_key: None,
        actor: String::new(),
        subject: String::new(),
        attrs: Vec::new(),
    }
}

impl Event {
    /// Sets who caused the event.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// Sets what the event is about.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Sets the provider's delivery id, the key the host deduplicates by.
    pub fn delivery_id(mut self, id: impl Into<String>) -> Self {
        self.delivery_id = Some(id.into());
        self
    }

    /// Adds an attribute. A later attribute with the same name replaces an earlier one.
    pub fn attr(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Adds or replaces an attribute when there is a value; `None` leaves the event as it is,
    /// so a field the provider left out is an absent attr rather than an empty one.
    pub fn set_attr_some(&mut self, name: &str, value: Option<impl Into<Value>>) {
        if let Some(value) = value {
            self.set_attr(name, value);
        }
    }

    /// Adds or replaces an attribute in place.
    pub fn set_attr(&mut self, name: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|attr| attr.name == name) {
            Some(attr) => attr.value = value,
            None => self.attrs.push(Attr {
                name: name.to_owned(),
                value,
            }),
        }
    }

    /// The attribute `name`, if set.
    pub fn get_attr(&self, name: &str) -> Option<&Value> {
        self.attrs
            .iter()
            .find(|attr| attr.name == name)
            .map(|attr| &attr.value)
    }

    /// The attribute `name`, if it is text.
    pub fn text_attr(&self, name: &str) -> Option<&str> {
        match self.get_attr(name)? {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The attribute `name`, if it is an integer.
    pub fn integer_attr(&self, name: &str) -> Option<i64> {
        match self.get_attr(name)? {
            Value::Integer(number) => Some(*number),
            _ => None,
        }
    }

    /// The attribute `name`, if it is a boolean.
    pub fn boolean_attr(&self, name: &str) -> Option<bool> {
        match self.get_attr(name)? {
            Value::Boolean(flag) => Some(*flag),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Value::Integer(number)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Value::Boolean(flag)
    }
}

impl Value {
    /// A JSON scalar as an attribute value; `None` for null, arrays and objects.
    pub fn from_json(json: &serde_json::Value) -> Option<Value> {
        match json {
            serde_json::Value::String(text) => Some(Value::Text(text.clone())),
            serde_json::Value::Bool(flag) => Some(Value::Boolean(*flag)),
            serde_json::Value::Number(number) => Some(match number.as_i64() {
                Some(integer) => Value::Integer(integer),
                None => Value::Float(number.as_f64().unwrap_or(f64::NAN)),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        Request::post(headers, b"")
    }

    #[test]
    fn header_lookup_ignores_case_and_names_missing_headers() {
        let request = request(&[("x-github-event", "push")]);
        assert_eq!(request.header("X-GitHub-Event"), Some("push"));
        match request.required_header("X-GitHub-Delivery") {
            Err(Error::BadRequest(message)) => assert!(message.contains("X-GitHub-Delivery")),
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn json_object_refuses_arrays_and_garbage() {
        assert!(json_object(br#"{"a":1}"#).is_ok());
        assert!(matches!(json_object(b"[1]"), Err(Error::BadRequest(_))));
        assert!(matches!(json_object(b"{\"a\""), Err(Error::BadRequest(_))));
    }

    #[test]
    fn later_attrs_replace_earlier_ones() {
        let event = event("push").attr("ref", "a").attr("ref", "b").attr("n", 1);
        assert_eq!(event.attrs.len(), 2);
        assert!(matches!(event.get_attr("ref"), Some(Value::Text(t)) if t == "b"));
    }

    #[test]
    fn json_scalars_become_values() {
        assert!(matches!(
            Value::from_json(&serde_json::json!(7)),
            Some(Value::Integer(7))
        ));
        assert!(
            matches!(Value::from_json(&serde_json::json!(1.5)), Some(Value::Float(f)) if f == 1.5)
        );
        assert!(Value::from_json(&serde_json::json!(null)).is_none());
        assert!(Value::from_json(&serde_json::json!([1])).is_none());
    }
}
