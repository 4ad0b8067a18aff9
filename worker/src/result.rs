//! How an agent's standard output becomes mecha's result contract (reference section 3).
//!
//! Three shapes are recognised, in this order:
//!
//! 1. Claude Code's `claude -p --output-format json` summary (`"type": "result"`): its `result`
//!    text is the output and its usage figures go to `metadata`; `is_error: true` is a failure.
//! 2. A JSON object with any result-contract key (`output`, `comment`, `labels`, `status`,
//!    `commit`, `metadata`): the agent wrote its whole result itself, and it is passed through.
//! 3. Anything else is text, and becomes `output`.
//!
//! Pure functions, so each mapping is a unit test; running the agent and deciding what a non-zero
//! exit means belong to the backend.

use std::time::Duration;

use serde_json::{Map, Value};

/// The top-level keys of mecha's result contract.
const CONTRACT_KEYS: [&str; 6] = [
    "output", "comment", "labels", "status", "commit", "metadata",
];

/// Claude Code's usage figures kept in `metadata`: (where in its summary, name in metadata).
const CLAUDE_FIGURES: [(&str, &str); 7] = [
    ("/usage/input_tokens", "input_tokens"),
    ("/usage/output_tokens", "output_tokens"),
    ("/usage/cache_read_input_tokens", "cache_read_input_tokens"),
    (
        "/usage/cache_creation_input_tokens",
        "cache_creation_input_tokens",
    ),
    ("/total_cost_usd", "cost_usd"),
    ("/num_turns", "num_turns"),
    ("/session_id", "session_id"),
];

/// What an agent's output says.
#[derive(Debug, PartialEq)]
pub enum Interpretation {
    /// A result for mecha, without the run facts yet.
    Result(Map<String, Value>),
    /// The agent said it failed; the text is its explanation.
    Failed(String),
}

/// Reads an agent's standard output.
pub fn interpret(stdout: &str) -> Interpretation {
    let text = stdout.trim();
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) {
        if object.get("type").and_then(Value::as_str) == Some("result")
            && (object.get("result").is_some_and(Value::is_string)
                || object.get("is_error").is_some_and(Value::is_boolean))
        {
            return from_claude(&object);
        }
        if CONTRACT_KEYS.iter().any(|key| object.contains_key(*key)) {
            return Interpretation::Result(object);
        }
    }
    Interpretation::Result(output_only(text))
}

/// Facts about a run that every result's `metadata` carries.
pub struct RunFacts<'a> {
    pub duration: Duration,
    pub exit_code: i32,
    pub backend: &'a str,
}

/// Adds `duration_ms`, `exit_code` and `backend` to `metadata`, keeping any the agent set itself.
/// A `metadata` that is not an object (which mecha would drop anyway) is replaced.
pub fn add_run_facts(result: &mut Map<String, Value>, facts: &RunFacts<'_>) {
    let metadata = result
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    if let Value::Object(metadata) = metadata {
        let duration_ms = u64::try_from(facts.duration.as_millis()).unwrap_or(u64::MAX);
        for (key, value) in [
            ("duration_ms", Value::from(duration_ms)),
            ("exit_code", Value::from(facts.exit_code)),
            ("backend", Value::from(facts.backend)),
        ] {
            metadata.entry(key).or_insert(value);
        }
    }
}

fn from_claude(summary: &Map<String, Value>) -> Interpretation {
    let text = summary.get("result").and_then(Value::as_str).unwrap_or("");
    if summary.get("is_error").and_then(Value::as_bool) == Some(true) {
        let subtype = summary.get("subtype").and_then(Value::as_str);
        return Interpretation::Failed(match (text.trim(), subtype) {
            ("", Some(subtype)) => format!("agent reported an error ({subtype})"),
            ("", None) => "agent reported an error".to_owned(),
            (text, _) => text.to_owned(),
        });
    }
    let summary = Value::Object(summary.clone());
    let mut metadata: Map<String, Value> = CLAUDE_FIGURES
        .iter()
        .filter_map(|(pointer, name)| {
            let value = summary.pointer(pointer).filter(|value| !value.is_null())?;
            Some(((*name).to_owned(), value.clone()))
        })
        .collect();
    if let Some(model) = main_model(&summary) {
        metadata.insert("model".to_owned(), Value::from(model));
    }
    let mut result = output_only(text.trim());
    result.insert("metadata".to_owned(), Value::Object(metadata));
    Interpretation::Result(result)
}

/// The model that wrote the most, from Claude Code's per-model `modelUsage`: a run also calls a
/// small model for housekeeping, which is not the one worth reporting.
fn main_model(summary: &Value) -> Option<&str> {
    let usage = summary.get("modelUsage")?.as_object()?;
    usage
        .iter()
        .max_by_key(|(_, figures)| figures.get("outputTokens").and_then(Value::as_u64))
        .map(|(model, _)| model.as_str())
}

/// `{"output": text}`, or `{}` for no text: an empty `output` would be posted as an empty comment.
fn output_only(text: &str) -> Map<String, Value> {
    let mut result = Map::new();
    if !text.is_empty() {
        result.insert("output".to_owned(), Value::from(text));
    }
    result
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(value: Value) -> Interpretation {
        match value {
            Value::Object(object) => Interpretation::Result(object),
            other => panic!("not an object: {other}"),
        }
    }

    /// Shaped like Claude Code's `--output-format json` summary.
    const CLAUDE_SUMMARY: &str = r#"{
        "type": "result", "subtype": "success", "is_error": false,
        "duration_ms": 2871, "duration_api_ms": 4207, "num_turns": 3,
        "result": "Reviewed: looks good.\n", "session_id": "0f1e2d",
        "total_cost_usd": 0.0197,
        "usage": {"input_tokens": 12, "output_tokens": 345,
                  "cache_creation_input_tokens": 4861, "cache_read_input_tokens": 11930},
        "modelUsage": {
            "claude-haiku-4-5": {"inputTokens": 300, "outputTokens": 20, "costUSD": 0.001},
            "claude-sonnet-4-5": {"inputTokens": 12, "outputTokens": 345, "costUSD": 0.018}
        }
    }"#;

    #[test]
    fn claude_summary_becomes_output_and_usage() {
        assert_eq!(
            interpret(CLAUDE_SUMMARY),
            result(json!({
                "output": "Reviewed: looks good.",
                "metadata": {
                    "input_tokens": 12, "output_tokens": 345,
                    "cache_read_input_tokens": 11930, "cache_creation_input_tokens": 4861,
                    "cost_usd": 0.0197, "num_turns": 3, "session_id": "0f1e2d",
                    "model": "claude-sonnet-4-5",
                },
            }))
        );
    }

    #[test]
    fn claude_summary_without_usage_keeps_what_is_there() {
        assert_eq!(
            interpret(r#"{"type":"result","result":"hi","num_turns":1}"#),
            result(json!({"output": "hi", "metadata": {"num_turns": 1}}))
        );
    }

    #[test]
    fn claude_error_is_a_failure_with_its_text() {
        assert_eq!(
            interpret(r#"{"type":"result","is_error":true,"result":"Credit balance is too low"}"#),
            Interpretation::Failed("Credit balance is too low".to_owned())
        );
        assert_eq!(
            interpret(r#"{"type":"result","subtype":"error_max_turns","is_error":true}"#),
            Interpretation::Failed("agent reported an error (error_max_turns)".to_owned())
        );
    }

    #[test]
    fn a_full_result_passes_through() {
        let printed = json!({
            "output": "done",
            "comment": {"body": "LGTM"},
            "labels": {"add": ["reviewed"]},
            "metadata": {"model": "local"},
            "extra": 1,
        });
        assert_eq!(interpret(&printed.to_string()), result(printed.clone()));
        let comment_only = json!({"comment": {"body": "only a comment"}});
        assert_eq!(
            interpret(&format!("\n  {comment_only}\n")),
            result(comment_only.clone())
        );
    }

    #[test]
    fn other_json_is_text() {
        for text in [
            r#"{"answer": 42}"#,
            r#"{"type": "result"}"#,
            r#"["output"]"#,
            "\"output\"",
            "42",
        ] {
            assert_eq!(interpret(text), result(json!({ "output": text })), "{text}");
        }
    }

    #[test]
    fn text_is_trimmed_output() {
        assert_eq!(
            interpret("\nThe tests pass.\n\n"),
            result(json!({"output": "The tests pass."}))
        );
        assert_eq!(interpret("  \n"), result(json!({})));
    }

    #[test]
    fn run_facts_are_added_without_overwriting() {
        let facts = RunFacts {
            duration: Duration::from_millis(1234),
            exit_code: 0,
            backend: "command",
        };
        let mut fresh = Map::new();
        add_run_facts(&mut fresh, &facts);
        assert_eq!(
            Value::Object(fresh),
            json!({"metadata": {"duration_ms": 1234, "exit_code": 0, "backend": "command"}})
        );

        let Interpretation::Result(mut own) =
            interpret(r#"{"output":"x","metadata":{"backend":"mine","tokens":5}}"#)
        else {
            panic!("a result");
        };
        add_run_facts(&mut own, &facts);
        assert_eq!(
            Value::Object(own),
            json!({"output": "x", "metadata": {
                "backend": "mine", "tokens": 5, "duration_ms": 1234, "exit_code": 0,
            }})
        );

        let mut odd = json!({"metadata": "not an object"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        add_run_facts(&mut odd, &facts);
        assert_eq!(odd["metadata"]["backend"], "command");
    }
}
