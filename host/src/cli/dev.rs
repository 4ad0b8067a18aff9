//! `mecha dev send`: post a payload to a running daemon, signed like its provider would sign it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::http_client;
use crate::config::home::Home;
use crate::config::secrets::{Secret, Secrets};
use crate::config::server::ServerConfig;
use crate::signature;

#[derive(Debug, Subcommand)]
pub enum Dev {
    /// Sign a payload with the configured secret and POST it to /webhook/<SOURCE>.
    ///
    /// The secret comes from the source's section of secrets.yml, used as its plugin uses it:
    /// github signs with webhook_secret (the event type from --event or the file name:
    /// `pull_request__opened.payload.json` is pull_request); gitlab sends webhook_secret as
    /// X-Gitlab-Token (the hook from --event or the body's object_kind); slack signs with
    /// signing_secret at the current time (`.form` files are sent form-encoded); telegram sends
    /// secret_token. Other sources (generic): --event sets the type header, and the daemon's API
    /// key is sent (MECHA_API_KEY, api_key in config.yml, or the generated file api_key).
    Send(Send),
}

impl Dev {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        match self {
            Dev::Send(command) => command.run(&home).await,
        }
    }
}

#[derive(Debug, Args)]
pub struct Send {
    /// The source to send to, e.g. github or generic.
    source: String,
    /// The JSON payload to send.
    fixture: PathBuf,
    /// The event type (GitHub's X-GitHub-Event, GitLab's X-Gitlab-Event, or the generic type
    /// header).
    #[arg(long)]
    event: Option<String>,
    /// The delivery id to send (default: a random one).
    #[arg(long)]
    delivery: Option<String>,
    /// The daemon's address (default: addr from config.yml).
    #[arg(long)]
    addr: Option<String>,
    /// Print the daemon's answer as it came (JSON), instead of a line per stored event.
    #[arg(long)]
    json: bool,
}

impl Send {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let config = ServerConfig::load(&home.config_file())?;
        let body = std::fs::read(&self.fixture)
            .with_context(|| format!("reading {}", self.fixture.display()))?;
        let addr = self.addr.clone().unwrap_or_else(|| config.addr.to_string());
        let url = format!("http://{addr}/webhook/{}", self.source);
        let delivery = self.delivery.clone().unwrap_or_else(random_delivery_id);
        let plugin = config
            .sources
            .get(&self.source)
            .and_then(|declared| declared.plugin.clone())
            .unwrap_or_else(|| self.source.clone());
        let mut request = http_client::client()?.post(&url).body(body.clone());
        let secret = |name: &str| -> anyhow::Result<Secret> {
            Secrets::load(&home.secrets_file())?
                .for_source(&self.source)
                .remove(name)
                .with_context(|| {
                    format!(
                        "set {}.{name} in secrets.yml to sign {plugin} payloads",
                        self.source
                    )
                })
        };
        let mut content_type = "application/json";
        match plugin.as_str() {
            "github" => {
                let secret = secret("webhook_secret")?;
                let event = match &self.event {
                    Some(event) => event.clone(),
                    None => event_from_file_name(&self.fixture).context(
                        "pass --event: the file name does not say which GitHub event this is",
                    )?,
                };
                request = request
                    .header("X-GitHub-Event", event)
                    .header("X-GitHub-Delivery", &delivery)
                    .header(
                        "X-Hub-Signature-256",
                        signature::github_signature(secret.expose().as_bytes(), &body),
                    );
            }
            "gitlab" => {
                let token = secret("webhook_secret")?;
                let hook = match &self.event {
                    Some(hook) => hook.clone(),
                    None => gitlab_hook(&body).map(str::to_owned).context(
                        "pass --event \"Push Hook\" (or another X-Gitlab-Event): the body has no known object_kind",
                    )?,
                };
                request = request
                    .header("X-Gitlab-Event", hook)
                    .header("X-Gitlab-Event-UUID", &delivery)
                    .header("X-Gitlab-Token", token.expose());
            }
            "slack" => {
                let secret = secret("signing_secret")?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs() as i64);
                if self.fixture.extension().is_some_and(|ext| ext == "form") {
                    content_type = "application/x-www-form-urlencoded";
                }
                request = request
                    .header("X-Slack-Request-Timestamp", now.to_string())
                    .header(
                        "X-Slack-Signature",
                        signature::slack_signature(secret.expose().as_bytes(), now, &body),
                    );
            }
            "telegram" => {
                let token = secret("secret_token")?;
                request = request.header("X-Telegram-Bot-Api-Secret-Token", token.expose());
            }
            _ => {
                let Some(event) = &self.event else {
                    bail!(
                        "pass --event TYPE: {} webhooks carry their type in a header",
                        self.source
                    );
                };
                let configured = config
                    .sources
                    .get(&self.source)
                    .and_then(|declared| declared.settings.get("type_header").cloned());
                let header = configured
                    .or_else(|| config.plugin(&plugin).settings.get("type_header").cloned())
                    .unwrap_or_else(|| "X-Event-Type".to_owned());
                request = request.header(header, event);
                if let Some(key) = super::api_key(home)? {
                    request = request.header("X-API-Key", key.expose());
                }
            }
        }
        let response =
            http_client::send(request.header("Content-Type", content_type), &url).await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if self.json {
            println!("{text}");
        } else {
            println!("{}", summary(status, &text));
        }
        if !status.is_success() {
            bail!("the daemon answered {status}");
        }
        Ok(())
    }
}

/// The `X-Gitlab-Event` of a GitLab body, from its `object_kind`.
fn gitlab_hook(body: &[u8]) -> Option<&'static str> {
    let payload: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(match payload.get("object_kind")?.as_str()? {
        "merge_request" => "Merge Request Hook",
        "push" => "Push Hook",
        "tag_push" => "Tag Push Hook",
        "note" => "Note Hook",
        "issue" => "Issue Hook",
        "pipeline" => "Pipeline Hook",
        "build" => "Job Hook",
        "release" => "Release Hook",
        "wiki_page" => "Wiki Page Hook",
        "deployment" => "Deployment Hook",
        _ => return None,
    })
}

/// `pull_request__opened.payload.json` → `pull_request`; `push__payload.json` → `push`.
fn event_from_file_name(path: &std::path::Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let (event, _) = name.split_once("__")?;
    (!event.is_empty()).then(|| event.to_owned())
}

/// The daemon's answer in short: a line per stored event (its status, id, type, actor, subject
/// and state), what became of a duplicate or ignored delivery, or the answer itself when it is
/// neither (an error, a provider's handshake).
fn summary(status: reqwest::StatusCode, text: &str) -> String {
    use serde_json::Value;
    let code = status.as_u16();
    let Ok(answer) = serde_json::from_str::<Value>(text) else {
        return format!("{status}\n{text}");
    };
    let events: Vec<&Value> = match answer.get("events").and_then(Value::as_array) {
        Some(events) => events.iter().collect(),
        None if answer.get("type").is_some() => vec![&answer],
        None => Vec::new(),
    };
    if events.is_empty() {
        let field = |name: &str| answer.get(name).and_then(Value::as_str);
        return match (field("status"), field("id")) {
            (Some("duplicate"), Some(id)) => format!("{code} duplicate of {id}"),
            (Some(outcome), _) => format!("{code} {outcome}"),
            _ => format!("{status}\n{text}"),
        };
    }
    events
        .iter()
        .map(|event| {
            let field = |name: &str| event.get(name).and_then(Value::as_str).unwrap_or("");
            fn or_dash(value: &str) -> &str {
                if value.is_empty() { "-" } else { value }
            }
            format!(
                "{code} {} {} actor={} subject={} {}",
                field("id"),
                field("type"),
                or_dash(field("actor")),
                or_dash(field("subject")),
                field("state"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn random_delivery_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        return format!("dev-{nanos}");
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::{event_from_file_name, gitlab_hook, summary};
    use reqwest::StatusCode;
    use std::path::Path;

    #[test]
    fn the_answer_is_summed_up_in_a_line_per_event() {
        let one = r#"{"id":"ab12","delivery_id":"d","source":"github","type":"pull_request.opened",
            "actor":"octocat","subject":"acme/widgets#7","attrs":{"number":7},"raw_bytes":28000,
            "state":"received"}"#;
        assert_eq!(
            summary(StatusCode::ACCEPTED, one),
            "202 ab12 pull_request.opened actor=octocat subject=acme/widgets#7 received"
        );
        let two = r#"{"events":[{"id":"a","type":"t1","actor":"","subject":"s","state":"received"},
            {"id":"b","type":"t2","actor":"x","subject":"","state":"received"}]}"#;
        assert_eq!(
            summary(StatusCode::ACCEPTED, two),
            "202 a t1 actor=- subject=s received\n202 b t2 actor=x subject=- received"
        );
        assert_eq!(
            summary(StatusCode::OK, r#"{"status":"duplicate","id":"ab12"}"#),
            "200 duplicate of ab12"
        );
        assert_eq!(
            summary(StatusCode::OK, r#"{"status":"ignored"}"#),
            "200 ignored"
        );
        // Anything else is shown as it came: an error, or a provider's handshake.
        assert_eq!(
            summary(StatusCode::BAD_REQUEST, r#"{"error":"body is not JSON"}"#),
            "400 Bad Request\n{\"error\":\"body is not JSON\"}"
        );
        assert_eq!(summary(StatusCode::OK, "challenge"), "200 OK\nchallenge");
    }

    #[test]
    fn gitlab_hooks_come_from_the_object_kind() {
        assert_eq!(
            gitlab_hook(br#"{"object_kind":"merge_request"}"#),
            Some("Merge Request Hook")
        );
        assert_eq!(gitlab_hook(br#"{"object_kind":"build"}"#), Some("Job Hook"));
        assert_eq!(gitlab_hook(br#"{"object_kind":"unknown"}"#), None);
        assert_eq!(gitlab_hook(b"[]"), None);
    }

    #[test]
    fn event_comes_from_fixture_names() {
        assert_eq!(
            event_from_file_name(Path::new("x/pull_request__opened.payload.json")).as_deref(),
            Some("pull_request")
        );
        assert_eq!(
            event_from_file_name(Path::new("push__payload.json")).as_deref(),
            Some("push")
        );
        assert_eq!(event_from_file_name(Path::new("payload.json")), None);
    }
}
