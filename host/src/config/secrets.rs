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
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::{Error, yaml_error};

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

#[derive(Deserialize)]
struct RawSecrets {
    #[serde(default)]
    tokens: BTreeMap<String, BTreeMap<String, Secret>>,
    #[serde(flatten)]
    sources: BTreeMap<String, BTreeMap<String, Secret>>,
}

impl Secrets {
    /// Reads `path`, refusing a file that anyone but its owner may read. The permissions are
    /// checked on the opened file, so the file cannot be swapped between check and read.
    pub fn load(path: &Path) -> Result<Secrets, Error> {
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Secrets::default());
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let metadata = file.metadata().map_err(|source| Error::Read {
                path: path.to_owned(),
                source,
            })?;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(Error::SecretsPermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|source| Error::Read {
                path: path.to_owned(),
                source,
            })?;
        Secrets::parse(path, &text)
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
    fn missing_file_means_no_secrets_and_bad_yaml_names_the_line() {
        let temp = tempfile::tempdir().expect("temp");
        let missing = Secrets::load(&temp.path().join("none.yml")).expect("empty");
        assert_eq!(missing.values().count(), 0);
        let path = write(temp.path(), "github:\n  webhook_secret: [unclosed\n", 0o600);
        let err = Secrets::load(&path).expect_err("bad yaml").to_string();
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("canary-value");
        assert!(!format!("{secret:?}").contains("canary-value"));
    }
}
