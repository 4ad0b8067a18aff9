//! The dashboard's HTML: text escaped where it enters a page, and the frame every page shares.
//! Pages are rendered on the server with no script of their own but the live list's.

use axum::response::Html;

/// `text` safe inside an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page titled `title` with `body` (already HTML) under the navigation; `signed_in` adds the
/// links and the sign-out button.
pub fn page(title: &str, body: &str, signed_in: bool) -> Html<String> {
    let navigation = if signed_in {
        r#"<nav><a href="/ui">Overview</a> <a href="/ui/events">Events</a> <a href="/ui/tasks">Tasks</a> <a href="/ui/workers">Workers</a> <a href="/ui/plugins">Plugins</a>
<form method="post" action="/ui/logout"><button>Sign out</button></form></nav>"#
    } else {
        ""
    };
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · mecha</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head>
<body><header><strong>mecha</strong>{navigation}</header><main><h1>{title}</h1>
{body}</main></body></html>"#,
        title = escape(title),
    ))
}

/// A list's filter form: a text field per `(label, name, value)`, the value escaped here, then
/// the state to pick from `states`, `selected` chosen. Values must already be redacted.
pub fn filters(fields: &[(&str, &str, &str)], states: &[&str], selected: Option<&str>) -> String {
    let mut inputs = String::new();
    for (label, name, value) in fields {
        inputs.push_str(&format!(
            r#"<label>{label} <input type="search" name="{name}" value="{}"></label>"#,
            escape(value)
        ));
    }
    let mut options = String::from(r#"<option value="">any</option>"#);
    for state in states {
        let chosen = if Some(*state) == selected {
            " selected"
        } else {
            ""
        };
        options.push_str(&format!(r#"<option{chosen}>{state}</option>"#));
    }
    format!(
        r#"<form class="filters" method="get">{inputs}
<label>state <select name="state">{options}</select></label><button>Filter</button></form>"#
    )
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}\
header{display:flex;gap:1.5em;align-items:center;padding:.6em 1.2em;background:#1d2430;color:#fff}\
header a{color:#cfe0ff;margin-right:1em}nav{display:flex;gap:1em;align-items:center}\
nav form{display:inline;margin:0}main{padding:1em 1.5em;max-width:1200px}\
table{border-collapse:collapse;width:100%;background:#fff}\
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6ea;vertical-align:top}\
th{background:#eef1f5}pre{background:#fff;border:1px solid #e3e6ea;padding:.8em;overflow:auto;max-height:30em}\
.ok{color:#17703a}.fail,.deny{color:#b3261e}.retry,.skip{color:#8a5a00}\
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#fff;border:1px solid #e3e6ea;padding:.6em 1em;min-width:9em}\
.card b{display:block;font-size:1.6em}form.filters{margin:.5em 0 1em}label{margin-right:1em}\
.error{color:#b3261e}\
.minutes{display:flex;align-items:flex-end;gap:2px;height:62px;background:#fff;border:1px solid #e3e6ea;padding:4px}\
.minutes span{flex:1;background:#4a7bd0;min-width:4px}";
