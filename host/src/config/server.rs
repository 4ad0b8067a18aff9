//! `config.yml`: the daemon's settings. Every key is optional; a missing file means defaults.
//!
//! ```yaml
//! addr: 127.0.0.1:21212
//! api_key: change-me             # the API's key; absent: generated into <home>/api_key
//! max_body_bytes: 5242880        # webhook bodies past this get 413
//! durability: full               # full: fsync every commit; normal: faster, may lose the last commits on power loss
//! plugin_pool: 128               # plugin calls that may run at once
//! identities: [mecha-bot]        # mecha's own accounts: their events are ignored (loop guard)
//! dispatch:
//!   concurrency: 64              # tasks in flight across all workers
//!   retry_base_ms: 30000         # first retry after 15-30 s, doubling up to retry_max_ms
//!   retry_max_ms: 1800000
//!   health_interval_ms: 10000    # how often workers in error are probed
//!   lease_ms: 30000              # a dead daemon's tasks are sent again after at most this
//! retention:
//!   logs_days: 30                # audit records kept this long
//!   events_days: 30              # finished events kept this long
//! plugins:
//!   require_signature: false     # true: `mecha plugin install` refuses what no trusted key signed
//!   generic:
//!     timeout_ms: 2000
//!     memory_mib: 64
//!     instances: 100             # core wasm instances per call (CPython components have ~40)
//!     table_elements: 100000     # elements per wasm table
//!     settings:
//!       type_header: X-Event-Type
//! sources:                       # more webhook endpoints, each at /webhook/<name> with the
//!   github-enterprise:           # secrets of the secrets.yml section <name>
//!     plugin: github             # default: the instance's own name
//!     api_url: https://ghe.example.com/api/v3   # for hydration, with secrets.yml <name>.token
//!   deploys:
//!     plugin: generic
//!     settings:
//!       type_header: X-Deploy-Event
//! triggers:                      # schedules; each due tick calls the trigger plugin
//!   nightly:                     # the schedule's name (the cron event's actor)
//!     schedule: "0 3 * * 1-5"    # five-field cron, @daily, @hourly, ... or @every 10m
//!     timezone: Europe/Berlin    # default UTC
//!     settings:
//!       subject: acme/widgets
//! responders:                    # write-back; the token is secrets.yml <name>.token
//!   github:
//!     api_url: https://api.github.com   # GitHub Enterprise: https://host/api/v3 (or GITHUB_API_URL)
//!   gitlab:
//!     api_url: https://gitlab.example.com/api/v4
//!     allow_private_network: true       # the API resolves to a LAN address
//!     timeout_ms: 60000
//!   slack:                              # answers in Slack threads; secrets.yml slack.token
//!     api_url: https://slack.com/api
//!     response_origins: [https://hooks.slack.com]   # where slash commands are answered
//!     settings:
//!       response_type: in_channel       # slash command answers for everyone (default ephemeral)
//!   telegram:                           # replies in Telegram chats; secrets.yml telegram.token
//!     api_url: https://api.telegram.org
//! otlp_endpoint: http://127.0.0.1:4318   # export a trace per event, a span per stage (OTLP/HTTP)
//! http:                          # see config::http
//!   allowed_hosts: [mecha.example.com]  # the API answers loopback names and addr, and these
//!   header_timeout_ms: 10000
//!   body_timeout_ms: 20000
//!   max_connections: 512
//!   max_connections_per_ip: 64
//!   connection_lifetime_ms: 300000
//!   body_memory_bytes: 67108864
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::http::HttpConfig;
use super::schedule::{Schedule, ScheduleError};
use super::secrets::Secret;
use super::{Error, private_file, yaml_error};

/// 127.0.0.1: the daemon is reachable from this machine only unless the operator says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:21212";

/// 5 MiB: GitHub caps payloads at 25 MB, but real ones are tens of KB; a larger body is far more
/// likely an attack than an event.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// 128 plugin calls at once: more than 2 cores can run, enough to keep them busy while others
/// wait on the host.
pub const DEFAULT_PLUGIN_POOL: u32 = 128;

/// 2 s: parsing a webhook takes well under a millisecond; anything near this is a runaway plugin.
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(2);

/// 64 MiB: a 5 MiB body parsed into a DOM fits several times over, and so does a CPython
/// component's interpreter (about 12 MiB).
pub const DEFAULT_PLUGIN_MEMORY_MIB: u64 = 64;

/// 100 core instances per call: a Rust component has a handful, a CPython one from
/// componentize-py about 40 (its interpreter, libc and shims are separate modules).
pub const DEFAULT_PLUGIN_INSTANCES: u32 = 100;

/// 100,000 elements per table: CPython's function table has tens of thousands of entries; at
/// 8 bytes each the limit bounds a table to under a megabyte.
pub const DEFAULT_PLUGIN_TABLE_ELEMENTS: u32 = 100_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_addr")]
    pub addr: SocketAddr,
    /// The key the API, and webhooks of sources that verify nothing, require. Absent: the key
    /// in `<home>/api_key`, generated at the first start (see [`super::api_key`]).
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default)]
    pub durability: Durability,
    /// Where the store is: `sqlite://PATH`, or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`
    /// for a database several daemons share; absent, the SQLite file in the mecha directory.
    /// `MECHA_DATABASE_URL` overrides it. A secret: it may hold a password.
    #[serde(default)]
    pub database_url: Option<Secret>,
    #[serde(default = "default_plugin_pool")]
    pub plugin_pool: u32,
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Actors that are mecha itself (e.g. the bot account it comments as): their events never
    /// start tasks unless a rule says `allow_bots: true`.
    #[serde(default)]
    pub identities: Vec<String>,
    #[serde(default)]
    pub dispatch: DispatchConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Write-back destinations, by responder plugin name.
    #[serde(default)]
    pub responders: BTreeMap<String, ResponderConfig>,
    /// Webhook endpoints, by instance name, besides the one every source plugin gets under
    /// its own name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Schedules, by name.
    #[serde(default)]
    pub triggers: BTreeMap<String, TriggerConfig>,
    /// Timeouts, connection and memory limits, and the host names the API answers to.
    #[serde(default)]
    pub http: HttpConfig,
    /// An OTLP/HTTP receiver (an OpenTelemetry Collector, Jaeger, ...) to export each event's
    /// trace to; absent, nothing is exported. See [`ServerConfig::otlp_traces_url`].
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

/// One webhook endpoint: a source plugin with its own secrets and settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The source plugin; absent: the plugin named like the instance.
    pub plugin: Option<String>,
    /// The provider's API, for plugins that add to events from it (the `github` source fetches
    /// a pull request's diff) when `secrets.yml` has a `token` for this instance. Absent:
    /// `GITHUB_API_URL` for the github plugin, else the plugin's own default.
    pub api_url: Option<String>,
    /// Allow the API's host to resolve to a private or loopback address. Metadata and
    /// link-local addresses stay refused.
    #[serde(default)]
    pub allow_private_network: bool,
    pub timeout_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    /// Values the plugin reads through `config`, over those of `plugins.<plugin>.settings`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// One schedule of a trigger plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// The trigger plugin; absent: `cron`.
    pub plugin: Option<String>,
    /// Five-field cron (`*/15 * * * *`), a macro (`@hourly`, `@daily`, ...) or `@every 10m`.
    pub schedule: String,
    /// An IANA time zone (`Europe/Berlin`) for cron fields; absent: UTC.
    pub timezone: Option<String>,
    /// Values the plugin reads through `config` on this schedule's ticks, over those of
    /// `plugins.<plugin>.settings`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// How results are written back through one responder plugin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponderConfig {
    /// The API the responder calls; the only origin it may reach, and the one its token is
    /// sent to. Absent: `GITHUB_API_URL` for `github`, else the plugin's own default.
    pub api_url: Option<String>,
    /// Allow the API's host to resolve to a private or loopback address (a self-hosted GitLab
    /// on the LAN). Metadata and link-local addresses stay refused.
    #[serde(default)]
    pub allow_private_network: bool,
    /// How the host presents the token: `bearer` (`Authorization: Bearer`, GitHub's and
    /// Slack's), `private-token` (`PRIVATE-TOKEN`, GitLab's) or `bot-path` (in the URL path,
    /// `/bot<token>/<method>`, Telegram's). Absent: `private-token` for `gitlab`, `bot-path` for
    /// `telegram`, else `bearer`.
    pub auth: Option<TokenAuth>,
    /// Origins the responder may also call, without the token: where a provider hands out URLs
    /// to answer at (Slack's `response_url`s). Absent: the origins the plugin declares after its
    /// first (`https://hooks.slack.com` for `slack`).
    pub response_origins: Option<Vec<String>>,
    /// The source instances whose events this responder answers. Absent: the source of the
    /// same name (the `github` responder answers the `github` source).
    pub sources: Option<Vec<String>>,
    /// One write-back call, all its requests included.
    pub timeout_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    /// Further values the plugin reads through `config`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// Where a token is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenAuth {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `PRIVATE-TOKEN: <token>`.
    PrivateToken,
    /// In the path: `<api_url>/bot/<method>` is sent as `<api_url>/bot<token>/<method>`.
    BotPath,
}

/// How tasks are sent and retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    pub concurrency: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub health_interval_ms: u64,
    /// How long a claimed task is held for its sender without renewal (renewed every third of
    /// it while the worker works): when a daemon dies, another sends its tasks again after at
    /// most this much more. At least 300.
    pub lease_ms: u64,
}

impl Default for DispatchConfig {
    /// 64 tasks in flight; retries from 30 s doubling to 30 min; workers in error probed
    /// every 10 s; leases of 30 s.
    fn default() -> Self {
        DispatchConfig {
            concurrency: 64,
            retry_base_ms: 30_000,
            retry_max_ms: 30 * 60_000,
            health_interval_ms: 10_000,
            lease_ms: 30_000,
        }
    }
}

/// How long records are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub logs_days: u32,
    pub events_days: u32,
}

impl Default for RetentionConfig {
    /// 30 days of each.
    fn default() -> Self {
        RetentionConfig {
            logs_days: 30,
            events_days: 30,
        }
    }
}

/// How hard the database works to survive a power loss.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every acknowledged event is on disk (`synchronous=FULL`).
    #[default]
    Full,
    /// Faster commits; a power loss may lose the last ones (`synchronous=NORMAL`).
    Normal,
}

/// The `plugins` section: settings by plugin name (it dereferences to that map), and
/// `require_signature`, which applies to all of them.
///
/// `require_signature` sits among plugin names rather than in a section of its own so that the
/// operator finds it where plugins are configured; the name is reserved, which costs nothing
/// since no plugin would call itself so.
#[derive(Debug, Clone, Default)]
pub struct PluginsConfig {
    /// `mecha plugin install` refuses anything not signed by a trusted key
    /// (`mecha plugin trust add`).
    pub require_signature: bool,
    by_name: BTreeMap<String, PluginConfig>,
}

impl std::ops::Deref for PluginsConfig {
    type Target = BTreeMap<String, PluginConfig>;

    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

impl<'de> Deserialize<'de> for PluginsConfig {
    /// Read entry by entry (not through an intermediate value), so an error in one plugin's
    /// settings keeps its line and column.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PluginsConfig;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("require_signature and settings by plugin name")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PluginsConfig, A::Error> {
                let mut plugins = PluginsConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "require_signature" {
                        plugins.require_signature = map.next_value()?;
                    } else {
                        let value = map.next_value()?;
                        plugins.by_name.insert(key, value);
                    }
                }
                Ok(plugins)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The operator's settings for one plugin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub timeout_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    /// Core wasm instances one call may create (default [`DEFAULT_PLUGIN_INSTANCES`]).
    pub instances: Option<u32>,
    /// Elements one wasm table may hold (default [`DEFAULT_PLUGIN_TABLE_ELEMENTS`]).
    pub table_elements: Option<u32>,
    /// Values the plugin reads through its `config` import.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// Instance names become URL paths (`/webhook/{name}`) and `secrets.yml` sections, where
/// `tokens` is taken.
fn check_instance_name(name: &str) -> Result<(), String> {
    if !super::name::is_safe_name(name) {
        return Err(
            "use 1-64 lower-case letters, digits, - and _, starting with a letter or digit".into(),
        );
    }
    if name == "tokens" {
        return Err(
            "`tokens` is the secrets.yml section of worker tokens; choose another name".into(),
        );
    }
    Ok(())
}

fn default_addr() -> SocketAddr {
    DEFAULT_ADDR
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 21212)))
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_plugin_pool() -> u32 {
    DEFAULT_PLUGIN_POOL
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: default_addr(),
            api_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            durability: Durability::default(),
            database_url: None,
            plugin_pool: DEFAULT_PLUGIN_POOL,
            plugins: PluginsConfig::default(),
            identities: Vec::new(),
            dispatch: DispatchConfig::default(),
            retention: RetentionConfig::default(),
            responders: BTreeMap::new(),
            sources: BTreeMap::new(),
            triggers: BTreeMap::new(),
            http: HttpConfig::default(),
            otlp_endpoint: None,
        }
    }
}

impl ServerConfig {
    /// Reads `path`; a missing file gives the defaults, one that others may read is refused.
    /// `MECHA_DATABASE_URL`, when set, replaces `database_url`.
    pub fn load(path: &Path) -> Result<ServerConfig, Error> {
        let mut config = ServerConfig::read(path)?;
        if let Some(url) = std::env::var("MECHA_DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
        {
            config.database_url = Some(Secret::new(url));
        }
        Ok(config)
    }

    fn read(path: &Path) -> Result<ServerConfig, Error> {
        // It may hold `api_key`: refused, like `secrets.yml`, when others may read or change it.
        let Some(text) = private_file::read(path)? else {
            return Ok(ServerConfig::default());
        };
        if text.trim().is_empty() {
            return Ok(ServerConfig::default());
        }
        let config: ServerConfig =
            serde_yaml::from_str(&text).map_err(|err| yaml_error(path, err))?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), Error> {
        let invalid = |field: &str, message: &str| Error::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            message: message.to_owned(),
        };
        if self.max_body_bytes == 0 {
            return Err(invalid("max_body_bytes", "must be greater than 0"));
        }
        if let Some((field, message)) = self.http.problems(self.max_body_bytes).into_iter().next() {
            return Err(invalid(&field, &message));
        }
        if self.plugin_pool == 0 {
            return Err(invalid("plugin_pool", "must be greater than 0"));
        }
        if let Err(message) = self.otlp_traces_url() {
            return Err(invalid("otlp_endpoint", &message));
        }
        if self
            .api_key
            .as_ref()
            .is_some_and(|key| key.expose().is_empty())
        {
            return Err(invalid("api_key", "is empty; remove it or set a value"));
        }
        if self.dispatch.concurrency == 0 {
            return Err(invalid("dispatch.concurrency", "must be greater than 0"));
        }
        if self.dispatch.retry_base_ms == 0
            || self.dispatch.retry_max_ms < self.dispatch.retry_base_ms
        {
            return Err(invalid(
                "dispatch.retry_base_ms",
                "must be greater than 0 and at most dispatch.retry_max_ms",
            ));
        }
        if self.dispatch.health_interval_ms == 0 {
            return Err(invalid(
                "dispatch.health_interval_ms",
                "must be greater than 0",
            ));
        }
        // A third of it between renewals must leave room for a commit under load.
        if self.dispatch.lease_ms < 300 {
            return Err(invalid("dispatch.lease_ms", "must be at least 300"));
        }
        for (name, responder) in &self.responders {
            if responder.timeout_ms == Some(0) || responder.memory_mib == Some(0) {
                return Err(invalid(
                    &format!("responders.{name}"),
                    "timeout_ms and memory_mib must be greater than 0",
                ));
            }
        }
        for (name, source) in &self.sources {
            let field = format!("sources.{name}");
            check_instance_name(name).map_err(|message| invalid(&field, &message))?;
            if source.timeout_ms == Some(0) || source.memory_mib == Some(0) {
                return Err(invalid(
                    &field,
                    "timeout_ms and memory_mib must be greater than 0",
                ));
            }
        }
        for (name, trigger) in &self.triggers {
            let field = format!("triggers.{name}");
            check_instance_name(name).map_err(|message| invalid(&field, &message))?;
            Schedule::parse(&trigger.schedule, trigger.timezone.as_deref()).map_err(|err| {
                let key = match err {
                    ScheduleError::UnknownZone { .. } => "timezone",
                    _ => "schedule",
                };
                invalid(&format!("{field}.{key}"), &err.to_string())
            })?;
        }
        for (name, plugin) in self.plugins.iter() {
            if plugin.timeout_ms == Some(0) {
                return Err(invalid(
                    &format!("plugins.{name}.timeout_ms"),
                    "must be greater than 0",
                ));
            }
            for (key, value) in [
                ("instances", plugin.instances),
                ("table_elements", plugin.table_elements),
            ] {
                if value == Some(0) {
                    return Err(invalid(
                        &format!("plugins.{name}.{key}"),
                        "must be greater than 0",
                    ));
                }
            }
            if plugin.memory_mib == Some(0) {
                return Err(invalid(
                    &format!("plugins.{name}.memory_mib"),
                    "must be greater than 0",
                ));
            }
        }
        Ok(())
    }

    /// Where spans are posted: `otlp_endpoint` itself when it names a path, else its
    /// `/v1/traces`, as OpenTelemetry's `OTEL_EXPORTER_OTLP_ENDPOINT` is read. `None` when
    /// unset. Only `http://`, with no credentials: OTLP receivers usually run beside the daemon
    /// (a Collector), and forward over TLS from there.
    pub fn otlp_traces_url(&self) -> Result<Option<reqwest::Url>, String> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(None);
        };
        let mut url =
            reqwest::Url::parse(endpoint).map_err(|err| format!("is not a URL: {err}"))?;
        if url.scheme() != "http" {
            return Err(
                "must be an http:// URL: a collector beside the daemon, which may forward over TLS"
                    .into(),
            );
        }
        // A receiver that wants a key takes it from a collector in front of it: the URL is logged.
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err("must not carry credentials, a query or a fragment".into());
        }
        if url.path() == "/" || url.path().is_empty() {
            url.set_path("/v1/traces");
        }
        Ok(Some(url))
    }

    /// The write-back settings for the responder `name`, defaults when the operator set none.
    pub fn responder(&self, name: &str) -> ResponderConfig {
        self.responders.get(name).cloned().unwrap_or_default()
    }

    /// The schedule of the trigger `name`; checked when the file was loaded.
    pub fn schedule(&self, name: &str) -> Option<Schedule> {
        let trigger = self.triggers.get(name)?;
        Schedule::parse(&trigger.schedule, trigger.timezone.as_deref()).ok()
    }

    /// The settings for the plugin `name`, defaults when the operator set none.
    pub fn plugin(&self, name: &str) -> PluginConfig {
        self.plugins.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_otlp_endpoint_without_a_path_gets_the_traces_path() {
        let url = |endpoint: &str| {
            ServerConfig {
                otlp_endpoint: Some(endpoint.to_owned()),
                ..ServerConfig::default()
            }
            .otlp_traces_url()
            .map(|url| url.map(String::from))
        };
        assert_eq!(
            url("http://127.0.0.1:4318").unwrap().as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            url("http://collector:4318/custom/traces")
                .unwrap()
                .as_deref(),
            Some("http://collector:4318/custom/traces")
        );
        assert!(url("https://collector:4318").is_err());
        assert!(url("collector:4318").is_err());
        for secretive in [
            "http://user:hunter2@collector:4318",
            "http://collector:4318/v1/traces?api-key=hunter2",
            "http://collector:4318/#hunter2",
        ] {
            let refused = url(secretive).unwrap_err();
            assert!(!refused.contains("hunter2"), "{refused}");
        }
        assert_eq!(ServerConfig::default().otlp_traces_url(), Ok(None));
        let error = load("otlp_endpoint: ftp://collector\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("otlp_endpoint"), "{error}");
    }

    fn load(text: &str) -> Result<ServerConfig, Error> {
        let temp = tempfile::tempdir().expect("temp");
        let path = temp.path().join("config.yml");
        std::fs::write(&path, text).expect("write");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        ServerConfig::load(&path)
    }

    #[test]
    fn defaults_when_missing_or_empty() {
        let config = load("").expect("empty is fine");
        assert_eq!(config.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.durability, Durability::Full);
    }

    #[test]
    fn reads_plugin_settings() {
        let config = load(
            "addr: 127.0.0.1:9000\nplugins:\n  generic:\n    timeout_ms: 50\n    settings:\n      type_header: X-Kind\n",
        )
        .expect("valid");
        assert_eq!(config.addr.port(), 9000);
        let generic = config.plugin("generic");
        assert_eq!(generic.timeout_ms, Some(50));
        assert_eq!(generic.settings["type_header"], "X-Kind");
        assert!(config.plugin("github").settings.is_empty());
    }

    #[test]
    fn require_signature_sits_among_the_plugins() {
        assert!(!load("").expect("empty").plugins.require_signature);
        let config = load("plugins:\n  require_signature: true\n  generic:\n    timeout_ms: 50\n")
            .expect("valid");
        assert!(config.plugins.require_signature);
        assert_eq!(config.plugin("generic").timeout_ms, Some(50));
        assert!(!config.plugins.contains_key("require_signature"));
        let err = load("plugins:\n  require_signature: yes please\n")
            .expect_err("not a bool")
            .to_string();
        assert!(err.contains("plugins.require_signature"), "{err}");
    }

    #[test]
    fn unknown_keys_name_key_line_and_column() {
        let err = load("addr: 127.0.0.1:9000\nmax_body: 5\n")
            .expect_err("typo")
            .to_string();
        assert!(err.contains("max_body"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn zero_limits_are_refused() {
        let err = load("plugins:\n  github:\n    memory_mib: 0\n")
            .expect_err("zero")
            .to_string();
        assert!(err.contains("plugins.github.memory_mib"), "{err}");
    }
}
