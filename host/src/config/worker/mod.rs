//! Worker definitions: the YAML an operator writes for each worker (reference section 2,
//! accepted as is), checked, and kept in a stable JSON form for the database and the API.
//!
//! ```yaml
//! name: reviewer                      # ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$
//! docker:                             # managed: mecha runs the container (docker.rs)
//!   image: mecha/claude-worker:latest
//!   cwd: ${HOME}/code/widgets
//!   token: anthropic.main             # secrets.yml tokens.anthropic.main
//! # endpoint: http://127.0.0.1:9000   # live: a worker that is already running
//! # adapter: {type: ollama, upstream: http://127.0.0.1:11434, model: llama3}   (adapter.rs)
//! events:                             # rule.rs, filter.rs
//!   - source: github
//!     on: [pull_request.opened]
//!     prompt: Review PR #{{ number }}: {{ title }}
//! policy: {...}                       # kept raw, read by the policy plugins
//! timeout: 30m                        # Go duration; absent or 0: 10m
//! concurrency: 1                      # tasks this worker runs at once
//! max_retries: 3
//! rate_limit: {per_second: 2, burst: 5}
//! ```
//!
//! Two layers, as STYLE.md's Config section asks. The serde types below are the raw layer:
//! shaped like the file, strict (an unknown key is an error with its line and column), with
//! typed values (durations, memory sizes, filters, enums) that check themselves while parsing.
//! The resolved layer is [`WorkerDef::validate`] (every check that needs the definition only,
//! all problems collected), [`WorkerDef::interpolate`] (`${VAR}`, interpolate.rs) and
//! [`WorkerDef::validate_host`] (what depends on this machine, host.rs). [`load`] runs the first
//! two on files and reports every problem with its file, line, column and field.
//!
//! Definitions are stored uninterpolated, so that secrets written as `${VAR}` never reach the
//! database; callers interpolate whenever they use one.

mod adapter;
mod docker;
pub mod duration;
mod filter;
pub mod glob;
mod host;
mod interpolate;
mod load;
pub mod policy;
mod problem;
mod reach;
mod rule;
mod url;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use adapter::{AdapterConfig, AdapterType};
pub use docker::{
    Credential, DEFAULT_RESTART_LIMIT, DISPOSABLE_RESERVED_PREFIX, DockerConfig, Lifecycle,
    MemoryLimit, RESERVED_ENV_KEYS, Resources, RestartPolicy,
};
pub use filter::{Filter, attr_text};
pub(crate) use host::current_home;
pub use load::load;
pub use problem::{FieldPath, LoadErrors, Problem};
pub use rule::EventRule;

use problem::into_result;
use url::check_http_url;

/// 10 minutes, the Go mecha's default: long enough for an agent to review a large change.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// One task at a time, as the Go mecha's busy state allows.
pub const DEFAULT_CONCURRENCY: u32 = 1;

/// 3, the Go mecha's default (reference 6.4): with its backoff, retries after 30 s and 60 s.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// 2 tasks per second, the Go mecha's per-worker token bucket refill rate (reference 6.3).
pub const DEFAULT_RATE_PER_SECOND: f64 = 2.0;

/// A burst of 5 tasks, the Go mecha's token bucket size (reference 6.3).
pub const DEFAULT_RATE_BURST: u32 = 5;

/// A worker, as the operator defined it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerDef {
    /// Unique among workers; letters, digits, `_`, `.`, `-`, starting with a letter or digit.
    pub name: String,
    /// The URL of a worker that runs on its own (a live worker).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// A container mecha runs for the worker (a managed worker).
    #[serde(default)]
    pub docker: Option<DockerConfig>,
    /// A model server mecha bridges tasks to in-process (an adapter worker).
    #[serde(default)]
    pub adapter: Option<AdapterConfig>,
    /// The rules that give this worker tasks.
    #[serde(default)]
    pub events: Vec<EventRule>,
    /// Policy settings, kept as written; the policy plugins read them at dispatch.
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
    /// How long one task may take. Written like `30m`; absent or 0 means [`DEFAULT_TIMEOUT`].
    #[serde(default = "default_timeout", with = "duration::timeout")]
    pub timeout: Duration,
    /// Tasks this worker runs at once; at least 1.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Attempts before a task is dead-lettered, counted as the Go mecha does; at least 1.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// How fast tasks are sent to this worker.
    #[serde(default)]
    pub rate_limit: RateLimit,
}

/// A token bucket: `per_second` tasks on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default = "default_per_second")]
    pub per_second: f64,
    #[serde(default = "default_burst")]
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            per_second: DEFAULT_RATE_PER_SECOND,
            burst: DEFAULT_RATE_BURST,
        }
    }
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_concurrency() -> u32 {
    DEFAULT_CONCURRENCY
}

fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}

fn default_per_second() -> f64 {
    DEFAULT_RATE_PER_SECOND
}

fn default_burst() -> u32 {
    DEFAULT_RATE_BURST
}

/// How a worker runs, told by which section its definition has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// `docker`: mecha runs its container.
    Managed,
    /// `adapter`: mecha bridges to a model server in-process.
    Adapter,
    /// Only `endpoint`: it runs on its own.
    Live,
}

impl WorkerKind {
    /// How the kind is shown by `mecha worker ls` and the API.
    pub fn label(self) -> &'static str {
        match self {
            WorkerKind::Managed => "managed",
            WorkerKind::Adapter => "adapter",
            WorkerKind::Live => "live",
        }
    }
}

impl WorkerDef {
    /// `managed` when `docker` is present, else `adapter` when `adapter` is, else `live`.
    pub fn kind(&self) -> WorkerKind {
        if self.docker.is_some() {
            WorkerKind::Managed
        } else if self.adapter.is_some() {
            WorkerKind::Adapter
        } else {
            WorkerKind::Live
        }
    }

    /// Every check that needs nothing but the definition, all problems at once. Run it on the
    /// interpolated definition, so that URLs and references are checked as they will be used.
    pub fn validate(&self) -> Result<(), LoadErrors> {
        into_result(self.problems())
    }

    /// The problems [`WorkerDef::validate`] reports, without file or position.
    fn problems(&self) -> Vec<Problem> {
        let root = FieldPath::root();
        let mut problems = Vec::new();
        if let Err(message) = check_name(&self.name) {
            problems.push(Problem::new(&root.key("name"), message));
        }
        if self.endpoint.is_none() && self.docker.is_none() && self.adapter.is_none() {
            problems.push(Problem::new(
                &root,
                "a worker needs endpoint (it runs on its own), docker (mecha runs its \
                 container) or adapter (mecha bridges to a model server)",
            ));
        }
        if self.docker.is_some() && self.adapter.is_some() {
            problems.push(Problem::new(
                &root.key("adapter"),
                "cannot be combined with docker: a worker is either a container or an adapter",
            ));
        }
        if let Some(endpoint) = &self.endpoint
            && let Err(message) = check_http_url(endpoint)
        {
            problems.push(Problem::new(&root.key("endpoint"), message));
        }
        if let Some(endpoint) = &self.endpoint
            && let Err(message) = reach::check_address(endpoint)
        {
            problems.push(Problem::new(&root.key("endpoint"), message));
        }
        if let Some(docker) = &self.docker {
            docker.check(&root.key("docker"), &mut problems);
        }
        if let Some(adapter) = &self.adapter {
            adapter.check(&root.key("adapter"), &mut problems);
        }
        for (index, rule) in self.events.iter().enumerate() {
            rule.check(&root.key("events").index(index), &mut problems);
        }
        if let Err(message) = policy::steps(self.policy.as_ref()) {
            problems.push(Problem::new(&root.key("policy"), message));
        }
        if self.concurrency == 0 {
            problems.push(Problem::new(&root.key("concurrency"), "must be at least 1"));
        }
        if self.max_retries == 0 {
            problems.push(Problem::new(&root.key("max_retries"), "must be at least 1"));
        }
        let rate = self.rate_limit;
        if !(rate.per_second.is_finite() && rate.per_second > 0.0) {
            problems.push(Problem::new(
                &root.key("rate_limit").key("per_second"),
                "must be a number greater than 0",
            ));
        }
        if rate.burst == 0 {
            problems.push(Problem::new(
                &root.key("rate_limit").key("burst"),
                "must be at least 1",
            ));
        }
        problems
    }

    /// A copy fit for showing: both API keys blanked, every `docker.env` value passed through
    /// `redact`, token references kept (they are names, not secrets).
    pub fn sanitized(&self, redact: &dyn Fn(&str) -> String) -> WorkerDef {
        let mut copy = self.clone();
        if let Some(docker) = &mut copy.docker {
            if let Some(key) = &mut docker.api_key {
                key.clear();
            }
            for value in docker.env.values_mut() {
                *value = redact(value);
            }
        }
        if let Some(key) = copy.adapter.as_mut().and_then(|a| a.api_key.as_mut()) {
            key.clear();
        }
        copy
    }
}

/// Checks a worker name: `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, so it can name a container.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name: use letters, digits, _, . and -, starting with a \
             letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(yaml: &str) -> WorkerDef {
        serde_yaml::from_str(yaml).expect(yaml)
    }

    const FULL: &str = "\
name: reviewer
docker:
  image: mecha/worker:1
  host: unix:///var/run/docker.sock
  cwd: /srv/code
  resources: {cpu: 2, memory: 2G, pids: 256}
  lifecycle: disposable
  env: {LOG: debug, SECRET: '${SECRET}'}
  token: anthropic.main
  api_key: ${WORKER_KEY}
  expose: true
  labels: {team: infra}
  plugins: [review]
  plugin_marketplaces: [acme/plugins]
events:
  - source: github
    on: [pull_request.opened, 'issues.*']
    filter: {repo: 'acme/*', number: 42, draft: false, label: [bug, ui], author: '!bot*'}
    prompt: 'Review {{.title}}'
    auto: false
    allow_bots: true
policy: {rules: [{deny: force-push}]}
timeout: 1h30m
concurrency: 2
max_retries: 5
rate_limit: {per_second: 0.5, burst: 2}
";

    #[test]
    fn defaults_follow_the_go_mecha() {
        let def = worker("name: w\nendpoint: http://127.0.0.1:9000\n");
        assert_eq!(def.timeout, DEFAULT_TIMEOUT);
        assert_eq!(def.concurrency, 1);
        assert_eq!(def.max_retries, 3);
        assert_eq!(
            def.rate_limit,
            RateLimit {
                per_second: 2.0,
                burst: 5
            }
        );
        assert_eq!(def.kind(), WorkerKind::Live);
        assert_eq!(def.validate(), Ok(()));
        let def = worker("name: w\nendpoint: http://x\ntimeout: 0\nrate_limit: {burst: 9}\n");
        assert_eq!(def.timeout, DEFAULT_TIMEOUT);
        assert_eq!(def.rate_limit.per_second, 2.0);
    }

    #[test]
    fn kind_follows_the_sections() {
        assert_eq!(worker(FULL).kind(), WorkerKind::Managed);
        let adapter = worker("name: a\nadapter: {type: ollama, upstream: 'http://h', model: m}\n");
        assert_eq!(adapter.kind(), WorkerKind::Adapter);
        assert_eq!(
            serde_json::to_value(WorkerKind::Managed).expect("json"),
            "managed"
        );
    }

    #[test]
    fn json_round_trip_is_stable_snake_case() {
        let def = worker(FULL);
        let json = serde_json::to_value(&def).expect("serializes");
        assert_eq!(json["timeout"], "1h30m");
        assert_eq!(json["docker"]["resources"]["memory"], "2g");
        assert_eq!(json["docker"]["lifecycle"], "disposable");
        assert_eq!(json["docker"]["env"]["SECRET"], "${SECRET}");
        assert_eq!(json["events"][0]["filter"]["author"], "!bot*");
        assert_eq!(json["events"][0]["filter"]["number"], "42");
        assert_eq!(json["events"][0]["allow_bots"], true);
        assert_eq!(json["rate_limit"]["per_second"], 0.5);
        let back: WorkerDef = serde_json::from_value(json.clone()).expect("deserializes");
        assert_eq!(back, def);
        assert_eq!(serde_json::to_value(&back).expect("again"), json);
    }

    #[test]
    fn the_full_example_is_valid_once_interpolated() {
        let vars = |name: &str| (name != "UNSET").then(|| format!("value-of-{name}"));
        let resolved = worker(FULL).interpolate(&vars).expect("all set");
        assert_eq!(resolved.validate(), Ok(()));
        assert_eq!(
            resolved.docker.expect("docker").api_key.as_deref(),
            Some("value-of-WORKER_KEY")
        );
    }

    #[test]
    fn names_follow_the_rule() {
        for name in ["a", "A1", "review-bot_2.0", "9lives"] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
        for name in ["", "-a", ".a", "_a", "a b", "a/b", "${NAME}", "é"] {
            assert!(check_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn section_rules() {
        let problems = |yaml: &str| -> Vec<String> {
            worker(yaml)
                .problems()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            problems("name: w\n"),
            [
                "a worker needs endpoint (it runs on its own), docker (mecha runs its container) \
              or adapter (mecha bridges to a model server)"
            ]
        );
        assert_eq!(
            problems(
                "name: w\ndocker: {image: x}\nadapter: {type: openai, upstream: 'http://h', model: m}\n"
            ),
            [
                "adapter: cannot be combined with docker: a worker is either a container or an adapter"
            ]
        );
        // An endpoint may accompany either section.
        assert!(problems("name: w\nendpoint: http://h\ndocker: {image: x}\n").is_empty());
        assert_eq!(
            problems(
                "name: w\nendpoint: h:1\nconcurrency: 0\nmax_retries: 0\nrate_limit: {per_second: 0, burst: 0}\n"
            ),
            [
                "endpoint: `h:1` is not a URL; write it like http://127.0.0.1:8080",
                "concurrency: must be at least 1",
                "max_retries: must be at least 1",
                "rate_limit.per_second: must be a number greater than 0",
                "rate_limit.burst: must be at least 1",
            ]
        );
    }

    #[test]
    fn sanitized_blanks_keys_redacts_env_and_keeps_token_names() {
        let def = worker(FULL)
            .interpolate(&|name: &str| Some(format!("canary-{name}")))
            .expect("set");
        let adapter = worker(
            "name: a\nadapter: {type: openai, upstream: 'http://h', model: m, api_key: canary-key, token: openai.main}\n",
        );
        let shown = def.sanitized(&|value: &str| {
            if value.starts_with("canary") {
                "[redacted]".into()
            } else {
                value.into()
            }
        });
        let docker = shown.docker.as_ref().expect("docker");
        assert_eq!(docker.api_key.as_deref(), Some(""));
        assert_eq!(docker.env["SECRET"], "[redacted]");
        assert_eq!(docker.env["LOG"], "debug");
        assert_eq!(docker.token.as_deref(), Some("anthropic.main"));
        let shown_adapter = adapter.sanitized(&|value: &str| value.into());
        let adapter_shown = shown_adapter.adapter.as_ref().expect("adapter");
        assert_eq!(adapter_shown.api_key.as_deref(), Some(""));
        assert_eq!(adapter_shown.token.as_deref(), Some("openai.main"));
        let json = format!(
            "{}{}",
            serde_json::to_string(&shown).expect("json"),
            serde_json::to_string(&shown_adapter).expect("json")
        );
        assert!(!json.contains("canary"), "{json}");
    }
}
