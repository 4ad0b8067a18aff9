//! The result contract: what a worker's `200` reply may ask mecha to do (reference section 3).
//!
//! Every field is optional and unknown fields are ignored. A field whose shape is wrong is
//! dropped on its own (a malformed `labels` does not cost the worker its `comment`), and a body
//! that is not a JSON object is no result at all: the task still succeeded, there is just nothing
//! to write back. Deciding what to do with a result belongs to the write-back step.
//!
//! Parsing hides nothing: a result on its way out of mecha is taken through
//! [`crate::redact::Redactor::worker_result`], which redacts it by its decoded values first.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// A parsed worker result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerResult {
    /// Free text; posted as a comment when there is no `comment`.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub output: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<Comment>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub labels: Option<Labels>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<Status>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub commit: Option<Commit>,
    /// Free-form facts about the run (model, token counts, duration), kept for the audit trail.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A comment to post on the event's subject. The Go mecha's `target` is never read, so it is not
/// kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub body: String,
}

/// Labels to add to and remove from the event's subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A commit status to set on the event's head commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub state: StatusState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The states a commit status can take (GitHub's four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    Error,
    Failure,
    Pending,
    Success,
}

/// A commit to push: a message and a unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub message: String,
    pub diff: String,
}

/// The result in a worker's reply body, or `None` when the body is not a JSON object (which is
/// not an error: the worker simply asked for nothing).
pub fn parse_result(body: &str) -> Option<WorkerResult> {
    // Through `Value` first: serde would also read a struct from a JSON array.
    match serde_json::from_str(body).ok()? {
        object @ serde_json::Value::Object(_) => serde_json::from_value(object).ok(),
        _ => None,
    }
}

/// A field that fails to deserialize becomes `None` instead of failing the whole result.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_result_parses() {
        let body = r#"{
            "output": "looks good",
            "comment": {"target": "pr:42", "body": "LGTM"},
            "labels": {"add": ["reviewed"], "remove": ["needs-review"]},
            "status": {"state": "success", "description": "review passed"},
            "commit": {"message": "fix typo", "diff": "--- a\n+++ b\n"},
            "metadata": {"model": "m", "input_tokens": 3, "exit_code": 0},
            "something_new": true
        }"#;
        let result = parse_result(body).expect("parses");
        assert_eq!(result.output.as_deref(), Some("looks good"));
        assert_eq!(result.comment.map(|c| c.body).as_deref(), Some("LGTM"));
        let labels = result.labels.expect("labels");
        assert_eq!(
            (labels.add, labels.remove),
            (vec!["reviewed".to_owned()], vec!["needs-review".to_owned()])
        );
        let status = result.status.expect("status");
        assert_eq!(status.state, StatusState::Success);
        assert_eq!(status.description.as_deref(), Some("review passed"));
        assert_eq!(
            result.commit.map(|c| c.message).as_deref(),
            Some("fix typo")
        );
        assert_eq!(result.metadata.expect("metadata")["input_tokens"], 3);
    }

    #[test]
    fn every_field_is_optional() {
        assert_eq!(parse_result("{}"), Some(WorkerResult::default()));
        let result = parse_result(r#"{"output": "only text"}"#).expect("parses");
        assert_eq!(result.output.as_deref(), Some("only text"));
        assert!(result.comment.is_none() && result.metadata.is_none());
    }

    #[test]
    fn a_malformed_field_is_dropped_alone() {
        let body = r#"{"comment": {"body": "kept"}, "labels": "not-an-object",
                       "status": {"state": "exploded"}, "output": 42}"#;
        let result = parse_result(body).expect("parses");
        assert_eq!(result.comment.map(|c| c.body).as_deref(), Some("kept"));
        assert!(result.labels.is_none() && result.status.is_none() && result.output.is_none());
    }

    #[test]
    fn non_json_or_non_object_is_no_result() {
        for body in [
            "plain text from the model",
            "",
            "[1, 2]",
            "\"a string\"",
            "null",
            "{",
        ] {
            assert_eq!(parse_result(body), None, "{body:?}");
        }
    }

    #[test]
    fn serializes_without_empty_fields() {
        let result = WorkerResult {
            output: Some("hi".to_owned()),
            labels: Some(Labels {
                add: vec!["a".to_owned()],
                remove: Vec::new(),
            }),
            ..WorkerResult::default()
        };
        let text = serde_json::to_string(&result).expect("serializes");
        assert_eq!(
            text,
            r#"{"output":"hi","labels":{"add":["a"],"remove":[]}}"#
        );
        assert_eq!(parse_result(&text), Some(result));
    }
}
