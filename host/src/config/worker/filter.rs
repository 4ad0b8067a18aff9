//! A rule's filter on one event attr: the forms an operator writes under `filter:`, and how an
//! attr's value is compared with them.
//!
//! ```yaml
//! filter:
//!   repo: acme/widgets          # exact text
//!   number: 42                  # numbers and bools compare as text: `42`, `true`
//!   draft: false
//!   branch: "release/*"         # a glob (see glob.rs): `*`, `?`, `[...]`
//!   label: [bug, "ui-*"]        # a list: any entry may match
//!   author: "!dependabot*"      # `!` negates the rest (exact or glob)
//!   title: '\!important'        # `\!` at the start: a literal `!`
//! ```
//!
//! An attr compares by its text form: strings as they are, numbers as JSON writes them (`42`,
//! `1.5`), bools as `true`/`false`. An attr that is absent or `null` never matches a positive
//! filter and always matches a negated one. A list may not hold negated entries: "any of `!a`,
//! `!b`" would match everything, which is never what was meant; use one negated glob instead.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::glob;

/// One filter entry, `filter.<attr>` in a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// The attr is present and its text matches one of these patterns (a scalar is a list of
    /// one).
    AnyOf(Vec<String>),
    /// Written `!pattern`: the attr is absent or its text does not match the pattern.
    Not(String),
}

impl Filter {
    /// Whether an attr with this value (`None` when the event lacks it) passes the filter.
    pub fn matches(&self, value: Option<&serde_json::Value>) -> bool {
        let text = value.and_then(attr_text);
        match self {
            Filter::AnyOf(patterns) => text
                .is_some_and(|text| patterns.iter().any(|pattern| glob::matches(pattern, &text))),
            Filter::Not(pattern) => !text.is_some_and(|text| glob::matches(pattern, &text)),
        }
    }

    /// The patterns, without the `!` of a negation.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        let patterns: &[String] = match self {
            Filter::AnyOf(patterns) => patterns,
            Filter::Not(pattern) => std::slice::from_ref(pattern),
        };
        patterns.iter().map(String::as_str)
    }

    /// The same filter with every pattern passed through `map` (used by `${VAR}` interpolation:
    /// a substituted value is always pattern text, it can never turn a filter into a negation).
    pub(super) fn map_patterns(&self, mut map: impl FnMut(&str) -> String) -> Filter {
        match self {
            Filter::AnyOf(patterns) => {
                Filter::AnyOf(patterns.iter().map(|pattern| map(pattern)).collect())
            }
            Filter::Not(pattern) => Filter::Not(map(pattern)),
        }
    }
}

/// The text an attr is compared as, or `None` for `null` (treated as absent).
pub fn attr_text(value: &serde_json::Value) -> Option<Cow<'_, str>> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(Cow::Borrowed(text)),
        serde_json::Value::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        // Numbers, and (never produced by source plugins) arrays and objects: their JSON text.
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// A positive pattern written back as the operator would write it: a leading `!` gets the `\`
/// that keeps it literal.
fn written(pattern: &str) -> Cow<'_, str> {
    if pattern.starts_with('!') {
        Cow::Owned(format!("\\{pattern}"))
    } else {
        Cow::Borrowed(pattern)
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Filter::AnyOf(patterns) if patterns.len() == 1 => {
                serializer.serialize_str(&written(&patterns[0]))
            }
            Filter::AnyOf(patterns) => serializer.collect_seq(patterns.iter().map(|p| written(p))),
            Filter::Not(pattern) => serializer.serialize_str(&format!("!{pattern}")),
        }
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Filter, D::Error> {
        deserializer.deserialize_any(FilterVisitor)
    }
}

/// What the YAML forms mean; errors raised here carry the value's line and column.
struct FilterVisitor;

impl<'de> Visitor<'de> for FilterVisitor {
    type Value = Filter;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or bool, or a list of them")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Filter, E> {
        Ok(match text.strip_prefix('!') {
            Some(rest) => Filter::Not(rest.to_owned()),
            None => Filter::AnyOf(vec![unescape(text).to_owned()]),
        })
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Filter, E> {
        Ok(Filter::AnyOf(vec![flag.to_string()]))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Filter, E> {
        Ok(Filter::AnyOf(vec![number.to_string()]))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Filter, E> {
        Ok(Filter::AnyOf(vec![number.to_string()]))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Filter, E> {
        float_text(number).map(|text| Filter::AnyOf(vec![text]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Filter, A::Error> {
        let mut patterns = Vec::new();
        while let Some(Entry(text)) = seq.next_element()? {
            if text.starts_with('!') {
                return Err(de::Error::custom(format!(
                    "a filter list cannot hold the negation `{text}`: a list matches when any \
                     entry does, so negations in it would match almost everything; negate a \
                     single value or glob instead, like \"!dependabot*\""
                )));
            }
            patterns.push(unescape(&text).to_owned());
        }
        if patterns.is_empty() {
            return Err(de::Error::custom(
                "an empty filter list matches nothing; remove the filter or add values",
            ));
        }
        Ok(Filter::AnyOf(patterns))
    }
}

/// `\!x` is the literal text `!x`.
fn unescape(text: &str) -> &str {
    if text.starts_with("\\!") {
        &text[1..]
    } else {
        text
    }
}

/// A float as JSON writes it, so that `1.5` in YAML matches the attr `1.5`.
fn float_text<E: de::Error>(number: f64) -> Result<String, E> {
    serde_json::Number::from_f64(number)
        .map(|number| number.to_string())
        .ok_or_else(|| E::custom("a filter number must be finite"))
}

/// One scalar in a filter list, as text (before `!` and `\!` are looked at).
struct Entry(String);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entry, D::Error> {
        deserializer.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl Visitor<'_> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or bool")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Entry, E> {
        Ok(Entry(text.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Entry, E> {
        Ok(Entry(flag.to_string()))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Entry, E> {
        Ok(Entry(number.to_string()))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Entry, E> {
        Ok(Entry(number.to_string()))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Entry, E> {
        float_text(number).map(Entry)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(yaml: &str) -> Filter {
        serde_yaml::from_str(yaml).expect(yaml)
    }

    #[test]
    fn scalars_compare_as_text() {
        assert!(filter("acme/widgets").matches(Some(&json!("acme/widgets"))));
        assert!(!filter("acme/widgets").matches(Some(&json!("acme/gadgets"))));
        assert!(filter("42").matches(Some(&json!(42))));
        assert!(filter("'42'").matches(Some(&json!(42))));
        assert!(filter("42").matches(Some(&json!("42"))));
        assert!(!filter("42").matches(Some(&json!(420))));
        assert!(filter("1.5").matches(Some(&json!(1.5))));
        assert!(filter("true").matches(Some(&json!(true))));
        assert!(filter("false").matches(Some(&json!(false))));
        assert!(!filter("true").matches(Some(&json!(false))));
        assert!(filter("'true'").matches(Some(&json!(true))));
    }

    #[test]
    fn globs_in_scalars() {
        assert!(filter("'release/*'").matches(Some(&json!("release/1.2"))));
        assert!(!filter("'release/*'").matches(Some(&json!("main"))));
        assert!(filter("'v?'").matches(Some(&json!("v2"))));
        assert!(filter("'[0-9]*'").matches(Some(&json!(42))));
    }

    #[test]
    fn lists_match_any_entry() {
        let labels = filter("[bug, 'ui-*', 7]");
        assert!(labels.matches(Some(&json!("bug"))));
        assert!(labels.matches(Some(&json!("ui-button"))));
        assert!(labels.matches(Some(&json!(7))));
        assert!(!labels.matches(Some(&json!("docs"))));
    }

    #[test]
    fn negation_of_exact_and_glob() {
        let not_bot = filter("'!dependabot*'");
        assert_eq!(not_bot, Filter::Not("dependabot*".into()));
        assert!(not_bot.matches(Some(&json!("alice"))));
        assert!(!not_bot.matches(Some(&json!("dependabot[bot]"))));
        let not_main = filter("'!main'");
        assert!(!not_main.matches(Some(&json!("main"))));
        assert!(not_main.matches(Some(&json!("mainline"))));
    }

    #[test]
    fn missing_or_null_attrs_never_match_positive_always_match_negated() {
        for value in [None, Some(&serde_json::Value::Null)] {
            assert!(!filter("x").matches(value));
            assert!(!filter("'*'").matches(value), "not even a bare star");
            assert!(!filter("[a, b]").matches(value));
            assert!(filter("'!x'").matches(value));
            assert!(filter("'!*'").matches(value));
        }
    }

    #[test]
    fn escaped_bang_is_literal_and_round_trips() {
        let literal = filter(r"'\!important'");
        assert_eq!(literal, Filter::AnyOf(vec!["!important".into()]));
        assert!(literal.matches(Some(&json!("!important"))));
        assert!(!literal.matches(Some(&json!("important"))));
        let json = serde_json::to_string(&literal).expect("serializes");
        assert_eq!(json, r#""\\!important""#);
        assert_eq!(
            serde_json::from_str::<Filter>(&json).expect("back"),
            literal
        );
    }

    #[test]
    fn json_round_trip_of_every_form() {
        for yaml in ["x", "42", "true", "'!x*'", "[a, 'b*', 3]"] {
            let original = filter(yaml);
            let json = serde_json::to_string(&original).expect("serializes");
            let back: Filter = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, original, "{yaml} -> {json}");
        }
    }

    #[test]
    fn bad_forms_are_refused_with_a_reason() {
        let err = |yaml: &str| {
            serde_yaml::from_str::<Filter>(yaml)
                .expect_err(yaml)
                .to_string()
        };
        assert!(err("{a: 1}").contains("expected a string, number or bool, or a list"));
        assert!(err("[]").contains("empty filter list"));
        assert!(err("[a, '!b']").contains("cannot hold the negation `!b`"));
        assert!(err("[[a]]").contains("expected a string, number or bool"));
        assert!(err("~").contains("expected a string, number or bool, or a list"));
    }
}
