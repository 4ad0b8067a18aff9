//! Source plugins called through the library, as the daemon calls them: the bundled wasm
//! components, loaded into a runtime of their own.

use std::collections::BTreeMap;
use std::sync::Arc;

use mecha::config::secrets::Secret;
use mecha::plugin::bindings::source::{Outcome, types};
use mecha::plugin::engine::RuntimeOptions;
use mecha::plugin::loader::{Loader, Runner};
use mecha::plugin::source::{SourceCall, SourcePlugin};
use mecha::plugin::{PluginRegistry, Runtime, World};
use serde_json::Value;

/// A bundled source plugin with the call settings of one instance.
pub struct Source {
    pub plugin: Arc<SourcePlugin>,
    pub call: SourceCall,
    /// Keeps the runtime alive.
    _loader: Loader,
}

impl Source {
    /// The bundled source `name`, with `secrets` (name, value) configured.
    pub async fn bundled(name: &str, secrets: &[(&str, &str)]) -> Source {
        let runtime = Runtime::new(RuntimeOptions::with_pool(4)).expect("runtime");
        let loader = Loader::new(Arc::new(runtime), None).expect("loader");
        let installed =
            mecha::plugin::install::Installed::new(std::env::temp_dir().join("mecha-none"));
        let registry = PluginRegistry::load(&loader, &installed)
            .await
            .expect("bundled plugins load");
        let Runner::Source(plugin) = registry
            .get(World::Source, name)
            .unwrap_or_else(|| panic!("{name} is bundled"))
            .runner
            .clone()
        else {
            panic!("{name} is a source");
        };
        let secrets = secrets
            .iter()
            .map(|(name, value)| (name.to_string(), Secret::new(*value)))
            .collect();
        Source {
            plugin,
            call: SourceCall {
                secrets: Arc::new(secrets),
                ..SourceCall::default()
            },
            _loader: loader,
        }
    }

    /// Calls `handle-webhook`; the outcome, and whether a signature or token was verified.
    pub async fn handle(&self, request: types::Request) -> (Result<Outcome, types::Error>, bool) {
        let answer = self
            .plugin
            .handle_webhook(&self.call, request)
            .await
            .expect("the call itself succeeds");
        (answer.outcome, answer.verified)
    }

    /// Calls `handle-webhook` on a request that must give exactly one event, verified.
    pub async fn one_event(&self, request: types::Request, what: &str) -> types::Event {
        match self.handle(request).await {
            (Ok(Outcome::Events(mut events)), true) if events.len() == 1 => {
                events.pop().expect("one")
            }
            other => panic!("{what}: expected one verified event, got {other:?}"),
        }
    }
}

/// A POST with `headers` and `body`.
pub fn request(headers: &[(&str, String)], body: &[u8]) -> types::Request {
    types::Request {
        method: "POST".into(),
        query: String::new(),
        headers: headers
            .iter()
            .map(|(name, value)| types::Header {
                name: name.to_string(),
                value: value.clone(),
            })
            .collect(),
        body: body.to_vec(),
    }
}

/// An event's attrs as JSON values, by name.
pub fn attrs(event: &types::Event) -> BTreeMap<String, Value> {
    event
        .attrs
        .iter()
        .map(|attr| {
            let value = match &attr.value {
                types::Value::Text(text) => Value::from(text.as_str()),
                types::Value::Integer(number) => Value::from(*number),
                types::Value::Float(number) => Value::from(*number),
                types::Value::Boolean(flag) => Value::from(*flag),
            };
            (attr.name.clone(), value)
        })
        .collect()
}
