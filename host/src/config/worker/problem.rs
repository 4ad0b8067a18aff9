//! Problems found in worker definitions, and where in the YAML they are.
//!
//! Checks that look at more than one value (or at a value after `${VAR}` interpolation) run after
//! the YAML is parsed, when serde no longer knows positions. To still print
//! `workers/reviewer.yaml:14:11: events[1].on[0]: ...`, [`locate`] walks the document again with
//! serde_yaml down to the field and reads the position serde_yaml gives the error it raises
//! there. That costs a second parse per problem, only when there is a problem.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step into a definition: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Where a field sits in a definition, written like `events[1].filter.author`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The path of the whole definition.
    pub fn root() -> FieldPath {
        FieldPath::default()
    }

    /// This path, one key further down.
    pub fn key(&self, key: &str) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        FieldPath(segments)
    }

    /// This path, one list item further down.
    pub fn index(&self, index: usize) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        FieldPath(segments)
    }

    pub(super) fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if position == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One thing wrong with a worker definition: which file, where in it, which field, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, when the definition came from one.
    pub file: Option<PathBuf>,
    /// Line and column (1-based), when known.
    pub position: Option<(usize, usize)>,
    /// The field (`events[0].on`); the root for the definition as a whole, or when serde's own
    /// message already names the field.
    pub field: FieldPath,
    pub message: String,
}

impl Problem {
    /// A problem with `field`, not yet tied to a file.
    pub fn new(field: &FieldPath, message: impl Into<String>) -> Problem {
        Problem {
            file: None,
            position: None,
            field: field.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some((line, column)) = self.position {
                write!(f, ":{line}:{column}")?;
            }
            f.write_str(": ")?;
        }
        if !self.field.0.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors {
    pub problems: Vec<Problem>,
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// `Ok(())` when there are no problems.
pub(super) fn into_result(problems: Vec<Problem>) -> Result<(), LoadErrors> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LoadErrors { problems })
    }
}

/// Line and column of the value at `path` in the YAML `text`; for a key that is absent, the
/// position of the mapping that lacks it. `None` when the text does not parse.
pub(super) fn locate(text: &str, path: &[Segment]) -> Option<(usize, usize)> {
    let error = Probe(path)
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .err()?;
    if !error.to_string().contains(PROBE) {
        return None;
    }
    error
        .location()
        .map(|location| (location.line(), location.column()))
}

/// The message [`Probe`] stops with; serde_yaml attaches the current node's position to it.
const PROBE: &str = "mecha-position-probe";

/// Walks down `path`, skipping everything else, and fails on the node it reaches.
struct Probe<'p>(&'p [Segment]);

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if let Some((Segment::Key(wanted), rest)) = self.0.split_first() {
            while let Some(key) = map.next_key::<String>()? {
                if key == *wanted {
                    return map.next_value_seed(Probe(rest));
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Err(de::Error::custom(PROBE))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some((Segment::Index(wanted), rest)) = self.0.split_first() {
            for _ in 0..*wanted {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Err(de::Error::custom(PROBE));
                }
            }
            if seq.next_element_seed(Probe(rest))?.is_some() {
                return Ok(());
            }
        }
        Err(de::Error::custom(PROBE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name: a\n\
                        docker:\n  image: x\n  env:\n    FOO: bar\n\
                        events:\n  - source: github\n    on: [a, b]\n  - source: gitlab\n    on:\n      - c\n";

    fn at(path: &FieldPath) -> Option<(usize, usize)> {
        locate(TEXT, path.segments())
    }

    #[test]
    fn finds_values_keys_and_list_items() {
        let root = FieldPath::root();
        assert_eq!(at(&root.key("name")), Some((1, 7)));
        assert_eq!(at(&root.key("docker").key("env").key("FOO")), Some((5, 10)));
        assert_eq!(
            at(&root.key("events").index(0).key("on").index(1)),
            Some((8, 13))
        );
        assert_eq!(
            at(&root.key("events").index(1).key("on").index(0)),
            Some((11, 9))
        );
    }

    #[test]
    fn absent_keys_point_at_their_mapping() {
        let root = FieldPath::root();
        assert_eq!(at(&root.key("docker").key("api_key")), Some((3, 3)));
        assert_eq!(at(&root.key("endpoint")), Some((1, 1)));
    }

    #[test]
    fn paths_display_like_the_yaml() {
        let path = FieldPath::root()
            .key("events")
            .index(1)
            .key("filter")
            .key("author");
        assert_eq!(path.to_string(), "events[1].filter.author");
        assert_eq!(FieldPath::root().to_string(), "");
    }

    #[test]
    fn problems_display_file_position_field_message() {
        let mut problem = Problem::new(&FieldPath::root().key("name"), "bad");
        assert_eq!(problem.to_string(), "name: bad");
        problem.file = Some(PathBuf::from("w.yaml"));
        assert_eq!(problem.to_string(), "w.yaml: name: bad");
        problem.position = Some((1, 7));
        assert_eq!(problem.to_string(), "w.yaml:1:7: name: bad");
        let errors = LoadErrors {
            problems: vec![problem.clone(), problem],
        };
        assert_eq!(errors.to_string().lines().count(), 2);
    }
}
