//! `mecha plugin test FILE.wasm`: runs a plugin once, as the daemon would, against a fixture.
//!
//! The plugin is loaded by the daemon's own loader on an engine sized from the home's
//! `config.yml`, with that plugin's limits and nothing granted but what the world gives: a
//! source gets only the secrets given with `--secret`, a responder only the local recorder that
//! stands in for its provider and prints each request it would have sent. What the plugin
//! logged and printed, the outcome, and the call's figures are shown; the exit status is
//! non-zero when the call failed or the plugin answered with an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::home::Home;
use crate::config::secrets::Secret;
use crate::config::server::ServerConfig;
use crate::pipeline::plugin_event::{error_text, json_attrs, plugin_attrs};
use crate::pipeline::policy_chain::task_result;
use crate::plugin::bindings::source::{Outcome, types};
use crate::plugin::bindings::trigger::Tick;
use crate::plugin::engine::RuntimeOptions;
use crate::plugin::host::http::{DEFAULT_MAX_RESPONSE_BYTES, HttpGrant, Origin as HttpOrigin};
use crate::plugin::host::log::{CallFigures, Line};
use crate::plugin::limits::Limits;
use crate::plugin::loader::{LoadedPlugin, Loader, Origin, Runner};
use crate::plugin::responder::ResponderCall;
use crate::plugin::source::SourceCall;
use crate::plugin::trigger::TriggerCall;
use crate::plugin::{Runtime, World, component_file};
use crate::worker::result::WorkerResult;

#[derive(Debug, Args)]
pub struct Test {
    /// The plugin component (.wasm).
    file: PathBuf,
    /// Source: the request body to send (a file).
    #[arg(long, value_name = "FILE")]
    body: Option<PathBuf>,
    /// Source: a request header, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Source: the request method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// Source: the query string, without `?`.
    #[arg(long, default_value = "")]
    query: String,
    /// Source: a secret the plugin may verify with, `name=value` (repeatable); nothing else is
    /// granted.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    /// A setting the plugin reads through `config`, `name=value` (repeatable); added to those
    /// of `plugins.<name>.settings` in config.yml.
    #[arg(long = "setting", value_name = "NAME=VALUE")]
    settings: Vec<String>,
    /// Policy, responder: the worker's result (a JSON file in the worker result format).
    #[arg(long, value_name = "FILE")]
    result: Option<PathBuf>,
    /// Policy: the rules, as JSON text or a JSON file.
    #[arg(long, value_name = "JSON|FILE", default_value = "{}")]
    rules: String,
    /// Policy, responder: the event, a JSON file with `source`, `type`, `actor`, `subject`
    /// and `attrs`; absent: an empty event of source `test`.
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,
    /// Trigger: the schedule's name in the tick.
    #[arg(long, default_value = "test")]
    schedule: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// What one test run found.
#[derive(Serialize)]
struct Report {
    plugin: String,
    world: World,
    wit_version: String,
    /// Whether the call ran and the plugin did not answer with an error.
    ok: bool,
    outcome: Value,
    log: Vec<Line>,
    figures: Option<CallFigures>,
    /// The requests a responder sent to the recorder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    requests: Vec<Value>,
}

impl Test {
    pub async fn run(self, home: &Home) -> anyhow::Result<()> {
        let config = ServerConfig::load(&home.config_file())?;
        let runtime = Arc::new(Runtime::new(RuntimeOptions::from_config(&config))?);
        let loader = Loader::new(runtime.clone(), Some(home.cache_dir()))?;
        let wasm = component_file::read(&self.file)?;
        let label = self.file.file_name().map_or_else(
            || "plugin".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        );
        let plugin = loader
            .load(&label, &wasm, Origin::Installed(self.file.clone()))
            .await?;
        // Started after loading: what `describe` logged and cost is not part of the test.
        runtime.log_sink().start_tap();

        let plugin_config = config
            .plugins
            .get(&plugin.info.name)
            .cloned()
            .unwrap_or_default();
        let mut settings = plugin_config.settings.clone();
        settings.extend(pairs(&self.settings, "--setting")?);
        let settings = Arc::new(settings);
        let limits = Limits::from_config(&plugin_config);

        let mut requests = Vec::new();
        let (ok, outcome) = match &plugin.runner {
            Runner::Source(source) => {
                let call = SourceCall {
                    settings,
                    secrets: Arc::new(
                        pairs(&self.secrets, "--secret")?
                            .into_iter()
                            .map(|(name, value)| (name, Secret::new(value)))
                            .collect(),
                    ),
                    limits,
                    clock: None,
                };
                let answer = source.handle_webhook(&call, self.request()?).await;
                match answer {
                    Err(err) => (false, json!({"failed": err.to_string()})),
                    Ok(answer) => match answer.outcome {
                        Ok(Outcome::Events(events)) => (
                            true,
                            json!({"events": events.into_iter().map(event_json).collect::<Vec<_>>()}),
                        ),
                        Ok(Outcome::Reply(reply)) => (true, json!({"reply": reply_json(reply)})),
                        Err(err) => (false, json!({"error": plugin_error(err)})),
                    },
                }
            }
            Runner::Policy(policy) => {
                let proposed = task_result(&self.worker_result()?);
                let rules = json_text(&self.rules)?;
                match policy
                    .evaluate(settings, limits, &self.stored_event()?, &proposed, &rules)
                    .await
                {
                    Err(err) => (false, json!({"failed": err.to_string()})),
                    Ok((allowed, decision)) => (
                        true,
                        json!({
                            "allowed": result_json(&allowed),
                            "decision": {
                                "allowed": verdicts(&decision.allowed),
                                "denied": verdicts(&decision.denied),
                            },
                        }),
                    ),
                }
            }
            Runner::Responder(responder) => {
                let recorder = Recorder::start().await?;
                let mut settings = (*settings).clone();
                settings.insert("api_url".to_owned(), recorder.url.clone());
                let call = ResponderCall {
                    settings: Arc::new(settings),
                    grant: Arc::new(HttpGrant {
                        origins: vec![
                            HttpOrigin::parse(&recorder.url).map_err(anyhow::Error::msg)?,
                        ],
                        credentials: Vec::new(),
                        allow_private: true,
                        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
                    }),
                    limits,
                };
                let proposed = task_result(&self.worker_result()?);
                let answer = responder
                    .respond(
                        &call,
                        &self.stored_event()?,
                        &proposed,
                        "mecha-test-marker",
                        None,
                    )
                    .await
                    .map(|responded| responded.answer);
                requests = recorder.requests();
                match answer {
                    Err(err) => (false, json!({"failed": err.to_string()})),
                    Ok(Ok(receipt)) => (
                        true,
                        json!({"receipt": receipt.actions.iter().map(|action| json!({
                            "action": action.action, "reference": action.reference,
                        })).collect::<Vec<_>>()}),
                    ),
                    Ok(Err(err)) => (
                        false,
                        json!({"error": {"message": err.message, "retryable": err.retryable}}),
                    ),
                }
            }
            Runner::Trigger(trigger) => {
                let call = TriggerCall { settings, limits };
                let tick = Tick {
                    schedule: self.schedule.clone(),
                    due_at: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |elapsed| elapsed.as_secs()),
                };
                match trigger.handle_tick(&call, &tick).await {
                    Err(err) => (false, json!({"failed": err.to_string()})),
                    Ok(Ok(events)) => (
                        true,
                        json!({"events": events.into_iter().map(event_json).collect::<Vec<_>>()}),
                    ),
                    Ok(Err(err)) => (false, json!({"error": plugin_error(err)})),
                }
            }
        };
        let report = Report {
            plugin: plugin.info.name.clone(),
            world: plugin.world,
            wit_version: plugin.wit_version.clone(),
            ok,
            outcome,
            log: runtime
                .log_sink()
                .take()
                .into_iter()
                .map(|(_, line)| line)
                .collect(),
            figures: runtime
                .log_sink()
                .take_figures()
                .pop()
                .map(|(_, figures)| figures),
            requests,
        };
        if self.json {
            crate::cli::print_json(&report)?;
        } else {
            print!("{}", text(&report, &plugin));
        }
        if !report.ok {
            bail!("the plugin's call did not succeed (see the outcome above)");
        }
        Ok(())
    }

    fn request(&self) -> anyhow::Result<types::Request> {
        let body = match &self.body {
            Some(path) => {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
            }
            None => bail!("a source is tested with a request: give its body with --body FILE"),
        };
        let headers = self
            .headers
            .iter()
            .map(|header| {
                let (name, value) = header
                    .split_once(':')
                    .with_context(|| format!("--header {header:?}: write it as `Name: value`"))?;
                Ok(types::Header {
                    name: name.trim().to_ascii_lowercase(),
                    value: value.trim().to_owned(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(types::Request {
            method: self.method.to_ascii_uppercase(),
            query: self.query.clone(),
            headers,
            body,
        })
    }

    fn worker_result(&self) -> anyhow::Result<WorkerResult> {
        let Some(path) = &self.result else {
            bail!(
                "a policy or responder is tested with a worker's result: give it with --result FILE"
            );
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a worker result", path.display()))
    }

    fn stored_event(&self) -> anyhow::Result<types::StoredEvent> {
        let fixture: FixtureEvent = match &self.event {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not an event", path.display()))?
            }
            None => FixtureEvent::default(),
        };
        Ok(types::StoredEvent {
            id: "test".to_owned(),
            source: fixture.source.unwrap_or_else(|| "test".to_owned()),
            trace_id: "test".to_owned(),
            event: types::Event {
                event_type: fixture.event_type,
                delivery_id: None,
                dedup_key: None,
                actor: fixture.actor,
                subject: fixture.subject,
                attrs: plugin_attrs(&fixture.attrs),
            },
        })
    }
}

/// An event as a test fixture gives it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureEvent {
    source: Option<String>,
    #[serde(rename = "type", default)]
    event_type: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    attrs: Map<String, Value>,
}

/// `name=value` arguments of `flag`.
fn pairs(arguments: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    arguments
        .iter()
        .map(|argument| {
            let (name, value) = argument
                .split_once('=')
                .with_context(|| format!("{flag} needs name=value"))?;
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// `text` itself when it is JSON, else the JSON in the file it names.
fn json_text(text: &str) -> anyhow::Result<String> {
    if serde_json::from_str::<Value>(text).is_ok() {
        return Ok(text.to_owned());
    }
    let contents = std::fs::read_to_string(Path::new(text))
        .with_context(|| format!("--rules is neither JSON nor a readable file: {text}"))?;
    serde_json::from_str::<Value>(&contents)
        .with_context(|| format!("{text} does not hold JSON"))?;
    Ok(contents)
}

fn event_json(event: types::Event) -> Value {
    json!({
        "type": event.event_type,
        "delivery_id": event.delivery_id,
        "dedup_key": event.dedup_key,
        "actor": event.actor,
        "subject": event.subject,
        "attrs": json_attrs(event.attrs),
    })
}

fn reply_json(reply: types::Reply) -> Value {
    json!({
        "status": reply.status,
        "headers": reply
            .headers
            .iter()
            .map(|header| (header.name.clone(), json!(header.value)))
            .collect::<Map<String, Value>>(),
        "body": String::from_utf8_lossy(&reply.body),
    })
}

fn plugin_error(err: types::Error) -> Value {
    let kind = match &err {
        types::Error::Unauthorized(_) => "unauthorized",
        types::Error::BadRequest(_) => "bad-request",
        types::Error::Internal(_) => "internal",
    };
    json!({"kind": kind, "message": error_text(err)})
}

fn result_json(result: &types::TaskResult) -> Value {
    let mut json = Map::new();
    if let Some(output) = &result.output {
        json.insert("output".into(), json!(output));
    }
    if let Some(comment) = &result.comment {
        json.insert("comment".into(), json!({"body": comment.body}));
    }
    if let Some(labels) = &result.labels {
        json.insert(
            "labels".into(),
            json!({"add": labels.add, "remove": labels.remove}),
        );
    }
    if let Some(status) = &result.status {
        json.insert(
            "status".into(),
            json!({"state": status.state, "description": status.description}),
        );
    }
    if let Some(commit) = &result.commit {
        json.insert(
            "commit".into(),
            json!({"message": commit.message, "diff": commit.diff}),
        );
    }
    if let Some(metadata) = &result.metadata {
        json.insert(
            "metadata".into(),
            serde_json::from_str(metadata).unwrap_or_else(|_| json!(metadata)),
        );
    }
    Value::Object(json)
}

fn verdicts(verdicts: &[types::Verdict]) -> Value {
    verdicts
        .iter()
        .map(|verdict| json!({"action": verdict.action, "reason": verdict.reason}))
        .collect()
}

fn text(report: &Report, plugin: &LoadedPlugin) -> String {
    let mut text = format!(
        "plugin:   {} {} ({}, mecha:plugin@{})\n",
        report.plugin, plugin.info.version, report.world, report.wit_version
    );
    text.push_str(if report.ok {
        "result:   ok\n"
    } else {
        "result:   FAILED\n"
    });
    let outcome = serde_json::to_string_pretty(&report.outcome).unwrap_or_default();
    text.push_str(&format!("outcome:\n{}\n", indent(&outcome)));
    for request in &report.requests {
        let request = serde_json::to_string_pretty(request).unwrap_or_default();
        text.push_str(&format!("request sent:\n{}\n", indent(&request)));
    }
    if !report.log.is_empty() {
        text.push_str("log:\n");
        for line in &report.log {
            let fields = if line.fields.is_empty() {
                String::new()
            } else {
                format!(" {}", line.fields)
            };
            text.push_str(&format!(
                "  {:<5} {:<6} {}{fields}\n",
                line.level,
                serde_json::to_value(line.stream)
                    .ok()
                    .and_then(|stream| stream.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                line.message
            ));
        }
    }
    if let Some(figures) = &report.figures {
        text.push_str(&format!(
            "figures:\n  instantiate  {:.3} ms\n  call         {:.3} ms\n  peak memory  {:.1} MiB\n",
            figures.instantiate_us as f64 / 1000.0,
            figures.call_us as f64 / 1000.0,
            figures.peak_memory_bytes as f64 / (1024.0 * 1024.0),
        ));
        if let Some(fuel) = figures.fuel_used {
            text.push_str(&format!("  fuel         {fuel}\n"));
        }
    }
    text
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A local HTTP server standing in for a responder's provider: it answers every request with
/// `200` and a small JSON object (`{"id": 1, "html_url": ..., "web_url": ...}`, the fields the
/// bundled responders read back), and keeps what it was sent.
struct Recorder {
    url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start() -> anyhow::Result<Recorder> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("starting the local recorder")?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = requests.clone();
        let answer_url = url.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let kept = kept.clone();
            let answer_url = answer_url.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 16 << 20)
                    .await
                    .unwrap_or_default();
                let headers: Map<String, Value> = parts
                    .headers
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.to_string(),
                            json!(String::from_utf8_lossy(value.as_bytes())),
                        )
                    })
                    .collect();
                let body_text = String::from_utf8_lossy(&body).into_owned();
                let body = serde_json::from_str::<Value>(&body_text).unwrap_or(json!(body_text));
                kept.lock()
                    .unwrap_or_else(|err| err.into_inner())
                    .push(json!({
                        "method": parts.method.as_str(),
                        "path": parts.uri.to_string(),
                        "headers": headers,
                        "body": body,
                    }));
                let link = format!("{answer_url}/recorded/1");
                axum::Json(json!({"id": 1, "html_url": link, "web_url": link}))
            }
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Recorder {
            url,
            requests,
            server,
        })
    }

    fn requests(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap_or_else(|err| err.into_inner())
            .clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.abort();
    }
}
