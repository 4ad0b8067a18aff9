//! `${VAR}` in worker definitions (fixing reference 13 item 7, where only two fields had it).
//!
//! Every string value is interpolated: `endpoint`; in `docker`, `image`, `host`, `cwd`, `token`,
//! `api_key`, `user`, the values of `env` and `labels`, `plugins` and `plugin_marketplaces`; in
//! `adapter`, `upstream`, `model`, `api_key`, `token`; in each rule, `source`, the `on` entries
//! and the filter values; and every string inside `policy`. Three things are not:
//!
//! * `prompt`: its `{{ }}` belong to the template, and `${...}` in it is literal text;
//! * `name`: it is the worker's identity, stored as written (and `$` is not a name character);
//! * keys (of `env`, `labels`, `filter`, `policy`) and typed values (`timeout`, `memory`,
//!   `lifecycle`, numbers, bools), which are checked when the file is read.
//!
//! `$${` writes a literal `${`; a `$` not followed by `{` is literal. A substituted value is
//! never expanded again, and in a filter it is always pattern text: it cannot turn a filter into
//! a negation.
//!
//! Definitions are stored as written, so a secret given as `${VAR}` never reaches the database;
//! [`WorkerDef::interpolate`] resolves them whenever a definition is used.

use std::collections::BTreeMap;

use super::problem::{FieldPath, Problem};
use super::{AdapterConfig, DockerConfig, EventRule, WorkerDef};
use crate::config::Error;

/// Where variables come from: the process environment, or a map in tests.
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl WorkerDef {
    /// This definition with every `${VAR}` resolved through `lookup` (see the module docs for
    /// which fields). The error names the first variable that is unset or malformed and its
    /// field, and says how many more there are.
    pub fn interpolate(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<WorkerDef, Error> {
        let (resolved, problems) = self.interpolate_all(lookup);
        let Some(first) = problems.first() else {
            return Ok(resolved);
        };
        let mut message = first.message.clone();
        if problems.len() > 1 {
            message.push_str(&format!(" (and {} more)", problems.len() - 1));
        }
        Err(Error::Interpolate {
            worker: self.name.clone(),
            field: first.field.to_string(),
            message,
        })
    }

    /// Resolves what it can; each field it cannot resolve keeps its text and gets a problem.
    pub(super) fn interpolate_all(&self, lookup: Lookup<'_>) -> (WorkerDef, Vec<Problem>) {
        let mut expander = Expander {
            lookup,
            problems: Vec::new(),
        };
        let root = FieldPath::root();
        let resolved = WorkerDef {
            name: self.name.clone(),
            endpoint: expander.option(&root.key("endpoint"), &self.endpoint),
            docker: self
                .docker
                .as_ref()
                .map(|docker| expander.docker(&root.key("docker"), docker)),
            adapter: self
                .adapter
                .as_ref()
                .map(|adapter| expander.adapter(&root.key("adapter"), adapter)),
            events: self
                .events
                .iter()
                .enumerate()
                .map(|(index, rule)| expander.rule(&root.key("events").index(index), rule))
                .collect(),
            policy: self
                .policy
                .as_ref()
                .map(|policy| expander.json(&root.key("policy"), policy)),
            timeout: self.timeout,
            concurrency: self.concurrency,
            max_retries: self.max_retries,
            rate_limit: self.rate_limit,
        };
        (resolved, expander.problems)
    }
}

/// Expands `${VAR}` in `text`; the error says which variable, and why.
pub(super) fn expand(text: &str, lookup: Lookup<'_>) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let from_dollar = &rest[dollar..];
        if let Some(after) = from_dollar.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = from_dollar.strip_prefix("${") {
            let Some(close) = after.find('}') else {
                return Err(
                    "has a `${` without its closing `}`; write $${ for a literal ${".into(),
                );
            };
            let name = &after[..close];
            if !is_variable_name(name) {
                return Err(format!(
                    "`${{{name}}}` is not a variable: a name is letters, digits and _, not \
                     starting with a digit; write $${{ for a literal ${{"
                ));
            }
            let value = lookup(name).ok_or_else(|| {
                format!("${{{name}}} is not set; set it in mecha's environment, or write $${{ for a literal ${{")
            })?;
            out.push_str(&value);
            rest = &after[close + 1..];
        } else {
            out.push('$');
            rest = &from_dollar[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Walks a definition, expanding strings and collecting what could not be expanded.
struct Expander<'l> {
    lookup: Lookup<'l>,
    problems: Vec<Problem>,
}

impl Expander<'_> {
    fn text(&mut self, field: &FieldPath, text: &str) -> String {
        expand(text, self.lookup).unwrap_or_else(|message| {
            self.problems.push(Problem::new(field, message));
            text.to_owned()
        })
    }

    fn option(&mut self, field: &FieldPath, text: &Option<String>) -> Option<String> {
        text.as_ref().map(|text| self.text(field, text))
    }

    fn list(&mut self, field: &FieldPath, list: &[String]) -> Vec<String> {
        list.iter()
            .enumerate()
            .map(|(index, text)| self.text(&field.index(index), text))
            .collect()
    }

    /// Values are expanded, keys are not.
    fn values(
        &mut self,
        field: &FieldPath,
        map: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        map.iter()
            .map(|(key, text)| (key.clone(), self.text(&field.key(key), text)))
            .collect()
    }

    fn docker(&mut self, at: &FieldPath, docker: &DockerConfig) -> DockerConfig {
        DockerConfig {
            image: self.text(&at.key("image"), &docker.image),
            host: self.option(&at.key("host"), &docker.host),
            cwd: self.option(&at.key("cwd"), &docker.cwd),
            credentials: docker.credentials.clone(),
            resources: docker.resources,
            lifecycle: docker.lifecycle,
            restart: docker.restart,
            env: self.values(&at.key("env"), &docker.env),
            token: self.option(&at.key("token"), &docker.token),
            api_key: self.option(&at.key("api_key"), &docker.api_key),
            expose: docker.expose,
            user: self.option(&at.key("user"), &docker.user),
            labels: self.values(&at.key("labels"), &docker.labels),
            plugins: self.list(&at.key("plugins"), &docker.plugins),
            plugin_marketplaces: self
                .list(&at.key("plugin_marketplaces"), &docker.plugin_marketplaces),
        }
    }

    fn adapter(&mut self, at: &FieldPath, adapter: &AdapterConfig) -> AdapterConfig {
        AdapterConfig {
            kind: adapter.kind,
            upstream: self.text(&at.key("upstream"), &adapter.upstream),
            model: self.text(&at.key("model"), &adapter.model),
            api_key: self.option(&at.key("api_key"), &adapter.api_key),
            token: self.option(&at.key("token"), &adapter.token),
        }
    }

    fn rule(&mut self, at: &FieldPath, rule: &EventRule) -> EventRule {
        let filter = rule
            .filter
            .iter()
            .map(|(attr, filter)| {
                let field = at.key("filter").key(attr);
                (
                    attr.clone(),
                    filter.map_patterns(|text| self.text(&field, text)),
                )
            })
            .collect();
        EventRule {
            source: self.text(&at.key("source"), &rule.source),
            on: self.list(&at.key("on"), &rule.on),
            filter,
            prompt: rule.prompt.clone(),
            auto: rule.auto,
            allow_bots: rule.allow_bots,
        }
    }

    fn json(&mut self, at: &FieldPath, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(text) => Value::String(self.text(at, text)),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| self.json(&at.index(index), item))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, item)| (key.clone(), self.json(&at.key(key), item)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::worker::Filter;

    fn vars(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "HOST" => Some("models.internal".into()),
            "EMPTY" => Some(String::new()),
            "TRICKY" => Some("${TOKEN}".into()),
            "BANG" => Some("!main".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_variables() {
        assert_eq!(expand("${TOKEN}", &vars), Ok("s3cret".into()));
        assert_eq!(
            expand("http://${HOST}:11434/${EMPTY}v1", &vars),
            Ok("http://models.internal:11434/v1".into())
        );
        assert_eq!(expand("no variables", &vars), Ok("no variables".into()));
    }

    #[test]
    fn values_are_not_expanded_again() {
        assert_eq!(expand("${TRICKY}", &vars), Ok("${TOKEN}".into()));
    }

    #[test]
    fn escapes_and_lone_dollars_are_literal() {
        assert_eq!(expand("$${TOKEN}", &vars), Ok("${TOKEN}".into()));
        assert_eq!(expand("cost: $5, $$", &vars), Ok("cost: $5, $$".into()));
        assert_eq!(expand("$TOKEN", &vars), Ok("$TOKEN".into()));
        assert_eq!(expand("a$", &vars), Ok("a$".into()));
    }

    #[test]
    fn unset_and_malformed_variables_are_errors_naming_them() {
        let err = expand("Bearer ${MISSING}", &vars).expect_err("unset");
        assert!(err.starts_with("${MISSING} is not set"), "{err}");
        let err = expand("${TOKEN", &vars).expect_err("unclosed");
        assert!(err.contains("without its closing"), "{err}");
        for bad in ["${}", "${1X}", "${A-B}", "${ A}"] {
            let err = expand(bad, &vars).expect_err(bad);
            assert!(err.contains("is not a variable"), "{bad}: {err}");
        }
    }

    fn worker(yaml: &str) -> WorkerDef {
        serde_yaml::from_str(yaml).expect(yaml)
    }

    #[test]
    fn interpolates_nested_fields_but_not_prompt_or_name() {
        let def = worker(
            "name: w\n\
             docker:\n  image: img\n  api_key: ${TOKEN}\n  env:\n    KEY: ${TOKEN}\n    PLAIN: x\n  labels:\n    host: ${HOST}\n\
             events:\n  - source: github\n    on: [push]\n    filter:\n      branch: ${BANG}\n    prompt: 'keep ${TOKEN} {{ title }}'\n\
             policy:\n  rules:\n    - deny: ${HOST}\n",
        );
        let resolved = def.interpolate(&vars).expect("all set");
        let docker = resolved.docker.as_ref().expect("docker");
        assert_eq!(docker.api_key.as_deref(), Some("s3cret"));
        assert_eq!(docker.env["KEY"], "s3cret");
        assert_eq!(docker.env["PLAIN"], "x");
        assert_eq!(docker.labels["host"], "models.internal");
        assert_eq!(resolved.events[0].prompt, "keep ${TOKEN} {{ title }}");
        // A substituted `!` is text, never a negation.
        assert_eq!(
            resolved.events[0].filter["branch"],
            Filter::AnyOf(vec!["!main".into()])
        );
        assert_eq!(
            resolved.policy,
            Some(serde_json::json!({"rules": [{"deny": "models.internal"}]}))
        );
        // The definition itself keeps its references.
        assert_eq!(def.docker.expect("docker").env["KEY"], "${TOKEN}");
    }

    #[test]
    fn unset_variables_name_the_field() {
        let def = worker(
            "name: w\nadapter:\n  type: ollama\n  upstream: http://${NOPE}\n  model: ${ALSO_NOPE}\n",
        );
        let (_, problems) = def.interpolate_all(&vars);
        let fields: Vec<String> = problems.iter().map(|p| p.field.to_string()).collect();
        assert_eq!(fields, ["adapter.upstream", "adapter.model"]);
        let err = def.interpolate(&vars).expect_err("unset").to_string();
        assert_eq!(
            err,
            "worker w: adapter.upstream: ${NOPE} is not set; set it in mecha's environment, or \
             write $${ for a literal ${ (and 1 more)"
        );
    }
}
