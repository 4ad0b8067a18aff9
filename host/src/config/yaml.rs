//! serde_yaml's errors, told without the values they quote.
//!
//! serde_yaml describes a value of the wrong type by quoting it (`invalid type: string
//! "9f2e…", expected a map`), and a value in the wrong place in `secrets.yml` (a secret written
//! where its section should start), or in a worker's `docker.env`, is a secret written wrong:
//! the message would put it on the terminal at start and in the daemon's log after a reload.
//! Every YAML error mecha shows is told by [`describe`], which keeps the position, the field and
//! what was expected, and names only the kind of value found. Names the file's author chose
//! from a fixed list (`unknown field `filtr``, `unknown variant `vllm``) are kept: they are keys
//! and choices, never secrets.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// A value as serde quotes it in `invalid type` and `invalid value` messages: `integer `5``,
/// `floating point `1.5``, `boolean `true``, `character `c`` and `string "…"` (escaped as Rust
/// debug text). Group 1 is the kind.
static QUOTED_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"\b(integer|floating point|boolean) `[^`]*`|\b(character) `.`|\b(string) "(?:[^"\\]|\\.)*""#,
    )
    .expect("the quoted-value pattern is valid")
});

/// An error's position (line and column, from 1) and its message without the position and
/// without any value it quoted.
pub(crate) fn describe(err: &serde_yaml::Error) -> (Option<(usize, usize)>, String) {
    let position = err
        .location()
        .map(|location| (location.line(), location.column()));
    let mut message = err.to_string();
    if let Some((line, column)) = position
        && let Some(stripped) = message.strip_suffix(&format!(" at line {line} column {column}"))
    {
        message = stripped.to_owned();
    }
    (position, without_values(&message).into_owned())
}

/// `message` with every value serde quoted replaced by the kind of value it was.
fn without_values(message: &str) -> Cow<'_, str> {
    QUOTED_VALUE.replace_all(message, |found: &Captures<'_>| {
        let kind = (1..=3)
            .find_map(|group| found.get(group))
            .map_or("", |kind| kind.as_str());
        match kind {
            "integer" => "an integer",
            "floating point" => "a floating point number",
            "boolean" => "a boolean",
            "character" => "a character",
            _ => "a string",
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only parsed, to provoke errors")]
    struct Holder {
        map: Option<BTreeMap<String, String>>,
        flag: Option<bool>,
        number: Option<u8>,
        kind: Option<Kind>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Full,
    }

    fn message(yaml: &str) -> (Option<(usize, usize)>, String) {
        describe(&serde_yaml::from_str::<Holder>(yaml).expect_err(yaml))
    }

    #[test]
    fn values_of_the_wrong_type_are_named_by_kind_only() {
        for (yaml, expected) in [
            (
                "map: 918273645012\n",
                "map: invalid type: an integer, expected a map",
            ),
            (
                "map: sEcReT-vAlUe-123\n",
                "map: invalid type: a string, expected a map",
            ),
            (
                "map: 9182.73645\n",
                "map: invalid type: a floating point number, expected a map",
            ),
            (
                "flag: \"quoted \\\" sEcReT\"\n",
                "flag: invalid type: a string, expected a boolean",
            ),
            (
                "number: 918273645012\n",
                "number: invalid value: an integer, expected u8",
            ),
            (
                "map: true\n",
                "map: invalid type: a boolean, expected a map",
            ),
        ] {
            let (position, message) = message(yaml);
            assert_eq!(message, expected, "{yaml}");
            assert_eq!(position.map(|(line, _)| line), Some(1), "{yaml}");
            for value in ["918273645012", "9182.73645", "sEcReT"] {
                assert!(!message.contains(value), "{message}");
            }
        }
    }

    #[test]
    fn a_character_and_an_escaped_string_are_cut_whole() {
        assert_eq!(
            without_values(r#"invalid type: character `*`, expected x; string "a\"b`c" here"#),
            "invalid type: a character, expected x; a string here"
        );
    }

    #[test]
    fn keys_choices_and_syntax_errors_are_kept() {
        let (_, unknown) = message("mapp: x\n");
        assert!(unknown.contains("unknown field `mapp`"), "{unknown}");
        let (_, variant) = message("kind: fulll\n");
        assert!(variant.contains("unknown variant `fulll`"), "{variant}");
        let (position, syntax) = message("map: [unclosed\n");
        assert!(position.is_some());
        assert!(!syntax.is_empty());
    }
}
