//! `secrets.yml`: webhook secrets and tokens, readable by the owner only.
//!
//! ```yaml
//! github:
//!   webhook_secret: "..."     # checked by the github source through the host
//! tokens:
//!   anthropic:
//!     main: "sk-ant-..."      # referenced elsewhere as anthropic.main
//! ```
//!
//! Every section but `tokens` belongs to the source instance of the same name; the source asks
//! the host to check a signature "with `webhook_secret`", and the host looks it up here. Values
//! are wrapped in [`Secret`], which never prints them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{Error, private_file, yaml_error};

/// A secret value. `Debug` shows only that it is hidden, so it cannot leak through logs or errors.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the few places that must use it (a MAC key, a header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A fresh key of [`Secret::RANDOM_BYTES`] random bytes, in hex so that it fits a header
    /// or a file as it is: what the daemon makes for its API and for each adapter.
    pub fn random() -> Result<Secret, getrandom::Error> {
        let mut bytes = [0u8; Secret::RANDOM_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Secret(
            bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
        ))
    }

    /// 32 random bytes (256 bits): as many as an HMAC-SHA256 key, beyond guessing however many
    /// requests are sent.
    pub const RANDOM_BYTES: usize = 32;
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// The contents of `secrets.yml`; empty when the file does not exist.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    /// Per source instance: secret name to value.
    sources: BTreeMap<String, BTreeMap<String, Secret>>,
    /// `tokens.<backend>.<name>`, referenced as `backend.name`.
    tokens: BTreeMap<String, BTreeMap<String, Secret>>,
}

/// The file as written: `tokens`, and a section per source instance.
///
/// Read by hand rather than with `#[serde(flatten)]`: flatten buffers the sections before
/// reading them, which costs every error its line, column and field, and makes serde quote the
/// value it did not expect (`invalid type: integer `9182…``), a secret written wrong. Read
/// directly, a source's secret written as a number is taken as its text, as a token's is, and
/// an error names the field and its position (see [`super::yaml`]).
#[derive(Default)]
struct RawSecrets {
    tokens: BTreeMap<String, BTreeMap<String, Secret>>,
    sources: BTreeMap<String, BTreeMap<String, Secret>>,
}

impl<'de> Deserialize<'de> for RawSecrets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawSecrets, D::Error> {
        deserializer.deserialize_map(RawSecretsVisitor)
    }
}

struct RawSecretsVisitor;

impl<'de> Visitor<'de> for RawSecretsVisitor {
    type Value = RawSecrets;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map of sections: `tokens`, and one per source instance")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawSecrets, A::Error> {
        let mut raw = RawSecrets::default();
        while let Some(section) = map.next_key::<String>()? {
            if section == "tokens" {
                raw.tokens = map.next_value()?;
            } else {
                let secrets = map.next_value()?;
                raw.sources.insert(section, secrets);
            }
        }
        Ok(raw)
    }
}

impl Secrets {
    /// Reads `path`, refusing a file that anyone but its owner may read (see
    /// [`super::private_file`]).
    pub fn load(path: &Path) -> Result<Secrets, Error> {
        match private_file::read(path)? {
            Some(text) => Secrets::parse(path, &text),
            None => Ok(Secrets::default()),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Secrets, Error> {
        if text.trim().is_empty() {
            return Ok(Secrets::default());
        }
        let raw: RawSecrets = serde_yaml::from_str(text).map_err(|err| yaml_error(path, err))?;
        Ok(Secrets {
            sources: raw.sources,
            tokens: raw.tokens,
        })
    }

    /// The secrets of the source instance `source`.
    pub fn for_source(&self, source: &str) -> BTreeMap<String, Secret> {
        self.sources.get(source).cloned().unwrap_or_default()
    }

    /// Adds or replaces one source secret (used by tests and `mecha dev`).
    pub fn set_source_secret(&mut self, source: &str, name: &str, value: Secret) {
        self.sources
            .entry(source.to_owned())
            .or_default()
            .insert(name.to_owned(), value);
    }

    /// Adds or replaces one token (`tokens.<backend>.<name>`), for unit tests.
    #[cfg(test)]
    pub(crate) fn set_token(&mut self, backend: &str, name: &str, value: Secret) {
        self.tokens
            .entry(backend.to_owned())
            .or_default()
            .insert(name.to_owned(), value);
    }

    /// Every secret value, for the redactor that keeps them out of logs and replies.
    pub fn values(&self) -> impl Iterator<Item = &Secret> {
        self.sources
            .values()
            .chain(self.tokens.values())
            .flat_map(|group| group.values())
    }

    /// How many token groups (`tokens.<backend>`) are configured.
    pub fn token_groups(&self) -> usize {
        self.tokens.len()
    }

    /// The token a `backend.name` reference points at (`tokens.<backend>.<name>`). The errors
    /// name the reference and the names that do exist, never a value.
    pub fn resolve_token(&self, reference: &str) -> Result<&Secret, Error> {
        let (backend, name) = parse_token_reference(reference)?;
        let invalid = |message: String| Error::TokenReference {
            reference: reference.to_owned(),
            message,
        };
        if self.tokens.is_empty() {
            return Err(invalid(
                "secrets.yml has no tokens; add it under tokens.<backend>.<name>".to_owned(),
            ));
        }
        let Some(group) = self.tokens.get(backend) else {
            return Err(invalid(format!(
                "no token backend `{backend}` in secrets.yml (backends: {})",
                names(self.tokens.keys())
            )));
        };
        group.get(name).ok_or_else(|| {
            invalid(format!(
                "backend `{backend}` has no token `{name}` (tokens: {})",
                names(group.keys())
            ))
        })
    }
}

/// Splits a token reference `backend.name` at its first dot; both parts must be non-empty, so
/// `anthropic.main` is `tokens.anthropic.main` and `a.b.c` is `tokens.a."b.c"`.
pub fn parse_token_reference(reference: &str) -> Result<(&str, &str), Error> {
    match reference.split_once('.') {
        Some((backend, name)) if !backend.is_empty() && !name.is_empty() => Ok((backend, name)),
        _ => Err(Error::TokenReference {
            reference: reference.to_owned(),
            message: "must be written backend.name, like anthropic.main".to_owned(),
        }),
    }
}

/// The environment variable a worker container reads `token` from, told by the token's prefix
/// (checked in this order, as the Go mecha does):
///
/// | prefix | variable |
/// |---|---|
/// | `sk-ant-oat` | `CLAUDE_CODE_OAUTH_TOKEN` |
/// | other `sk-ant-` | `ANTHROPIC_API_KEY` |
/// | other `sk-` | `CODEX_API_KEY` |
///
/// Any other token is refused, with an error that does not contain it.
pub fn token_env_var(token: &Secret) -> Result<&'static str, Error> {
    let value = token.expose();
    if value.starts_with("sk-ant-oat") {
        Ok("CLAUDE_CODE_OAUTH_TOKEN")
    } else if value.starts_with("sk-ant-") {
        Ok("ANTHROPIC_API_KEY")
    } else if value.starts_with("sk-") {
        Ok("CODEX_API_KEY")
    } else {
        Err(Error::TokenPrefix)
    }
}

/// `a, b, c` for an error message, or `none` when there are none.
fn names<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = keys.map(String::as_str).collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join("secrets.yml");
        std::fs::write(&path, text).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        path
    }

    #[test]
    fn reads_source_sections_and_tokens() {
        let temp = tempfile::tempdir().expect("temp");
        let path = write(
            temp.path(),
            "github:\n  webhook_secret: s3cret\ntokens:\n  anthropic:\n    main: sk-ant-x\n",
            0o600,
        );
        let secrets = Secrets::load(&path).expect("loads");
        assert_eq!(
            secrets.for_source("github")["webhook_secret"].expose(),
            "s3cret"
        );
        assert!(secrets.for_source("gitlab").is_empty());
        assert_eq!(secrets.token_groups(), 1);
        assert_eq!(secrets.values().count(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_files_others_can_read_and_says_chmod_600() {
        let temp = tempfile::tempdir().expect("temp");
        let path = write(temp.path(), "github:\n  webhook_secret: s3cret\n", 0o644);
        let err = Secrets::load(&path).expect_err("refused").to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn a_secret_written_as_a_number_is_its_text() {
        let secrets = Secrets::parse(
            Path::new("secrets.yml"),
            "github:\n  webhook_secret: 918273645012345\ntokens:\n  a:\n    b: 0x1F\n",
        )
        .expect("numbers are text");
        assert_eq!(
            secrets.for_source("github")["webhook_secret"].expose(),
            "918273645012345"
        );
        assert_eq!(
            secrets.resolve_token("a.b").expect("token").expose(),
            "0x1F"
        );
    }

    #[test]
    fn errors_name_the_field_and_line_never_the_value() {
        for (text, field, line) in [
            ("github: 918273645012345\n", "github", 1),
            (
                "gitlab:\n  token: x\ngithub: sEcReT-in-the-wrong-place\n",
                "github",
                3,
            ),
            (
                "tokens:\n  vendor: sEcReT-token-value\n",
                "tokens.vendor",
                2,
            ),
            (
                "github:\n  webhook_secret: [sEcReT, parts]\n",
                "github.webhook_secret",
                2,
            ),
        ] {
            let err = Secrets::parse(Path::new("secrets.yml"), text)
                .expect_err(text)
                .to_string();
            assert!(err.contains(&format!("line {line} ")), "{text}: {err}");
            assert!(
                err.contains(&format!("{field}: invalid type")),
                "{text}: {err}"
            );
            assert!(
                !err.contains("918273645012345") && !err.contains("sEcReT"),
                "{err}"
            );
        }
    }

    #[test]
    fn missing_file_means_no_secrets_and_bad_yaml_names_the_line() {
        let temp = tempfile::tempdir().expect("temp");
        let missing = Secrets::load(&temp.path().join("none.yml")).expect("empty");
        assert_eq!(missing.values().count(), 0);
        let path = write(temp.path(), "github:\n  webhook_secret: [unclosed\n", 0o600);
        let err = Secrets::load(&path).expect_err("bad yaml").to_string();
        assert!(err.contains("line"), "{err}");
    }

    fn with_tokens() -> Secrets {
        Secrets::parse(
            Path::new("secrets.yml"),
            "tokens:\n  anthropic:\n    main: sk-ant-canary\n    dotted.name: sk-other\n",
        )
        .expect("valid")
    }

    #[test]
    fn resolves_token_references() {
        let secrets = with_tokens();
        assert_eq!(
            secrets
                .resolve_token("anthropic.main")
                .expect("known")
                .expose(),
            "sk-ant-canary"
        );
        // Split at the first dot: the name may hold dots.
        assert_eq!(
            secrets
                .resolve_token("anthropic.dotted.name")
                .expect("known")
                .expose(),
            "sk-other"
        );
    }

    #[test]
    fn token_reference_errors_name_the_reference_never_a_value() {
        let secrets = with_tokens();
        for (reference, expected) in [
            ("anthropic", "must be written backend.name"),
            (".main", "must be written backend.name"),
            ("anthropic.", "must be written backend.name"),
            (
                "openai.main",
                "no token backend `openai` in secrets.yml (backends: anthropic)",
            ),
            (
                "anthropic.spare",
                "backend `anthropic` has no token `spare` (tokens: dotted.name, main)",
            ),
        ] {
            let err = secrets
                .resolve_token(reference)
                .expect_err(reference)
                .to_string();
            assert!(err.contains(expected), "{reference}: {err}");
            assert!(err.contains(reference), "{reference}: {err}");
            assert!(!err.contains("sk-"), "{reference}: {err}");
        }
        let err = Secrets::default()
            .resolve_token("anthropic.main")
            .expect_err("no tokens")
            .to_string();
        assert!(err.contains("has no tokens"), "{err}");
    }

    #[test]
    fn token_prefix_picks_the_variable_in_order() {
        for (token, variable) in [
            ("sk-ant-oat01-abc", "CLAUDE_CODE_OAUTH_TOKEN"),
            ("sk-ant-api03-abc", "ANTHROPIC_API_KEY"),
            ("sk-proj-abc", "CODEX_API_KEY"),
        ] {
            assert_eq!(token_env_var(&Secret::new(token)).expect(token), variable);
        }
        let err = token_env_var(&Secret::new("ghp_canary"))
            .expect_err("unknown prefix")
            .to_string();
        assert!(!err.contains("ghp_canary"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("canary-value");
        assert!(!format!("{secret:?}").contains("canary-value"));
    }
}
