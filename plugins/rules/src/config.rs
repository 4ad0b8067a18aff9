//! The operator's policy config: the map under a worker's `policy:` key, as JSON text.
//!
//! ```yaml
//! policy:
//!   comment:  {allow: true, max_length: 500}
//!   labels:   {allow: true, blocked: [wontfix], allowed: [bug, security]}
//!   status:   {allow: true}
//!   commit:   {allow: false, max_size: 10000}
//!   metadata: {allow: false}
//! ```
//!
//! Parsing is strict because a mistake here must never widen what a worker may do: a typo'd
//! section (`coment`) or a quoted boolean (`allow: "yes"`) makes the whole config invalid, and
//! [`crate::rules`] then lets nothing but `output` through. Every problem is reported at once, each
//! naming its key, so the operator fixes them in one pass.

use serde_json::{Map, Value};

/// A section a config may hold, and the keys it takes.
struct Shape {
    name: &'static str,
    keys: &'static [&'static str],
}

const COMMENT: Shape = Shape {
    name: "comment",
    keys: &["allow", "max_length"],
};
const LABELS: Shape = Shape {
    name: "labels",
    keys: &["allow", "blocked", "allowed"],
};
const STATUS: Shape = Shape {
    name: "status",
    keys: &["allow"],
};
const COMMIT: Shape = Shape {
    name: "commit",
    keys: &["allow", "max_size"],
};
const METADATA: Shape = Shape {
    name: "metadata",
    keys: &["allow"],
};
const SECTIONS: [Shape; 5] = [COMMENT, LABELS, STATUS, COMMIT, METADATA];

/// A valid config.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// No config (missing, empty, `null` or `{}`): every action passes.
    AllowAll,
    /// One rule per section the operator wrote; `None` where the section is absent, which lets
    /// that action through unconditionally.
    Rules(Rules),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub comment: Option<CommentRule>,
    pub labels: Option<LabelsRule>,
    /// `allow` of the `status` section.
    pub status: Option<bool>,
    pub commit: Option<CommitRule>,
    /// `allow` of the `metadata` section.
    pub metadata: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommentRule {
    pub allow: bool,
    /// The longest body in characters; 0 means no limit.
    pub max_length: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelsRule {
    pub allow: bool,
    /// Labels never added or removed, compared case-insensitively.
    pub blocked: Vec<String>,
    /// When not empty, the only labels that may be added or removed.
    pub allowed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommitRule {
    pub allow: bool,
    /// The largest diff in bytes; 0 means no limit.
    pub max_size: usize,
}

/// Why a config is invalid: one message per problem, each naming its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub Vec<String>);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

/// Parses and checks `text`, the worker's policy config as JSON.
pub fn parse(text: &str) -> Result<Policy, Invalid> {
    if text.trim().is_empty() {
        return Ok(Policy::AllowAll);
    }
    let sections = match serde_json::from_str::<Value>(text) {
        Ok(Value::Null) => return Ok(Policy::AllowAll),
        Ok(Value::Object(sections)) => sections,
        Ok(other) => {
            return Err(Invalid(vec![format!(
                "the policy must be a map of sections, got {}",
                describe(&other)
            )]));
        }
        Err(err) => {
            return Err(Invalid(vec![format!(
                "the policy is not valid JSON: {err}"
            )]));
        }
    };
    if sections.is_empty() {
        return Ok(Policy::AllowAll);
    }
    let mut problems = Vec::new();
    for name in sections.keys() {
        if !SECTIONS.iter().any(|shape| shape.name == name) {
            problems.push(format!(
                "unknown section {name:?} (sections are comment, labels, status, commit and metadata)"
            ));
        }
    }
    let mut checker = Checker {
        sections: &sections,
        problems,
    };
    let rules = Rules {
        comment: checker.section(&COMMENT).map(|mut section| CommentRule {
            allow: section.allow(),
            max_length: section.size("max_length"),
        }),
        labels: checker.section(&LABELS).map(|mut section| LabelsRule {
            allow: section.allow(),
            blocked: section.labels("blocked"),
            allowed: section.labels("allowed"),
        }),
        status: checker.section(&STATUS).map(|mut section| section.allow()),
        commit: checker.section(&COMMIT).map(|mut section| CommitRule {
            allow: section.allow(),
            max_size: section.size("max_size"),
        }),
        metadata: checker
            .section(&METADATA)
            .map(|mut section| section.allow()),
    };
    if checker.problems.is_empty() {
        Ok(Policy::Rules(rules))
    } else {
        Err(Invalid(checker.problems))
    }
}

/// Walks the sections of one config, collecting what is wrong with them.
struct Checker<'a> {
    sections: &'a Map<String, Value>,
    problems: Vec<String>,
}

impl<'a> Checker<'a> {
    /// The section of `shape` when present, after checking that it is a map of known keys.
    ///
    /// A section that is not a map is reported and treated as absent: the config is invalid
    /// either way, so what it would have allowed no longer matters.
    fn section(&mut self, shape: &Shape) -> Option<Section<'a, '_>> {
        let name = shape.name;
        let value = self.sections.get(name)?;
        let Value::Object(keys) = value else {
            self.problems
                .push(format!("{name} must be a map, got {}", describe(value)));
            return None;
        };
        for key in keys.keys() {
            if !shape.keys.contains(&key.as_str()) {
                self.problems.push(format!(
                    "unknown key {name}.{key} ({name} takes {})",
                    shape.keys.join(", ")
                ));
            }
        }
        Some(Section {
            name,
            keys,
            problems: &mut self.problems,
        })
    }
}

/// One section of the config, read key by key. A value of the wrong type is reported and read
/// as a default, which is never used: the whole config is invalid.
struct Section<'a, 'p> {
    name: &'static str,
    keys: &'a Map<String, Value>,
    problems: &'p mut Vec<String>,
}

impl Section<'_, '_> {
    /// `allow`, which must be a real boolean; a section without it allows nothing.
    fn allow(&mut self) -> bool {
        match self.keys.get("allow") {
            None => false,
            Some(Value::Bool(allow)) => *allow,
            Some(other) => {
                let problem = format!(
                    "{}.allow must be true or false, got {}",
                    self.name,
                    describe(other)
                );
                self.problems.push(problem);
                false
            }
        }
    }

    /// A limit such as `max_length`: a non-negative integer or float (YAML writes either), whose
    /// fraction is dropped; 0 when absent, which means no limit.
    fn size(&mut self, key: &str) -> usize {
        let Some(value) = self.keys.get(key) else {
            return 0;
        };
        let size = match value {
            Value::Number(number) => match (number.as_u64(), number.as_f64()) {
                (Some(size), _) => Some(usize::try_from(size).unwrap_or(usize::MAX)),
                // `as` saturates, so a huge float is simply no practical limit.
                (None, Some(size)) if size >= 0.0 => Some(size as usize),
                _ => None,
            },
            _ => None,
        };
        size.unwrap_or_else(|| {
            let problem = format!(
                "{}.{key} must be a number of 0 or more, got {}",
                self.name,
                describe(value)
            );
            self.problems.push(problem);
            0
        })
    }

    /// A list of labels; items that are not strings are skipped.
    fn labels(&mut self, key: &str) -> Vec<String> {
        match self.keys.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
            Some(other) => {
                let problem = format!(
                    "{}.{key} must be a list of labels, got {}",
                    self.name,
                    describe(other)
                );
                self.problems.push(problem);
                Vec::new()
            }
        }
    }
}

/// A config value as an operator would recognise it: scalars as written, lists and maps by kind.
fn describe(value: &Value) -> String {
    match value {
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a map".to_owned(),
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_config_allows_all() {
        for text in ["", "  \n", "null", "{}", " { } "] {
            assert_eq!(parse(text), Ok(Policy::AllowAll), "{text:?}");
        }
    }

    #[test]
    fn a_full_config_parses_into_rules() {
        let text = r#"{
            "comment": {"allow": true, "max_length": 500},
            "labels": {"allow": true, "blocked": ["wontfix", 3], "allowed": ["bug", "security"]},
            "status": {"allow": true},
            "commit": {"allow": false, "max_size": 10000.0},
            "metadata": {}
        }"#;
        assert_eq!(
            parse(text),
            Ok(Policy::Rules(Rules {
                comment: Some(CommentRule {
                    allow: true,
                    max_length: 500,
                }),
                labels: Some(LabelsRule {
                    allow: true,
                    blocked: vec!["wontfix".into()],
                    allowed: vec!["bug".into(), "security".into()],
                }),
                status: Some(true),
                commit: Some(CommitRule {
                    allow: false,
                    max_size: 10_000,
                }),
                metadata: Some(false),
            }))
        );
    }

    #[test]
    fn absent_sections_stay_absent() {
        assert_eq!(
            parse(r#"{"status": {"allow": true}}"#),
            Ok(Policy::Rules(Rules {
                comment: None,
                labels: None,
                status: Some(true),
                commit: None,
                metadata: None,
            }))
        );
    }

    #[test]
    fn limits_accept_integers_and_floats() {
        let max_length = |value: &str| match parse(&format!(
            r#"{{"comment": {{"allow": true, "max_length": {value}}}}}"#
        )) {
            Ok(Policy::Rules(Rules {
                comment: Some(rule),
                ..
            })) => Ok(rule.max_length),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(max_length("0"), Ok(0));
        assert_eq!(max_length("100"), Ok(100));
        assert_eq!(max_length("100.0"), Ok(100));
        assert_eq!(max_length("99.99"), Ok(99));
        assert_eq!(max_length("-0.0"), Ok(0));
        assert_eq!(max_length("1e300"), Ok(usize::MAX));
        assert_eq!(max_length("18446744073709551615"), Ok(usize::MAX));
        assert!(max_length("-1").is_err());
        assert!(max_length("true").is_err());
        assert!(max_length("null").is_err());
    }

    #[test]
    fn every_problem_is_collected_and_named() {
        let Err(Invalid(problems)) = parse(
            r#"{"zzz": 1, "comment": {"allow": "yes", "extra": 1}, "labels": [], "commit": {"max_size": "big"}}"#,
        ) else {
            panic!("an invalid config parsed");
        };
        assert_eq!(
            problems,
            [
                "unknown section \"zzz\" (sections are comment, labels, status, commit and metadata)",
                "unknown key comment.extra (comment takes allow, max_length)",
                "comment.allow must be true or false, got \"yes\"",
                "labels must be a map, got a list",
                "commit.max_size must be a number of 0 or more, got \"big\"",
            ]
        );
    }
}
