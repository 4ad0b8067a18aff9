//! Go `text/template` actions in prompts, rewritten as minijinja before compiling, so that
//! prompts written for the Go mecha keep working. The forms and their translations are listed in
//! the parent module's docs; everything else that is recognisably Go is refused with a hint.
//!
//! The rewrite is textual and keeps every newline, so minijinja's line numbers still point at
//! the operator's template.

use std::borrow::Cow;

use super::RenderError;

/// Words minijinja reads as literals or operators, so that `{{ true }}` is not the attr `true`.
const KEYWORDS: [&str; 13] = [
    "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else",
];

/// What to do with one `{{ ... }}` action.
enum GoAction {
    /// Not a Go form: left as it is for minijinja.
    Keep,
    /// A Go form, and its minijinja text.
    Replace(String),
    /// A Go form that is not translated, and how to write it instead.
    Unsupported(&'static str),
}

/// For `{{.}}`, Go's whole data.
const HINT_DOT: &str = "name the attr instead, like {{ title }}";
/// For `{{.x | f}}` and `{{f .x}}`.
const HINT_PIPELINE: &str =
    "pipelines and functions are not translated; write minijinja, like {{ title | upper }}";
/// For `{{.true}}` and the like.
const HINT_KEYWORD: &str = "the attr's name is a minijinja keyword, so it cannot be referenced";
/// For `{{$x := ...}}` and `{{$x}}`.
const HINT_VARIABLE: &str = "Go variables are not translated; use {% set x = ... %}";
/// For an `if` or `else if` on anything but `.x` or `not .x`.
const HINT_CONDITION: &str = "only `if .attr` and `if not .attr` are translated; write other \
                              conditions in minijinja, like {% if state == \"open\" %}";
/// For `{{range ...}}`.
const HINT_RANGE: &str = "write the loop in minijinja: {% for item in items %}...{% endfor %}";
/// For `{{with ...}}`.
const HINT_WITH: &str = "write {% if x %}...{% endif %} and name x's fields as x.field";
/// For `{{define}}`, `{{template}}` and `{{block}}`.
const HINT_DEFINE: &str = "template definitions are not supported in prompts";

/// Translates the Go actions listed in the module docs; returns `template` itself when it has
/// none.
pub(super) fn translate(template: &str) -> Result<Cow<'_, str>, RenderError> {
    let mut out = String::new();
    let mut copied = 0;
    let mut search = 0;
    let mut open_ifs = 0usize;
    while let Some(found) = template[search..].find("{{") {
        let start = search + found;
        let Some(length) = template[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + length + 2;
        match go_action(&template[start + 2..end - 2], &mut open_ifs) {
            GoAction::Keep => {}
            GoAction::Replace(text) => {
                out.push_str(&template[copied..start]);
                out.push_str(&text);
                copied = end;
            }
            GoAction::Unsupported(hint) => {
                return Err(RenderError::UnsupportedGo {
                    line: template[..start].matches('\n').count() + 1,
                    action: template[start..end].to_owned(),
                    hint,
                });
            }
        }
        search = end;
    }
    if copied == 0 {
        return Ok(Cow::Borrowed(template));
    }
    out.push_str(&template[copied..]);
    Ok(Cow::Owned(out))
}

/// Classifies the text between `{{` and `}}`; `open_ifs` counts translated `if`s not yet closed.
fn go_action(inner: &str, open_ifs: &mut usize) -> GoAction {
    // Go's trim markers are a `-` with a space on its inner side.
    let (left, body) = match inner.strip_prefix('-') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_whitespace()) => ("-", rest),
        _ => ("", inner),
    };
    let (right, body) = match body.strip_suffix('-') {
        Some(rest) if rest.ends_with(|c: char| c.is_ascii_whitespace()) => ("-", rest),
        _ => ("", body),
    };
    let body = body.trim();
    let block = |text: &str| GoAction::Replace(format!("{{%{left} {text} {right}%}}"));
    if body.starts_with("/*") && body.ends_with("*/") {
        // Renders nothing, trimming as the Go comment did.
        return GoAction::Replace(format!("{{{{{left} '' {right}}}}}"));
    }
    if body.starts_with('.') {
        return match go_path(body) {
            Ok(path) => GoAction::Replace(format!("{{{{{left} {path} {right}}}}}")),
            Err(hint) => GoAction::Unsupported(hint),
        };
    }
    if body.starts_with('$') {
        return GoAction::Unsupported(HINT_VARIABLE);
    }
    let (word, rest) = match body.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((word, rest)) => (word, rest.trim()),
        None => (body, ""),
    };
    match word {
        "if" if !rest.is_empty() => match go_condition(rest) {
            Some(condition) => {
                *open_ifs += 1;
                block(&format!("if {condition}"))
            }
            None => GoAction::Unsupported(HINT_CONDITION),
        },
        "else" if *open_ifs > 0 => {
            if rest.is_empty() {
                return block("else");
            }
            match rest.strip_prefix("if") {
                Some(condition) if condition.starts_with(|c: char| c.is_ascii_whitespace()) => {
                    match go_condition(condition.trim()) {
                        Some(condition) => block(&format!("elif {condition}")),
                        None => GoAction::Unsupported(HINT_CONDITION),
                    }
                }
                _ => GoAction::Unsupported(HINT_CONDITION),
            }
        }
        "end" if *open_ifs > 0 && rest.is_empty() => {
            *open_ifs -= 1;
            block("endif")
        }
        "range" if !rest.is_empty() => GoAction::Unsupported(HINT_RANGE),
        "with" if !rest.is_empty() => GoAction::Unsupported(HINT_WITH),
        "define" | "template" | "block" if !rest.is_empty() => GoAction::Unsupported(HINT_DEFINE),
        _ => GoAction::Keep,
    }
}

/// `.a.b` as `a.b`, when it is a plain field path.
fn go_path(text: &str) -> Result<&str, &'static str> {
    let path = text.strip_prefix('.').unwrap_or(text);
    if path.is_empty() {
        return Err(HINT_DOT);
    }
    let is_identifier = |segment: &str| {
        let mut chars = segment.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !path.split('.').all(is_identifier) {
        return Err(HINT_PIPELINE);
    }
    if path
        .split('.')
        .next()
        .is_some_and(|root| KEYWORDS.contains(&root))
    {
        return Err(HINT_KEYWORD);
    }
    Ok(path)
}

/// `.x` or `not .x` as minijinja, when the condition is one of those.
fn go_condition(text: &str) -> Option<String> {
    match text.strip_prefix("not") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_whitespace()) => {
            go_path(rest.trim()).ok().map(|path| format!("not {path}"))
        }
        _ => go_path(text).ok().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(template: &str) -> String {
        translate(template).expect(template).into_owned()
    }

    #[test]
    fn field_references_become_variables() {
        assert_eq!(translated("#{{.number}}"), "#{{ number }}");
        assert_eq!(translated("{{ .title }}"), "{{ title }}");
        assert_eq!(translated("{{.repo.owner}}"), "{{ repo.owner }}");
        assert_eq!(translated("{{- .title -}}"), "{{- title -}}");
        assert_eq!(
            translated("{{-.title}}"),
            "{{-.title}}",
            "Go needs a space after -"
        );
    }

    #[test]
    fn conditionals_become_blocks() {
        assert_eq!(
            translated("{{if .a}}A{{else if not .b}}B{{else}}C{{end}}"),
            "{% if a %}A{% elif not b %}B{% else %}C{% endif %}"
        );
        assert_eq!(
            translated("{{- if .a -}}x{{- end -}}"),
            "{%- if a -%}x{%- endif -%}"
        );
        assert_eq!(translated("x{{/* note */}}y"), "x{{ '' }}y");
    }

    #[test]
    fn minijinja_templates_pass_unchanged() {
        for template in [
            "plain text",
            "{{ title }} {% if draft %}d{% endif %}",
            "{{ end }} {{ else }}",
            "{{ range(3) | list }}",
            "{{ \"}}\" }} and {{ unclosed",
        ] {
            assert!(
                matches!(translate(template), Ok(Cow::Borrowed(_))),
                "{template}"
            );
        }
    }

    #[test]
    fn newlines_are_kept_so_lines_still_match() {
        let template = "a\n{{if .x}}\nb\n{{end}}\n{{.y}}";
        assert_eq!(
            translated(template).lines().count(),
            template.lines().count()
        );
    }

    #[test]
    fn unsupported_forms_say_where_and_what_to_write() {
        for (template, hint) in [
            ("a\n{{range .items}}x{{end}}", HINT_RANGE),
            ("{{.}}", HINT_DOT),
            ("{{.title | printf \"%q\"}}", HINT_PIPELINE),
            ("{{if eq .a \"b\"}}x{{end}}", HINT_CONDITION),
            ("{{if .a}}x{{else if eq .b 1}}y{{end}}", HINT_CONDITION),
            ("{{$x := .a}}", HINT_VARIABLE),
            ("{{with .user}}{{.login}}{{end}}", HINT_WITH),
            ("{{template \"x\"}}", HINT_DEFINE),
            ("{{.true}}", HINT_KEYWORD),
        ] {
            let err = translate(template).expect_err(template);
            let RenderError::UnsupportedGo { hint: found, .. } = &err else {
                panic!("{template}: {err:?}");
            };
            assert_eq!(*found, hint, "{template}");
        }
        let err = translate("a\n{{range .items}}x{{end}}").expect_err("range");
        assert_eq!(
            err.to_string(),
            "line 2: the Go action `{{range .items}}` is not supported; write the loop in \
             minijinja: {% for item in items %}...{% endfor %}"
        );
    }
}
