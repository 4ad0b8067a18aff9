//! `docker:`: a managed worker, whose container mecha creates and runs (reference 2.2).
//!
//! This file holds the keys and the checks that need nothing but the definition. Checks that
//! depend on the machine (does `cwd` exist, is it sensitive, are `~/.claude` and `~/.codex`
//! there) are in `host.rs`; the container itself is the worker module's business.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::problem::{FieldPath, Problem};
use crate::config::secrets::parse_token_reference;

/// Variables mecha sets in every container itself, so `docker.env` may not (compared without
/// regard to case).
pub const RESERVED_ENV_KEYS: [&str; 5] = [
    "WORKER_PORT",
    "WORKER_API_KEY",
    "WORKER_TIMEOUT",
    "WORKER_DRY_RUN",
    "HOME",
];

/// For disposable containers every `WORKER_*` variable is mecha's (compared without regard to
/// case), as in the Go mecha.
pub const DISPOSABLE_RESERVED_PREFIX: &str = "WORKER_";

/// Schemes a Docker daemon address may use (`DOCKER_HOST` forms).
const DOCKER_HOST_SCHEMES: [&str; 5] = ["unix://", "tcp://", "npipe://", "ssh://", "http://"];

/// How to run a managed worker's container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// The image to run. Required.
    pub image: String,
    /// The Docker daemon (`unix://…`, `tcp://…`); absent means `DOCKER_HOST` or the local socket.
    #[serde(default)]
    pub host: Option<String>,
    /// A host directory mounted read-write at `/workspace`. Must be absolute (write
    /// `${HOME}/code/x`, not `~/code/x`); `validate_host` checks it exists and is not sensitive.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Host logins mounted read-only into the container; cannot be combined with `token`.
    #[serde(default)]
    pub credentials: Vec<Credential>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// What mecha does when a persistent worker's container stops by itself.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Extra variables for the container; the reserved ones ([`RESERVED_ENV_KEYS`]) are refused.
    /// Scalars are taken as text (`PORT: 8080` is `"8080"`).
    #[serde(default, deserialize_with = "text_map")]
    pub env: BTreeMap<String, String>,
    /// A `backend.name` reference to a token in `secrets.yml`; its prefix decides the variable
    /// it is given in (`config::secrets::token_env_var`).
    #[serde(default)]
    pub token: Option<String>,
    /// Sent to the container as `WORKER_API_KEY` and by mecha as a bearer token on `/task`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Publish the worker's port on all interfaces instead of 127.0.0.1; requires `api_key`.
    #[serde(default)]
    pub expose: bool,
    /// The user the container runs as: `uid`, `uid:gid`, or names the image knows. Absent: the
    /// user running mecha, except that a daemon running as root does not hand root on: its
    /// containers run as the owner of `cwd`, or as 65534:65534 (nobody) when root owns `cwd`
    /// or there is none. Write `user: "0:0"` to run a container as root all the same.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_text"
    )]
    pub user: Option<String>,
    /// Extra Docker labels. Scalars are taken as text.
    #[serde(default, deserialize_with = "text_map")]
    pub labels: BTreeMap<String, String>,
    /// Claude Code plugins, passed newline-joined as `CLAUDE_PLUGINS`.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Plugin marketplaces, passed newline-joined as `CLAUDE_PLUGIN_MARKETPLACES`.
    #[serde(default)]
    pub plugin_marketplaces: Vec<String>,
}

/// A host login a container may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// `~/.claude`, mounted read-only at `/home/worker/.claude`.
    Claude,
    /// `~/.codex`, mounted read-only at `/home/worker/.codex`.
    Codex,
}

impl Credential {
    /// The directory under the home directory that holds the login.
    pub fn directory(self) -> &'static str {
        match self {
            Credential::Claude => ".claude",
            Credential::Codex => ".codex",
        }
    }
}

/// Whether one container serves every task or each task gets its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// One long-running container.
    #[default]
    Persistent,
    /// A fresh container per task, removed afterwards.
    Disposable,
}

/// Restarts of a persistent worker's container that stopped on its own, written as Docker
/// writes them: `on-failure` (the default, up to [`DEFAULT_RESTART_LIMIT`] times in a row),
/// `on-failure:<n>`, or `no`.
///
/// mecha restarts the container itself rather than through Docker's restart policy, because
/// Docker ignores its policy for a container stopped from outside (`docker kill`), and because
/// each restart is then audited and shown in the worker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never restarted: the worker goes to `error` and stays there.
    No,
    /// Restarted when it exits with a non-zero code or is killed, at most `limit` times
    /// before it has been healthy again.
    OnFailure { limit: u32 },
}

/// 5 restarts in a row: enough to ride out a crash loop caused by a slow dependency, few enough
/// that a broken image is reported within a minute or two.
pub const DEFAULT_RESTART_LIMIT: u32 = 5;

impl Default for RestartPolicy {
    fn default() -> RestartPolicy {
        RestartPolicy::OnFailure {
            limit: DEFAULT_RESTART_LIMIT,
        }
    }
}

impl RestartPolicy {
    /// Parses `no`, `on-failure` or `on-failure:<n>` (n ≥ 1).
    pub fn parse(text: &str) -> Result<RestartPolicy, String> {
        let invalid = || {
            format!("`{text}` is not a restart policy; write no, on-failure or on-failure:<count>")
        };
        match text.split_once(':') {
            None if text == "no" => Ok(RestartPolicy::No),
            None if text == "on-failure" => Ok(RestartPolicy::default()),
            Some(("on-failure", count)) => match count.parse::<u32>() {
                Ok(0) => Err(format!(
                    "`{text}` allows no restart; write no to turn restarts off"
                )),
                Ok(limit) => Ok(RestartPolicy::OnFailure { limit }),
                Err(_) => Err(invalid()),
            },
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure { limit } => write!(f, "on-failure:{limit}"),
        }
    }
}

impl Serialize for RestartPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RestartPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RestartPolicy, D::Error> {
        deserializer.deserialize_any(RestartVisitor)
    }
}

/// Parses inside the visitor, so that an error points at the value's line and column. YAML
/// reads a bare `no` as `false`, so a bool is accepted for it.
struct RestartVisitor;

impl Visitor<'_> for RestartVisitor {
    type Value = RestartPolicy;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no, on-failure or on-failure:<count>")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<RestartPolicy, E> {
        RestartPolicy::parse(text).map_err(E::custom)
    }

    fn visit_bool<E: de::Error>(self, restart: bool) -> Result<RestartPolicy, E> {
        Ok(if restart {
            RestartPolicy::default()
        } else {
            RestartPolicy::No
        })
    }
}

/// Container limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Whole CPUs; 0 means no limit.
    #[serde(default)]
    pub cpu: u32,
    /// Memory limit, written `512m` (MiB) or `2g` (GiB).
    #[serde(default)]
    pub memory: Option<MemoryLimit>,
    /// Process limit; 0 means the default of 1024.
    #[serde(default)]
    pub pids: u32,
}

/// A memory limit in bytes, written `<positive integer><unit>` with the unit `m`/`M` (MiB) or
/// `g`/`G` (GiB), and written back in the largest unit that divides it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit(u64);

/// Bytes in a MiB and a GiB.
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl MemoryLimit {
    /// Parses `512m`, `2G`, ...; refuses zero, other units and sizes past `u64` bytes.
    pub fn parse(text: &str) -> Result<MemoryLimit, String> {
        let unit = text.chars().next_back();
        let number = &text[..text.len() - unit.map_or(0, char::len_utf8)];
        let scale = match unit {
            Some('m' | 'M') => MIB,
            Some('g' | 'G') => GIB,
            _ => {
                return Err(format!(
                    "`{text}` needs a unit: write it like 512m (MiB) or 2g (GiB)"
                ));
            }
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`{text}` is not a size; write a positive whole number and m or g, like 512m"
            ));
        }
        let too_large = || format!("`{text}` is too large");
        let count: u64 = number.parse().map_err(|_| too_large())?;
        if count == 0 {
            return Err(format!("`{text}` must be greater than zero"));
        }
        count
            .checked_mul(scale)
            .map(MemoryLimit)
            .ok_or_else(too_large)
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(GIB) {
            write!(f, "{}g", self.0 / GIB)
        } else {
            write!(f, "{}m", self.0 / MIB)
        }
    }
}

impl Serialize for MemoryLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MemoryLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MemoryLimit, D::Error> {
        deserializer.deserialize_any(MemoryVisitor)
    }
}

/// Parses inside the visitor, so that an error points at the value's line and column.
struct MemoryVisitor;

impl Visitor<'_> for MemoryVisitor {
    type Value = MemoryLimit;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size like 512m or 2g")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<MemoryLimit, E> {
        MemoryLimit::parse(text).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<MemoryLimit, E> {
        MemoryLimit::parse(&number.to_string()).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<MemoryLimit, E> {
        MemoryLimit::parse(&number.to_string()).map_err(E::custom)
    }
}

/// A map whose values may be written as any scalar and are kept as text, as the Go mecha's
/// `map[string]string` reads them.
fn text_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    deserializer.deserialize_map(TextMapVisitor)
}

struct TextMapVisitor;

impl<'de> Visitor<'de> for TextMapVisitor {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of names to text")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = BTreeMap::new();
        while let Some((key, Text(value))) = map.next_entry::<String, Text>()? {
            values.insert(key, value);
        }
        Ok(values)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
}

/// An optional scalar as text (`user: 1000` is `"1000"`).
fn optional_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::<Text>::deserialize(deserializer).map(|text| text.map(|Text(text)| text))
}

/// A scalar as text.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text, a number or a bool")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Text, E> {
        Ok(Text(text.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Text, E> {
        Ok(Text(flag.to_string()))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Text, E> {
        Ok(Text(number.to_string()))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Text, E> {
        Ok(Text(number.to_string()))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Text, E> {
        Ok(Text(number.to_string()))
    }
}

impl DockerConfig {
    /// The checks that need only the definition; `at` is where `docker` sits.
    pub(super) fn check(&self, at: &FieldPath, problems: &mut Vec<Problem>) {
        if self.image.trim().is_empty() {
            problems.push(Problem::new(
                &at.key("image"),
                "is empty; name the image to run",
            ));
        }
        if let Some(host) = &self.host
            && !host.is_empty()
            && !DOCKER_HOST_SCHEMES
                .iter()
                .any(|scheme| host.starts_with(scheme))
        {
            problems.push(Problem::new(
                &at.key("host"),
                format!(
                    "`{host}` is not a Docker daemon address; write it like unix:///var/run/docker.sock or tcp://host:2376"
                ),
            ));
        }
        if let Some(cwd) = &self.cwd
            && !std::path::Path::new(cwd).is_absolute()
        {
            problems.push(Problem::new(
                &at.key("cwd"),
                format!(
                    "`{cwd}` is not an absolute path; a relative one would depend on where the daemon runs (write ${{HOME}}/... for your home)"
                ),
            ));
        }
        for (index, credential) in self.credentials.iter().enumerate() {
            if self.credentials[..index].contains(credential) {
                problems.push(Problem::new(
                    &at.key("credentials").index(index),
                    format!("`{}` is listed twice", credential_name(*credential)),
                ));
            }
        }
        if !self.credentials.is_empty() && self.token.is_some() {
            problems.push(Problem::new(
                &at.key("token"),
                "cannot be combined with credentials: the container would get two logins; keep one",
            ));
        }
        if let Some(token) = &self.token
            && let Err(err) = parse_token_reference(token)
        {
            problems.push(Problem::new(&at.key("token"), err.to_string()));
        }
        for key in self.env.keys() {
            if let Some(message) = env_key_problem(key, self.lifecycle) {
                problems.push(Problem::new(&at.key("env").key(key), message));
            }
        }
        if let Some(user) = &self.user
            && !is_user_spec(user)
        {
            problems.push(Problem::new(
                &at.key("user"),
                format!(
                    "`{user}` is not a user; write uid or uid:gid (like 1000:1000), or names the image knows"
                ),
            ));
        }
        match &self.api_key {
            Some(key) if key.is_empty() => problems.push(Problem::new(
                &at.key("api_key"),
                "is empty; remove it or set a value",
            )),
            None if self.expose => problems.push(Problem::new(
                &at.key("expose"),
                "exposing the worker on all interfaces requires docker.api_key, so that only mecha can send it tasks",
            )),
            _ => {}
        }
    }
}

/// `user` or `user:group`, each a number or a name of letters, digits, `_`, `.` and `-`
/// (not starting with `-` or `.`), as Docker takes them.
fn is_user_spec(spec: &str) -> bool {
    let part = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    match spec.split_once(':') {
        Some((user, group)) => part(user) && part(group),
        None => part(spec),
    }
}

fn credential_name(credential: Credential) -> &'static str {
    match credential {
        Credential::Claude => "claude",
        Credential::Codex => "codex",
    }
}

/// Why `docker.env` may not set `key`, if it may not.
fn env_key_problem(key: &str, lifecycle: Lifecycle) -> Option<String> {
    if key.is_empty() || key.contains(['=', '\0']) {
        return Some("is not a valid variable name".to_owned());
    }
    if let Some(reserved) = RESERVED_ENV_KEYS
        .iter()
        .find(|reserved| reserved.eq_ignore_ascii_case(key))
    {
        return Some(format!(
            "{reserved} is set by mecha and cannot be overridden"
        ));
    }
    let prefix = DISPOSABLE_RESERVED_PREFIX;
    if lifecycle == Lifecycle::Disposable
        && key.len() >= prefix.len()
        && key.is_char_boundary(prefix.len())
        && key[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        return Some(format!(
            "{prefix}* variables are set by mecha in disposable containers and cannot be overridden"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(yaml: &str) -> DockerConfig {
        serde_yaml::from_str(yaml).expect(yaml)
    }

    fn problems(yaml: &str) -> Vec<String> {
        let mut problems = Vec::new();
        docker(yaml).check(&FieldPath::root().key("docker"), &mut problems);
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn memory_units_and_overflow() {
        assert_eq!(
            MemoryLimit::parse("512m").map(MemoryLimit::bytes),
            Ok(512 * MIB)
        );
        assert_eq!(
            MemoryLimit::parse("512M").map(MemoryLimit::bytes),
            Ok(512 * MIB)
        );
        assert_eq!(
            MemoryLimit::parse("2G").map(MemoryLimit::bytes),
            Ok(2 * GIB)
        );
        assert_eq!(
            MemoryLimit::parse("2g").map(MemoryLimit::bytes),
            Ok(2 * GIB)
        );
        for (text, expected) in [
            ("512", "needs a unit"),
            ("512k", "needs a unit"),
            ("512mb", "needs a unit"),
            ("", "needs a unit"),
            ("m", "is not a size"),
            ("-1g", "is not a size"),
            ("1.5g", "is not a size"),
            ("0m", "greater than zero"),
            ("17179869184g", "too large"),
            ("99999999999999999999999g", "too large"),
        ] {
            let err = MemoryLimit::parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
        // Multi-byte input never splits a character.
        assert!(MemoryLimit::parse("5é").is_err());
    }

    #[test]
    fn memory_writes_back_in_the_largest_exact_unit() {
        for (text, written) in [
            ("512m", "512m"),
            ("2048m", "2g"),
            ("2G", "2g"),
            ("1536m", "1536m"),
        ] {
            let limit = MemoryLimit::parse(text).expect(text);
            assert_eq!(limit.to_string(), written);
            assert_eq!(MemoryLimit::parse(written), Ok(limit));
        }
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            docker("image: x\n").restart,
            RestartPolicy::OnFailure {
                limit: DEFAULT_RESTART_LIMIT
            }
        );
        for (yaml, expected) in [
            ("restart: no", RestartPolicy::No),
            ("restart: 'no'", RestartPolicy::No),
            (
                "restart: on-failure",
                RestartPolicy::OnFailure {
                    limit: DEFAULT_RESTART_LIMIT,
                },
            ),
            (
                "restart: on-failure:2",
                RestartPolicy::OnFailure { limit: 2 },
            ),
        ] {
            let config = docker(&format!("image: x\n{yaml}\n"));
            assert_eq!(config.restart, expected, "{yaml}");
            let written = serde_yaml::to_string(&config).expect("writes");
            assert_eq!(
                serde_yaml::from_str::<DockerConfig>(&written).expect("reads back"),
                config
            );
        }
        for (yaml, expected) in [
            ("restart: always", "not a restart policy"),
            ("restart: on-failure:0", "allows no restart"),
            ("restart: on-failure:x", "not a restart policy"),
        ] {
            let err = serde_yaml::from_str::<DockerConfig>(&format!("image: x\n{yaml}\n"))
                .expect_err(yaml)
                .to_string();
            assert!(err.contains(expected), "{yaml}: {err}");
        }
    }

    #[test]
    fn env_and_labels_take_scalars_as_text() {
        let config =
            docker("image: x\nenv:\n  PORT: 8080\n  DEBUG: true\n  NAME: n\nlabels:\n  tier: 1\n");
        assert_eq!(config.env["PORT"], "8080");
        assert_eq!(config.env["DEBUG"], "true");
        assert_eq!(config.labels["tier"], "1");
    }

    #[test]
    fn defaults() {
        let config = docker("image: x\n");
        assert_eq!(config.lifecycle, Lifecycle::Persistent);
        assert_eq!(config.resources, Resources::default());
        assert!(!config.expose);
        assert!(problems("image: x\n").is_empty());
    }

    #[test]
    fn reserved_env_keys_are_refused_whatever_their_case() {
        let found = problems("image: x\nenv:\n  home: /x\n  Worker_Api_Key: k\n  WORKER_NAME: n\n");
        assert_eq!(
            found,
            [
                "docker.env.Worker_Api_Key: WORKER_API_KEY is set by mecha and cannot be overridden",
                "docker.env.home: HOME is set by mecha and cannot be overridden",
            ]
        );
        let found = problems("image: x\nlifecycle: disposable\nenv:\n  worker_name: n\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("WORKER_* variables"), "{found:?}");
    }

    #[test]
    fn credentials_duplicates_and_token_are_refused() {
        let found =
            problems("image: x\ncredentials: [claude, codex, claude]\ntoken: anthropic.main\n");
        assert_eq!(
            found,
            [
                "docker.credentials[2]: `claude` is listed twice",
                "docker.token: cannot be combined with credentials: the container would get two logins; keep one",
            ]
        );
        let err = serde_yaml::from_str::<DockerConfig>("image: x\ncredentials: [gemini]\n")
            .expect_err("unknown credential")
            .to_string();
        assert!(err.contains("unknown variant `gemini`"), "{err}");
    }

    #[test]
    fn expose_needs_an_api_key() {
        let found = problems("image: x\nexpose: true\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("docker.expose: exposing"), "{found:?}");
        assert!(problems("image: x\nexpose: true\napi_key: k\n").is_empty());
        assert_eq!(
            problems("image: x\napi_key: ''\n"),
            ["docker.api_key: is empty; remove it or set a value"]
        );
    }

    #[test]
    fn user_is_a_uid_gid_or_names() {
        for fine in [
            "0",
            "0:0",
            "1000:1000",
            "worker",
            "worker:staff",
            "_svc.1-a",
        ] {
            assert!(
                problems(&format!("image: x\nuser: '{fine}'\n")).is_empty(),
                "{fine}"
            );
        }
        for bad in [
            "",
            ":",
            "1000:",
            ":1000",
            "a:b:c",
            "-1",
            "root group",
            "../x",
        ] {
            let found = problems(&format!("image: x\nuser: '{bad}'\n"));
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert!(found[0].starts_with("docker.user: "), "{found:?}");
        }
        assert_eq!(docker("image: x\n").user, None);
        assert_eq!(
            docker("image: x\nuser: 1000\n").user.as_deref(),
            Some("1000")
        );
    }

    #[test]
    fn token_reference_host_cwd_and_image_are_checked() {
        let found = problems("image: ' '\ntoken: nodot\nhost: docker.sock\ncwd: code/x\n");
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].starts_with("docker.image: is empty"));
        assert!(found[1].starts_with("docker.host: `docker.sock` is not a Docker daemon address"));
        assert!(found[2].starts_with("docker.cwd: `code/x` is not an absolute path"));
        assert!(found[3].contains("must be written backend.name"));
    }
}
