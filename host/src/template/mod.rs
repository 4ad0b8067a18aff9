//! Prompt rendering: a rule's `prompt` template filled in from the event (reference 5.3). Its
//! own module, outside `pipeline`, because worker definitions (`config`) check their templates
//! when they are loaded and the pipeline renders them: neither depends on the other for it.
//!
//! Templates are [minijinja](https://docs.rs/minijinja) with strict undefined values: a variable
//! the event does not have is an error that names it, never an empty string, so a prompt cannot
//! silently lose its subject. The data is every attr of the event, then `actor`, `subject`,
//! `source` and `type`, which override attrs of the same names. Values are data: whatever an attr
//! holds (`{{ 7*7 }}`, `{% for %}`) is printed as text and never read as template syntax, so the
//! Go mecha's `{{` → `{ {` rewriting of attr values is not needed.
//!
//! Strings and numbers print as they are and bools as `true`/`false`, as the Go mecha printed
//! them; `null` prints as nothing, and lists and maps as JSON (which a model reads more surely
//! than Go's `map[...]`). Nothing is HTML-escaped.
//!
//! # Go templates
//!
//! Prompts written for the Go mecha keep working: before compiling, these Go actions are
//! translated (spaces inside the braces and Go's trim markers `{{- ` / ` -}}` are allowed):
//!
//! | Go | minijinja |
//! |---|---|
//! | `{{.number}}`, `{{ .title }}`, `{{.repo.owner}}` | `{{ number }}`, `{{ title }}`, `{{ repo.owner }}` |
//! | `{{if .draft}}`, `{{if not .draft}}` | `{% if draft %}`, `{% if not draft %}` |
//! | `{{else if .x}}`, `{{else}}`, `{{end}}` (closing a translated `if`) | `{% elif x %}`, `{% else %}`, `{% endif %}` |
//! | `{{/* comment */}}` | nothing |
//!
//! Other Go actions are refused with a message saying how to write them in minijinja: `{{.}}`,
//! pipelines and function calls (`{{.title | printf "%q"}}`, `{{if eq .a "b"}}`), variables
//! (`{{$x := .a}}`), `range`, `with`, `define`, `template` and `block`. An attr whose name is a
//! minijinja keyword (`true`, `none`, `not`, ...) cannot be referenced. The translation is
//! textual: it applies wherever a `{{` action appears, and `{{ end }}` or `{{ else }}` outside a
//! Go `if` are left to minijinja (where they name variables).
//!
//! Each call compiles its template: a small prompt compiles and renders in a few microseconds,
//! well under the cost of anything else done per event, so no cache is kept.

use std::fmt;
use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, ValueKind};
use minijinja::{Environment, ErrorKind, Template, UndefinedBehavior, Value};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::store::EventRecord;

mod go;

/// The event fields offered to every template; they override attrs of the same names.
const EVENT_FIELDS: [&str; 4] = ["actor", "subject", "source", "type"];

/// Why a template could not be compiled or rendered, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The template does not compile (after Go forms are translated).
    Syntax {
        line: Option<usize>,
        message: String,
    },
    /// A Go template action that is not translated.
    UnsupportedGo {
        line: usize,
        action: String,
        hint: &'static str,
    },
    /// The template uses variables the event does not have. `names` may be empty when the
    /// missing value is an item or attribute that static analysis cannot name.
    Undefined {
        line: Option<usize>,
        names: Vec<String>,
        /// What the event does have, to help spot a typo.
        available: Vec<String>,
    },
    /// Rendering failed otherwise (an invalid operation, an unknown filter, ...).
    Failed {
        line: Option<usize>,
        message: String,
    },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |line: &Option<usize>| match line {
            Some(line) => format!("line {line}"),
            None => "the template".to_owned(),
        };
        match self {
            RenderError::Syntax { line, message } | RenderError::Failed { line, message } => {
                write!(f, "{}: {message}", at(line))
            }
            RenderError::UnsupportedGo { line, action, hint } => {
                write!(
                    f,
                    "line {line}: the Go action `{action}` is not supported; {hint}"
                )
            }
            RenderError::Undefined {
                line,
                names,
                available,
            } => {
                let have = available.join(", ");
                match names.as_slice() {
                    [] => write!(
                        f,
                        "{}: a value is undefined (an attribute or item that is missing); the \
                         event has {have}",
                        at(line)
                    ),
                    [name] => write!(
                        f,
                        "{}: `{name}` is undefined; the event has {have}",
                        at(line)
                    ),
                    names => write!(
                        f,
                        "{}: `{}` are undefined; the event has {have}",
                        at(line),
                        names.join("`, `")
                    ),
                }
            }
        }
    }
}

impl std::error::Error for RenderError {}

/// Checks that `template` compiles (Go forms included). Used when a worker definition is read.
pub fn check_template(template: &str) -> Result<(), RenderError> {
    let source = go::translate(template)?;
    let environment: &Environment<'_> = environment();
    environment
        .template_from_str(&source)
        .map(|_| ())
        .map_err(|err| syntax_error(&err))
}

/// Renders `template` with the event's data.
pub fn render_prompt(template: &str, event: &EventRecord) -> Result<String, RenderError> {
    let source = go::translate(template)?;
    let environment: &Environment<'_> = environment();
    let compiled = environment
        .template_from_str(&source)
        .map_err(|err| syntax_error(&err))?;
    compiled
        .render(Value::from(Serde(PromptData(event))))
        .map_err(|err| render_error(&err, &compiled, &source, event))
}

/// The shared environment: strict undefined, Go-like value printing, trailing newline kept.
fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        // Go keeps a template's last newline; so do we. Building the default syntax cannot fail.
        if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
            environment.set_syntax(syntax);
        }
        environment.set_formatter(|out, state, value| match value.kind() {
            ValueKind::Bool => Ok(out.write_str(if value.is_true() { "true" } else { "false" })?),
            ValueKind::None => Ok(()),
            ValueKind::Seq | ValueKind::Map => {
                let json = serde_json::to_string(value).map_err(|err| {
                    minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        format!("cannot print the value as JSON: {err}"),
                    )
                })?;
                Ok(out.write_str(&json)?)
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        environment
    })
}

/// The template data: the attrs, then the event fields over them.
struct PromptData<'e>(&'e EventRecord);

impl Serialize for PromptData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in &event.attrs {
            if !EVENT_FIELDS.contains(&name.as_str()) {
                map.serialize_entry(name, value)?;
            }
        }
        map.serialize_entry("actor", &event.actor)?;
        map.serialize_entry("subject", &event.subject)?;
        map.serialize_entry("source", &event.source)?;
        map.serialize_entry("type", &event.event_type)?;
        map.end()
    }
}

fn describe(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

fn syntax_error(err: &minijinja::Error) -> RenderError {
    RenderError::Syntax {
        line: err.line(),
        message: describe(err),
    }
}

/// Turns a render failure into a [`RenderError`]; for an undefined value, finds which
/// variables the template uses that the event lacks, preferring those on the failing line.
fn render_error(
    err: &minijinja::Error,
    compiled: &Template<'_, '_>,
    source: &str,
    event: &EventRecord,
) -> RenderError {
    if err.kind() != ErrorKind::UndefinedError {
        return RenderError::Failed {
            line: err.line(),
            message: describe(err),
        };
    }
    let globals: Vec<String> = environment()
        .globals()
        .map(|(name, _)| name.to_owned())
        .collect();
    let mut missing: Vec<String> = compiled
        .undeclared_variables(true)
        .into_iter()
        .filter(|path| {
            let root = path.split('.').next().unwrap_or(path);
            !globals.iter().any(|global| global == root) && !resolves(path, event)
        })
        .collect();
    missing.sort();
    let line_text = err
        .line()
        .and_then(|line| source.lines().nth(line.saturating_sub(1)));
    if let Some(line_text) = line_text {
        let on_line: Vec<String> = missing
            .iter()
            .filter(|path| mentions(line_text, path))
            .cloned()
            .collect();
        if !on_line.is_empty() {
            missing = on_line;
        }
    }
    let mut available: Vec<String> = event
        .attrs
        .keys()
        .map(String::as_str)
        .chain(EVENT_FIELDS)
        .map(str::to_owned)
        .collect();
    available.sort();
    available.dedup();
    RenderError::Undefined {
        line: err.line(),
        names: missing,
        available,
    }
}

/// Whether the dotted `path` leads to a value in the event's data.
fn resolves(path: &str, event: &EventRecord) -> bool {
    let mut segments = path.split('.');
    let Some(root) = segments.next() else {
        return false;
    };
    if EVENT_FIELDS.contains(&root) {
        // A string has no attributes.
        return segments.next().is_none();
    }
    let Some(mut value) = event.attrs.get(root) else {
        return false;
    };
    for segment in segments {
        let next = match value {
            serde_json::Value::Object(map) => map.get(segment),
            serde_json::Value::Array(items) => segment
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index)),
            _ => None,
        };
        match next {
            Some(found) => value = found,
            None => return false,
        }
    }
    true
}

/// Whether `text` mentions `path` as a whole word.
fn mentions(text: &str, path: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(path).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + path.len()..].chars().next();
        !before.is_some_and(|c| is_word(c) || c == '.') && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::EventState;

    fn event(attrs: serde_json::Value) -> EventRecord {
        let serde_json::Value::Object(attrs) = attrs else {
            panic!("attrs must be an object");
        };
        EventRecord {
            id: "0123456789abcdef0123456789abcdef".parse().expect("id"),
            delivery_id: String::new(),
            dedup_key: String::new(),
            source: "github".into(),
            event_type: "pull_request.opened".into(),
            actor: "alice".into(),
            subject: "acme/widgets#42".into(),
            attrs,
            raw: Vec::new(),
            state: EventState::Received,
            worker_name: String::new(),
            task_id: String::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn render(template: &str, attrs: serde_json::Value) -> Result<String, RenderError> {
        render_prompt(template, &event(attrs))
    }

    #[test]
    fn renders_attrs_and_event_fields() {
        let text = render(
            "{{ type }} by {{ actor }} on {{ subject }} via {{ source }}: #{{ number }} {{ title }}",
            json!({"number": 42, "title": "Fix it"}),
        );
        assert_eq!(
            text.as_deref(),
            Ok("pull_request.opened by alice on acme/widgets#42 via github: #42 Fix it")
        );
    }

    #[test]
    fn event_fields_override_attrs_of_the_same_name() {
        let text = render(
            "{{ actor }} {{ type }}",
            json!({"actor": "mallory", "type": "x"}),
        );
        assert_eq!(text.as_deref(), Ok("alice pull_request.opened"));
    }

    #[test]
    fn values_print_as_go_did() {
        let text = render(
            "{{ draft }} {{ merged }} [{{ nothing }}] {{ ratio }} {{ labels }} {{ user }}",
            json!({"draft": false, "merged": true, "nothing": null, "ratio": 1.5,
                   "labels": ["bug", "ui"], "user": {"login": "bob"}}),
        );
        assert_eq!(
            text.as_deref(),
            Ok(r#"false true [] 1.5 ["bug","ui"] {"login":"bob"}"#)
        );
        let text = render("<{{ html }}>\n", json!({"html": "<b>&</b>"}));
        assert_eq!(
            text.as_deref(),
            Ok("<<b>&</b>>\n"),
            "no escaping, newline kept"
        );
    }

    #[test]
    fn undefined_variables_are_errors_naming_them() {
        let err = render(
            "Review\n#{{ number }}: {{ titel }}",
            json!({"number": 1, "title": "t"}),
        )
        .expect_err("undefined");
        assert_eq!(
            err,
            RenderError::Undefined {
                line: Some(2),
                names: vec!["titel".into()],
                available: ["actor", "number", "source", "subject", "title", "type"]
                    .map(String::from)
                    .to_vec(),
            }
        );
        assert_eq!(
            err.to_string(),
            "line 2: `titel` is undefined; the event has actor, number, source, subject, title, type"
        );
        let err = render("{% if draft %}x{% endif %}", json!({})).expect_err("in a condition");
        assert!(
            err.to_string().starts_with("line 1: `draft` is undefined"),
            "{err}"
        );
        let err = render("{{ user.name }}", json!({"user": {"login": "b"}})).expect_err("nested");
        assert!(
            err.to_string()
                .starts_with("line 1: `user.name` is undefined"),
            "{err}"
        );
        // Testing for presence is allowed.
        let text = render(
            "{% if draft is defined %}d{% else %}n{% endif %}",
            json!({}),
        );
        assert_eq!(text.as_deref(), Ok("n"));
    }

    #[test]
    fn attr_values_are_never_template_syntax() {
        for payload in [
            "{{ 7*7 }}",
            "{% for x in range(3) %}{{ x }}{% endfor %}",
            "{% for %}",
            "{{range $k,$v := .}}{{$k}}{{end}}",
            "{{.title}}",
            "{# comment #}",
        ] {
            let text = render("Title: {{ title }} / {{.title}}", json!({"title": payload}));
            assert_eq!(
                text,
                Ok(format!("Title: {payload} / {payload}")),
                "{payload}"
            );
        }
    }

    #[test]
    fn go_field_references_are_translated() {
        let attrs = json!({"number": 7, "title": "T", "repo_owner": "acme", "repo": {"name": "w"}});
        for (template, expected) in [
            ("#{{.number}}", "#7"),
            ("{{ .title }}", "T"),
            ("{{.repo_owner}}/{{.repo.name}}", "acme/w"),
            ("a  {{- .title -}}  b", "aTb"),
            ("{{.actor}} mixes with {{ title }}", "alice mixes with T"),
            ("x{{/* note */}}y", "xy"),
            ("x {{- /* note */ -}} y", "xy"),
        ] {
            assert_eq!(
                render(template, attrs.clone()).as_deref(),
                Ok(expected),
                "{template}"
            );
        }
    }

    #[test]
    fn go_conditionals_are_translated() {
        let template = "{{if .draft}}draft{{else if .urgent}}urgent{{else}}ready{{end}}";
        let cases = [
            (json!({"draft": true, "urgent": false}), "draft"),
            (json!({"draft": false, "urgent": true}), "urgent"),
            (json!({"draft": false, "urgent": false}), "ready"),
        ];
        for (attrs, expected) in cases {
            assert_eq!(render(template, attrs).as_deref(), Ok(expected));
        }
        let nested = "{{if not .draft}}{{if .big}}big {{end}}ready{{end}}";
        assert_eq!(
            render(nested, json!({"draft": false, "big": true})).as_deref(),
            Ok("big ready")
        );
        // Missing keys are errors, as with Go's missingkey=error.
        assert!(render("{{if .draft}}x{{end}}", json!({})).is_err());
        // Without a Go `if`, `{{ end }}` is an ordinary variable.
        assert_eq!(
            render("{{ end }}", json!({"end": "fin"})).as_deref(),
            Ok("fin")
        );
    }

    #[test]
    fn syntax_errors_have_a_line() {
        assert_eq!(check_template("Review {{ title }}"), Ok(()));
        assert_eq!(check_template("{{if .x}}a{{else}}b{{end}}"), Ok(()));
        let err = check_template("ok\nok\n{{ title").expect_err("unclosed");
        assert_eq!(
            err.to_string(),
            "line 3: syntax error: unexpected end of input, expected end of variable block"
        );
        let err = check_template("{{if .x}}open").expect_err("no end");
        assert!(matches!(err, RenderError::Syntax { .. }), "{err:?}");
    }

    #[test]
    fn other_failures_are_reported_with_their_line() {
        let err = render("{{ n + 'x' }}", json!({"n": 1})).expect_err("bad operation");
        assert!(
            err.to_string().starts_with("line 1: invalid operation"),
            "{err}"
        );
    }
}
