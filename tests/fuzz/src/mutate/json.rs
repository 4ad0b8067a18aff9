//! Structure-aware JSON mutations: a seed parsed once is changed node by node, so the result is
//! mostly well-formed and gets past the tokenizer into the parsers' own logic.
//!
//! Some of what hostile senders write cannot be held in a `serde_json::Value`: numbers past
//! `f64` (`1e999`), lone surrogate escapes (`"\ud800"`), duplicate keys. Such a node becomes a
//! placeholder string, and [`Document::into_bytes`] swaps each placeholder for its raw text.

use serde_json::{Map, Value};

use crate::hostile;
use crate::rng::Rng;

/// 200 levels: past serde_json's recursion limit (128), to prove deep bodies are refused and
/// do not overflow the stack.
const MAX_DEPTH: usize = 200;

/// Keys no parser knows, or knows at another level.
const UNKNOWN_KEYS: &[&str] = &[
    "",
    "__proto__",
    "constructor",
    "type",
    "id",
    "action",
    "user",
    "event",
    "message",
    "update_id",
    "object_attributes",
    "payload",
    "Type",
    "\u{0}",
    "😀",
    "a.b",
    "a/b",
    "~1",
];

/// Marks a placeholder string; no seed contains it.
const PLACEHOLDER: &str = "\u{1}raw:";

/// A JSON document being mutated, with the raw texts its placeholders stand for.
pub struct Document {
    root: Value,
    raw: Vec<String>,
}

impl Document {
    pub fn new(root: Value) -> Document {
        Document {
            root,
            raw: Vec::new(),
        }
    }

    /// Applies one random structure-aware mutation.
    pub fn mutate(&mut self, rng: &mut Rng) {
        let path = pick_path(rng, &self.root);
        let replacement = match rng.below(16) {
            0 => Some(scalar(rng)),
            1 => Some(Value::String(String::new())),
            2 => Some(Value::String(hostile::long_text(rng, 64 * 1024))),
            3 => Some(Value::String(hostile::unicode(rng))),
            4 => Some(Value::Null),
            5 => Some(self.placeholder(rng.pick(hostile::NUMBERS).to_string())),
            6 => Some(self.placeholder(rng.pick(hostile::STRING_LITERALS).to_string())),
            7 => Some(self.placeholder(deep_nesting(rng))),
            8 => Some(nested(rng, 3)),
            9 => self.duplicate_key(rng, &path),
            _ => None,
        };
        let Some(node) = self.root.pointer_mut(&path) else {
            return;
        };
        match replacement {
            Some(value) => *node = value,
            None => reshape(rng, node),
        }
    }

    /// The document as JSON text, compact or pretty, with the placeholders' raw texts in place.
    pub fn into_bytes(self, rng: &mut Rng) -> Vec<u8> {
        let serialized = if rng.chance(10) {
            serde_json::to_string_pretty(&self.root)
        } else {
            serde_json::to_string(&self.root)
        };
        let mut text = serialized.unwrap_or_default();
        // Later raw texts may contain earlier placeholders (a duplicated key's object), so they
        // are substituted last first; a node copied by an array mutation holds its placeholder
        // several times.
        for (index, raw) in self.raw.iter().enumerate().rev() {
            let quoted = format!("\"{}\"", placeholder_json(index));
            text = text.replace(&quoted, raw);
        }
        text.into_bytes()
    }

    fn placeholder(&mut self, raw: String) -> Value {
        self.raw.push(raw);
        Value::String(format!("{PLACEHOLDER}{}", self.raw.len() - 1))
    }

    /// The object at `path`, or its nearest enclosing object, rewritten with one key repeated:
    /// serde keeps the last value, derived structs refuse it, hand-written visitors must choose.
    fn duplicate_key(&mut self, rng: &mut Rng, path: &str) -> Option<Value> {
        let object = self.root.pointer(path)?.as_object()?;
        let key = object.keys().nth(rng.below(object.len()))?.clone();
        let mut text = serde_json::to_string(object).ok()?;
        text.pop();
        for _ in 0..rng.between(1, 3) {
            let value = serde_json::to_string(&scalar(rng)).ok()?;
            let key = serde_json::to_string(&key).ok()?;
            text.push_str(&format!(",{key}:{value}"));
        }
        text.push('}');
        Some(self.placeholder(text))
    }
}

/// How serde_json writes a placeholder's text inside quotes.
fn placeholder_json(index: usize) -> String {
    format!("\\u0001raw:{index}")
}

/// A JSON pointer to a random node: the root now and then (replacing it wipes the whole
/// document), else a child chosen at each level with a bias towards stopping, so shallow and
/// deep nodes both get mutated.
fn pick_path(rng: &mut Rng, root: &Value) -> String {
    let mut path = String::new();
    let mut node = root;
    loop {
        if rng.chance(if path.is_empty() { 4 } else { 25 }) {
            return path;
        }
        let (key, child) = match node {
            Value::Array(items) if !items.is_empty() => {
                let index = rng.below(items.len());
                (index.to_string(), &items[index])
            }
            Value::Object(map) if !map.is_empty() => match map.iter().nth(rng.below(map.len())) {
                Some((key, child)) => (key.replace('~', "~0").replace('/', "~1"), child),
                None => return path,
            },
            _ => return path,
        };
        path.push('/');
        path.push_str(&key);
        node = child;
    }
}

/// Changes a node while keeping (mostly) its type: removes, adds or repeats members, edits
/// strings, moves numbers to their edges, flips booleans.
fn reshape(rng: &mut Rng, node: &mut Value) {
    match node {
        Value::Object(map) => reshape_object(rng, map),
        Value::Array(items) => match rng.below(4) {
            0 => items.clear(),
            1 if !items.is_empty() => {
                items.remove(rng.below(items.len()));
            }
            2 if !items.is_empty() => {
                let item = items[rng.below(items.len())].clone();
                let copies = rng.size(1000);
                items.extend(std::iter::repeat_n(item, copies));
            }
            _ => items.insert(rng.below(items.len() + 1), nested(rng, 2)),
        },
        // A placeholder edited would no longer be found, and its raw text lost.
        Value::String(text) if text.starts_with(PLACEHOLDER) => *node = scalar(rng),
        Value::String(text) => *text = edit_text(rng, text),
        Value::Number(_) => {
            *node = match rng.below(4) {
                0 => Value::from(hostile::integer(rng)),
                1 => Value::from(hostile::integer(rng).to_string()),
                2 => Value::from(rng.next_u64()),
                _ => Value::from(f64::from_bits(rng.next_u64())),
            }
        }
        Value::Bool(flag) => *flag = !*flag,
        Value::Null => *node = scalar(rng),
    }
}

fn reshape_object(rng: &mut Rng, map: &mut Map<String, Value>) {
    if !map.is_empty() && rng.chance(50) {
        if let Some(key) = map.keys().nth(rng.below(map.len())).cloned() {
            map.remove(&key);
        }
        return;
    }
    let key = match rng.below(3) {
        0 => hostile::text(rng),
        _ => rng.pick(UNKNOWN_KEYS).to_string(),
    };
    map.insert(key, nested(rng, 2));
}

/// `text` cut, grown, or with hostile characters inserted at a character boundary.
fn edit_text(rng: &mut Rng, text: &str) -> String {
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(at, _)| at)
        .chain([text.len()])
        .collect();
    let at = *rng.pick(&boundaries);
    match rng.below(4) {
        0 => text[..at].to_owned(),
        1 => format!("{}{}{}", &text[..at], hostile::unicode(rng), &text[at..]),
        2 => format!("{}{}{}", &text[..at], hostile::word(rng), &text[at..]),
        _ => text.repeat(rng.between(2, 64)),
    }
}

/// A random scalar.
fn scalar(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => Value::from(hostile::integer(rng)),
        3 => Value::from(f64::from_bits(rng.next_u64())),
        _ => Value::String(hostile::text(rng)),
    }
}

/// A random value up to `depth` levels deep.
fn nested(rng: &mut Rng, depth: usize) -> Value {
    if depth == 0 || rng.chance(50) {
        return scalar(rng);
    }
    let len = rng.size(4);
    if rng.chance(50) {
        Value::Array((0..len).map(|_| nested(rng, depth - 1)).collect())
    } else {
        Value::Object(
            (0..len)
                .map(|_| (rng.pick(UNKNOWN_KEYS).to_string(), nested(rng, depth - 1)))
                .collect(),
        )
    }
}

/// Arrays and objects nested up to [`MAX_DEPTH`] levels, as text.
fn deep_nesting(rng: &mut Rng) -> String {
    let depth = rng.between(1, MAX_DEPTH);
    let arrays = rng.chance(50);
    let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_texts_replace_their_placeholders() {
        let mut document = Document::new(serde_json::json!({"n": 1, "s": "x"}));
        let number = document.placeholder("1e999".into());
        let literal = document.placeholder(r#""\ud800""#.into());
        document.root["n"] = number;
        document.root["s"] = literal;
        let text = document.into_bytes(&mut Rng::new(1));
        assert_eq!(text, br#"{"n":1e999,"s":"\ud800"}"#);
    }

    #[test]
    fn duplicated_keys_survive_serialization() {
        let mut document = Document::new(serde_json::json!({"a": {"k": 1}}));
        let mut rng = Rng::new(2);
        let duplicated = document.duplicate_key(&mut rng, "/a").expect("an object");
        document.root["a"] = duplicated;
        let text = String::from_utf8(document.into_bytes(&mut rng)).expect("UTF-8");
        assert!(text.starts_with(r#"{"a":{"k":1,"k":"#), "{text}");
    }

    #[test]
    fn mutated_documents_stay_serializable() {
        let mut rng = Rng::new(3);
        for _ in 0..2_000 {
            let mut document = Document::new(serde_json::json!({"a": [1, {"b": "c"}], "d": true}));
            for _ in 0..4 {
                document.mutate(&mut rng);
            }
            let text = String::from_utf8(document.into_bytes(&mut rng)).expect("UTF-8");
            assert!(!text.contains("\\u0001raw:"), "{text}");
        }
    }
}
