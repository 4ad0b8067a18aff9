//! Registry credentials and the two ways registries ask for them.
//!
//! A registry answers 401 with `WWW-Authenticate: Basic realm=...` (distribution with htpasswd)
//! or `Bearer realm=...,service=...,scope=...` (Docker Hub, GHCR, distribution with a token
//! server): for Basic the credentials go on every request; for Bearer they are traded at the
//! realm for a token, which then goes on every request. Anonymous pulls from public
//! repositories take the Bearer path with no credentials.
//!
//! Credentials come from `--username` with `--password-stdin` (never an argument: arguments are
//! visible to every user in `ps`) or from Docker's config file, read only when a registry asks.
//! They are never printed or logged: [`Credentials`]' `Debug` hides them, and errors name the
//! host and the file, never the values.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use super::Error;

/// Where credentials for a registry come from.
#[derive(Clone, Default)]
pub enum Credentials {
    /// `auths.<host>` in `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, when present.
    #[default]
    DockerConfig,
    /// Given on the command line (`--username`, `--password-stdin`).
    Login { username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::DockerConfig => f.write_str("DockerConfig"),
            Credentials::Login { .. } => f.write_str("Login { .. }"),
        }
    }
}

/// A username and password for one registry.
#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Login { .. }")
    }
}

impl Login {
    /// The `Authorization` header value for HTTP Basic.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

impl Credentials {
    /// The login for `host`, if there is one. A Docker config that keeps `host`'s credentials
    /// in a credential helper is an error that says so, since mecha does not run helpers.
    pub fn resolve(&self, host: &str) -> Result<Option<Login>, Error> {
        match self {
            Credentials::Login { username, password } => Ok(Some(Login {
                username: username.clone(),
                password: password.clone(),
            })),
            Credentials::DockerConfig => match docker_config_path() {
                Some(path) => from_docker_config(&path, host),
                None => Ok(None),
            },
        }
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The login for `host` in the Docker config file at `path`; none when the file or the entry
/// does not exist.
pub(super) fn from_docker_config(
    path: &std::path::Path,
    host: &str,
) -> Result<Option<Login>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(Error::DockerConfig {
                path: path.to_owned(),
                reason: err.to_string(),
            });
        }
    };
    let damaged = |reason: String| Error::DockerConfig {
        path: path.to_owned(),
        reason,
    };
    let config: DockerConfig = serde_json::from_slice(&bytes)
        .map_err(|err| damaged(format!("it is not a Docker config file ({err})")))?;
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| same_registry(key, host))
        .map(|(_, entry)| entry);
    if let Some(entry) = entry {
        if let Some(auth) = &entry.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    damaged(format!("auths.{host}.auth is not base64 of user:password"))
                })?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| {
                damaged(format!("auths.{host}.auth is not base64 of user:password"))
            })?;
            return Ok(Some(Login {
                username: username.to_owned(),
                password: password.to_owned(),
            }));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Login {
                username: username.clone(),
                password: password.clone(),
            }));
        }
        if entry.identitytoken.is_some() {
            return Err(Error::Unsupported {
                host: host.to_owned(),
                what: format!("an identity token in {}", path.display()),
            });
        }
    }
    let helper = config
        .cred_helpers
        .iter()
        .find(|(key, _)| same_registry(key, host))
        .map(|(_, helper)| helper)
        .or(config.creds_store.as_ref());
    if let Some(helper) = helper {
        return Err(Error::Unsupported {
            host: host.to_owned(),
            what: format!(
                "the credential helper docker-credential-{helper} named in {}",
                path.display()
            ),
        });
    }
    Ok(None)
}

/// Whether a Docker config key (`host`, `https://host`, `https://host/v1/`) names `host`.
/// Docker Hub is keyed by its old index address.
fn same_registry(key: &str, host: &str) -> bool {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.split('/').next().unwrap_or(key);
    let hub = |name: &str| {
        matches!(
            name,
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        )
    };
    key.eq_ignore_ascii_case(host) || (hub(key) && hub(host))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="x"` or `Bearer realm="x",service="y",scope="z"`; `None` for schemes
/// mecha does not speak. Quoted values may hold commas (`scope="repository:a:pull,push"`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

fn parse_params(input: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return params;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_with_commas_inside_quotes() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/p:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:team/p:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
    }

    #[test]
    fn basic_header_is_base64_of_user_colon_password() {
        let login = Login {
            username: "aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(login.basic(), "Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn docker_config_entries_are_found_by_host_and_helpers_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths": {
                "https://127.0.0.1:5000/v1/": {"auth": "dXNlcjpwYTpzcw=="},
                "https://index.docker.io/v1/": {"username": "hub", "password": "secret"}
               },
               "credHelpers": {"ghcr.io": "desktop"}}"#,
        )
        .expect("written");
        let login = from_docker_config(&path, "127.0.0.1:5000")
            .expect("read")
            .expect("found");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("user", "pa:ss")
        );
        let hub = from_docker_config(&path, "registry-1.docker.io")
            .expect("read")
            .expect("found");
        assert_eq!(hub.username, "hub");
        assert!(
            from_docker_config(&path, "quay.io")
                .expect("read")
                .is_none()
        );
        let err = from_docker_config(&path, "ghcr.io").expect_err("helper");
        assert!(
            err.to_string().contains("docker-credential-desktop")
                && err.to_string().contains("--password-stdin"),
            "{err}"
        );
        assert!(
            from_docker_config(&dir.path().join("missing.json"), "ghcr.io")
                .expect("missing is fine")
                .is_none()
        );
        std::fs::write(&path, r#"{"auths": {"ghcr.io": {"auth": "%%%"}}}"#).expect("written");
        let err = from_docker_config(&path, "ghcr.io").expect_err("damaged");
        assert!(!err.to_string().contains("%%%"), "{err}");
    }

    #[test]
    fn debug_hides_the_password() {
        let credentials = Credentials::Login {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
