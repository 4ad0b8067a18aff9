//! `adapter:`: a worker that mecha runs in-process, bridging tasks to an Ollama or
//! OpenAI-compatible model server (reference 2.3).
//!
//! Only the definition lives here; the runner is the worker module's.

use serde::{Deserialize, Serialize};

use super::problem::{FieldPath, Problem};
use super::url::check_http_url;
use crate::config::secrets::parse_token_reference;

/// How to reach the model behind an adapter worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// The API the upstream speaks (`type` in YAML and JSON).
    #[serde(rename = "type")]
    pub kind: AdapterType,
    /// The model server, an `http://` or `https://` URL.
    pub upstream: String,
    /// The model to ask, as the upstream names it.
    pub model: String,
    /// Sent to the upstream as a bearer token. Blanked in API output (`WorkerDef::sanitized`).
    #[serde(default)]
    pub api_key: Option<String>,
    /// A `backend.name` reference to a token in `secrets.yml`, used when `api_key` is absent.
    #[serde(default)]
    pub token: Option<String>,
}

/// The API an adapter's upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdapterType {
    /// Ollama's `/api/chat`.
    #[serde(rename = "ollama")]
    Ollama,
    /// The OpenAI chat completions API, or a server compatible with it.
    #[serde(rename = "openai")]
    Openai,
}

impl AdapterConfig {
    /// The checks that need only the definition; `at` is where `adapter` sits.
    pub(super) fn check(&self, at: &FieldPath, problems: &mut Vec<Problem>) {
        if let Err(message) = check_http_url(&self.upstream) {
            problems.push(Problem::new(&at.key("upstream"), message));
        }
        if let Err(message) = super::reach::check_address(&self.upstream) {
            problems.push(Problem::new(&at.key("upstream"), message));
        }
        if self.model.trim().is_empty() {
            problems.push(Problem::new(
                &at.key("model"),
                "is empty; name the model to use",
            ));
        }
        if self.api_key.as_deref() == Some("") {
            problems.push(Problem::new(
                &at.key("api_key"),
                "is empty; remove it or set a value",
            ));
        }
        if let Some(token) = &self.token
            && let Err(err) = parse_token_reference(token)
        {
            problems.push(Problem::new(&at.key("token"), err.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let adapter: AdapterConfig = serde_yaml::from_str(yaml).expect(yaml);
        let mut problems = Vec::new();
        adapter.check(&FieldPath::root().key("adapter"), &mut problems);
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reads_type_as_kind() {
        let adapter: AdapterConfig =
            serde_yaml::from_str("type: openai\nupstream: https://api.openai.com\nmodel: gpt\n")
                .expect("valid");
        assert_eq!(adapter.kind, AdapterType::Openai);
        let json = serde_json::to_value(&adapter).expect("serializes");
        assert_eq!(json["type"], "openai");
        let err = serde_yaml::from_str::<AdapterConfig>("type: vllm\nupstream: x\nmodel: m\n")
            .expect_err("unknown type")
            .to_string();
        assert!(
            err.contains("unknown variant `vllm`, expected `ollama` or `openai`"),
            "{err}"
        );
    }

    #[test]
    fn checks_upstream_model_key_and_token() {
        assert!(
            problems("type: ollama\nupstream: http://127.0.0.1:11434\nmodel: llama3\n").is_empty()
        );
        let found =
            problems("type: ollama\nupstream: file:///x\nmodel: ''\napi_key: ''\ntoken: x\n");
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].starts_with("adapter.upstream: `file:///x` must start with http://"));
        assert!(found[1].starts_with("adapter.model: is empty"));
        assert!(found[2].starts_with("adapter.api_key: is empty"));
        assert!(found[3].starts_with("adapter.token: token reference `x`"));
    }
}
