//! `mecha dev send`: post a payload to a running daemon, signed like its provider would sign it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::config::home::Home;
use crate::config::secrets::Secrets;
use crate::config::server::ServerConfig;
use crate::signature;

#[derive(Debug, Subcommand)]
pub enum Dev {
    /// Sign a payload with the configured secret and POST it to /webhook/<SOURCE>.
    ///
    /// github: signs with github.webhook_secret from secrets.yml; the event type comes from
    /// --event or from the file name (`pull_request__opened.payload.json` is pull_request).
    /// Other sources (generic): --event sets the type header, and the API key is sent when
    /// config.yml has one.
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
    /// The event type (GitHub's X-GitHub-Event, or the generic type header).
    #[arg(long)]
    event: Option<String>,
    /// The delivery id to send (default: a random one).
    #[arg(long)]
    delivery: Option<String>,
    /// The daemon's address (default: addr from config.yml).
    #[arg(long)]
    addr: Option<String>,
}

impl Send {
    async fn run(self, home: &Home) -> anyhow::Result<()> {
        let config = ServerConfig::load(&home.config_file())?;
        let body = std::fs::read(&self.fixture)
            .with_context(|| format!("reading {}", self.fixture.display()))?;
        let addr = self.addr.clone().unwrap_or_else(|| config.addr.to_string());
        let url = format!("http://{addr}/webhook/{}", self.source);
        let delivery = self.delivery.clone().unwrap_or_else(random_delivery_id);
        let mut request = reqwest::Client::new().post(&url).body(body.clone());
        if self.source == "github" {
            let secrets = Secrets::load(&home.secrets_file())?;
            let secret = secrets
                .for_source("github")
                .remove("webhook_secret")
                .context("set github.webhook_secret in secrets.yml to sign GitHub payloads")?;
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
        } else {
            let Some(event) = &self.event else {
                bail!(
                    "pass --event TYPE: {} webhooks carry their type in a header",
                    self.source
                );
            };
            let header = config
                .plugin(&self.source)
                .settings
                .get("type_header")
                .cloned()
                .unwrap_or_else(|| "X-Event-Type".to_owned());
            request = request.header(header, event);
            if let Some(key) = &config.api_key {
                request = request.header("X-API-Key", key.expose());
            }
        }
        let response = request
            .header("Content-Type", "application/json")
            .send()
            .await
            .with_context(|| format!("posting to {url}; is `mecha serve` running?"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        println!("{status}\n{text}");
        if !status.is_success() {
            bail!("the daemon answered {status}");
        }
        Ok(())
    }
}

/// `pull_request__opened.payload.json` → `pull_request`; `push__payload.json` → `push`.
fn event_from_file_name(path: &std::path::Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let (event, _) = name.split_once("__")?;
    (!event.is_empty()).then(|| event.to_owned())
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
    use super::event_from_file_name;
    use std::path::Path;

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
