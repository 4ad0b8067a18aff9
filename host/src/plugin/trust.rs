//! The minisign keys the operator trusts to sign plugins, and the check of a plugin's signature
//! against them.
//!
//! A digest (`--sha256`) says "these are the bytes I meant"; a signature says "these bytes come
//! from someone I trust", which survives new versions without the operator pasting a new digest
//! each time. minisign is the format: one small Ed25519 key per publisher, a tool Debian
//! packages, and `minisign-verify`, a verifier without dependencies of its own.
//!
//! Keys live in `<mecha home>/trusted_keys/<KEY_ID>.pub`, one minisign public-key file each, as
//! `minisign -G` wrote it. The directory is the operator's (mode 0700) and each file is written
//! through a temporary file and a rename (mode 0600), so a key is either trusted or not, never
//! half-written. Key ids are shown the way minisign prints them (16 upper-case hex digits), so
//! the id in `mecha plugin trust ls` matches the one in the key file's comment.
//!
//! Only prehashed signatures (minisign's default since 0.8) are accepted: the legacy mode signs
//! the whole file with Ed25519 directly and minisign itself no longer makes it.
//!
//! ```no_run
//! # fn example(component: &[u8], minisig: &[u8]) -> Result<(), mecha::plugin::trust::TrustError> {
//! let keys = mecha::plugin::trust::TrustedKeys::in_home(std::path::Path::new("/root/.mecha"));
//! let signer = keys.verify("plugin.wasm", component, minisig)?;
//! println!("signed by {}", signer.id);
//! # Ok(())
//! # }
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use minisign_verify::{PublicKey, Signature};

/// The directory under the mecha home that holds the trusted keys.
pub const DIR: &str = "trusted_keys";

/// 4 KiB: a minisign public key is two short lines (about 100 bytes) and a signature four (about
/// 300 with a long trusted comment); anything much larger is not one.
const MAX_KEY_OR_SIGNATURE_BYTES: u64 = 4096;

/// Why a key could not be trusted, listed or removed, or a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{what} is not a minisign public key ({reason}); give the .pub file `minisign -G` wrote, \
         two lines starting with `untrusted comment:`"
    )]
    BadKey { what: String, reason: String },
    #[error(
        "{path} is larger than {MAX_KEY_OR_SIGNATURE_BYTES} bytes, so it is not a minisign {kind}"
    )]
    TooLarge { path: PathBuf, kind: &'static str },
    #[error(
        "the signature of {plugin} is not a minisign signature ({reason}); give the .minisig file \
         `minisign -S` wrote"
    )]
    BadSignature { plugin: String, reason: String },
    #[error(
        "{plugin} is signed by key {key_id}, which is not trusted; if you trust its publisher, \
         add their public key with `mecha plugin trust add KEY.pub` (`mecha plugin trust ls` \
         lists the trusted keys)"
    )]
    Untrusted { plugin: String, key_id: String },
    #[error(
        "the signature of {plugin} by trusted key {key_id} does not match its bytes: the plugin \
         or its signature was changed after signing; do not install it, and get both again from \
         their publisher"
    )]
    Mismatch { plugin: String, key_id: String },
    #[error("no trusted key {0}; `mecha plugin trust ls` lists the trusted keys")]
    NotTrusted(String),
    #[error("{given} is not a sha256 digest; give the 64 hex digits `sha256sum FILE` prints")]
    BadDigest { given: String },
    #[error(
        "{plugin} has sha256 {actual}, not the {expected} given with --sha256: it is not the file \
         you meant, or it was changed on the way; nothing was installed"
    )]
    DigestMismatch {
        plugin: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{plugin} is not signed, and plugins.require_signature in config.yml requires a signature \
         by a trusted key; give its minisign signature with --signature FILE (for a URL, \
         publish it as <url>.minisig)"
    )]
    Unsigned { plugin: String },
    #[error(
        "{plugin} comes from a URL with neither --sha256 nor a signature (no {plugin}.minisig \
         beside it), so nothing says these are the bytes you meant; pass --sha256 HEX (what \
         `sha256sum` prints for the file you checked), or --signature FILE by a trusted key"
    )]
    Unpinned { plugin: String },
}

/// What an install requires of a plugin's bytes before they are written.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// The digest the operator gave (`--sha256`), as [`parse_sha256`] returned it.
    pub sha256: Option<String>,
    /// `plugins.require_signature` in `config.yml`: nothing unsigned is installed.
    pub require_signature: bool,
    /// The bytes came over the network: a digest or a signature must pin them, since the
    /// server could serve anything.
    pub remote: bool,
}

/// `given` as a lower-case sha256 hex digest (`sha256:` in front is accepted, as OCI writes it).
pub fn parse_sha256(given: &str) -> Result<String, TrustError> {
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    if hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(TrustError::BadDigest {
            given: given.to_owned(),
        })
    }
}

/// A key the operator trusts.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The key id as minisign prints it: 16 upper-case hex digits.
    pub id: String,
    /// The key file's untrusted comment (minisign writes `minisign public key <ID>`).
    pub comment: String,
    key: PublicKey,
}

/// The trusted keys in one directory.
pub struct TrustedKeys {
    dir: PathBuf,
}

impl TrustedKeys {
    /// The trusted keys of the mecha home at `home`.
    pub fn in_home(home: &Path) -> TrustedKeys {
        TrustedKeys {
            dir: home.join(DIR),
        }
    }

    /// Trusts the minisign public key in the file at `path`; trusting a key again replaces it.
    pub fn add(&self, path: &Path) -> Result<TrustedKey, TrustError> {
        let text = read_small(path, "public key")?;
        let key = parse_key(&text, &path.display().to_string())?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| TrustError::Io { path, source }
        };
        create_private_dir(&self.dir).map_err(io(&self.dir))?;
        let target = self.dir.join(format!("{}.pub", key.id));
        let temp = self.dir.join(format!(".{}.pub.tmp", key.id));
        write_private(&temp, text.as_bytes()).map_err(io(&temp))?;
        std::fs::rename(&temp, &target).map_err(io(&target))?;
        Ok(key)
    }

    /// The trusted keys, by id; none when nothing was ever trusted.
    pub fn list(&self) -> Result<Vec<TrustedKey>, TrustError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(TrustError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| TrustError::Io {
                path: self.dir.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".pub") {
                continue;
            }
            let text = read_small(&path, "public key")?;
            keys.push(parse_key(&text, &path.display().to_string())?);
        }
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(keys)
    }

    /// Stops trusting the key `id` (as `trust ls` shows it; case does not matter).
    pub fn remove(&self, id: &str) -> Result<TrustedKey, TrustError> {
        let key = self
            .list()?
            .into_iter()
            .find(|key| key.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| TrustError::NotTrusted(id.to_owned()))?;
        let path = self.dir.join(format!("{}.pub", key.id));
        std::fs::remove_file(&path).map_err(|source| TrustError::Io { path, source })?;
        Ok(key)
    }

    /// Decides whether `bytes` (of `plugin`, with the `signature` found or given) may be
    /// installed under `requirements`: the digest first, then the signature. Returns the key
    /// that signed them, if any.
    pub fn admit(
        &self,
        plugin: &str,
        bytes: &[u8],
        signature: Option<&[u8]>,
        requirements: &Requirements,
    ) -> Result<Option<TrustedKey>, TrustError> {
        if let Some(expected) = &requirements.sha256 {
            let actual = crate::digest::sha256_hex(bytes);
            if &actual != expected {
                return Err(TrustError::DigestMismatch {
                    plugin: plugin.to_owned(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        match signature {
            Some(signature) => self.verify(plugin, bytes, signature).map(Some),
            None if requirements.require_signature => Err(TrustError::Unsigned {
                plugin: plugin.to_owned(),
            }),
            None if requirements.remote && requirements.sha256.is_none() => {
                Err(TrustError::Unpinned {
                    plugin: plugin.to_owned(),
                })
            }
            None => Ok(None),
        }
    }

    /// Checks that `signature` (a `.minisig` file's bytes) signs `bytes` with a trusted key, and
    /// returns that key. `plugin` names what is checked, for the errors.
    pub fn verify(
        &self,
        plugin: &str,
        bytes: &[u8],
        signature: &[u8],
    ) -> Result<TrustedKey, TrustError> {
        let bad = |reason: &str| TrustError::BadSignature {
            plugin: plugin.to_owned(),
            reason: reason.to_owned(),
        };
        if signature.len() as u64 > MAX_KEY_OR_SIGNATURE_BYTES {
            return Err(bad("it is larger than 4 KiB"));
        }
        let text = std::str::from_utf8(signature).map_err(|_| bad("it is not text"))?;
        let parsed = Signature::decode(text).map_err(|err| bad(&err.to_string()))?;
        let key_id = signature_key_id(text).ok_or_else(|| bad("its key id cannot be read"))?;
        let key = self
            .list()?
            .into_iter()
            .find(|key| key.id == key_id)
            .ok_or_else(|| TrustError::Untrusted {
                plugin: plugin.to_owned(),
                key_id: key_id.clone(),
            })?;
        key.key
            .verify(bytes, &parsed, false)
            .map_err(|err| match err {
                minisign_verify::Error::UnexpectedAlgorithm => bad(
                    "it is a legacy (not prehashed) signature; sign again with a current \
                     minisign, whose default is prehashed",
                ),
                _ => TrustError::Mismatch {
                    plugin: plugin.to_owned(),
                    key_id: key_id.clone(),
                },
            })?;
        Ok(key)
    }
}

/// Reads a key or signature file, refusing anything but a small regular file.
fn read_small(path: &Path, kind: &'static str) -> Result<String, TrustError> {
    let io = |source| TrustError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::other(format!(
            "not a regular file; give the minisign {kind} file"
        ))));
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_OR_SIGNATURE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_KEY_OR_SIGNATURE_BYTES {
        return Err(TrustError::TooLarge {
            path: path.to_owned(),
            kind,
        });
    }
    String::from_utf8(bytes).map_err(|_| {
        io(std::io::Error::other(format!(
            "not text, so not a minisign {kind} file"
        )))
    })
}

/// Reads a signature file given with `--signature`.
pub fn read_signature(path: &Path) -> Result<Vec<u8>, TrustError> {
    read_small(path, "signature").map(String::into_bytes)
}

fn parse_key(text: &str, what: &str) -> Result<TrustedKey, TrustError> {
    let bad = |reason: &str| TrustError::BadKey {
        what: what.to_owned(),
        reason: reason.to_owned(),
    };
    let key = PublicKey::decode(text).map_err(|err| bad(&err.to_string()))?;
    let encoded = text.lines().nth(1).ok_or_else(|| bad("it has one line"))?;
    let id = key_id(encoded).ok_or_else(|| bad("its key id cannot be read"))?;
    let comment = key
        .untrusted_comment()
        .map(|comment| {
            comment
                .trim_start_matches("untrusted comment:")
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    Ok(TrustedKey { id, comment, key })
}

/// The key id of a signature file: bytes 2..10 of its second line.
fn signature_key_id(text: &str) -> Option<String> {
    key_id(text.lines().nth(1)?)
}

/// A key id from a base64 line whose bytes 2..10 hold it (both public keys and signatures lay
/// it out so), as minisign prints it: the little-endian number in upper-case hex.
fn key_id(encoded: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let id: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
    Some(format!("{:016X}", u64::from_le_bytes(id)))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key and signature made by `minisign -G -W` and `minisign -S` over `b"plugin bytes\n"`.
    fn minisign(dir: &Path) -> Option<(PathBuf, Vec<u8>)> {
        let run = |args: &[&str]| {
            std::process::Command::new("minisign")
                .args(args)
                .current_dir(dir)
                .output()
        };
        run(&["-G", "-W", "-p", "key.pub", "-s", "key.sec"])
            .ok()
            .filter(|output| output.status.success())?;
        std::fs::write(dir.join("file"), b"plugin bytes\n").ok()?;
        run(&["-S", "-s", "key.sec", "-m", "file"])
            .ok()
            .filter(|output| output.status.success())?;
        let signature = std::fs::read(dir.join("file.minisig")).ok()?;
        Some((dir.join("key.pub"), signature))
    }

    #[test]
    fn a_trusted_key_verifies_and_only_its_own_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (public, signature) = minisign(dir.path()).expect("the minisign tool is installed");
        let keys = TrustedKeys::in_home(&dir.path().join("home"));
        let error = keys
            .verify("file", b"plugin bytes\n", &signature)
            .unwrap_err();
        assert!(matches!(error, TrustError::Untrusted { .. }), "{error}");

        let key = keys.add(&public).unwrap();
        let text = std::fs::read_to_string(&public).unwrap();
        // minisign writes the id without its leading zeros.
        assert!(
            text.contains(key.id.trim_start_matches('0')),
            "minisign names the same id: {text}"
        );
        assert_eq!(
            keys.verify("file", b"plugin bytes\n", &signature)
                .unwrap()
                .id,
            key.id
        );
        let error = keys
            .verify("file", b"plugin bytes!\n", &signature)
            .unwrap_err();
        assert!(matches!(error, TrustError::Mismatch { .. }), "{error}");

        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("home").join(DIR)), 0o700);
        let stored = dir
            .path()
            .join("home")
            .join(DIR)
            .join(format!("{}.pub", key.id));
        assert_eq!(mode(&stored), 0o600);

        assert_eq!(keys.list().unwrap().len(), 1);
        keys.remove(&key.id.to_lowercase()).unwrap();
        assert!(keys.list().unwrap().is_empty());
        let error = keys.remove(&key.id).unwrap_err();
        assert!(matches!(error, TrustError::NotTrusted(_)), "{error}");
    }

    #[test]
    fn admission_checks_the_digest_then_asks_for_a_pin_or_a_signature() {
        let dir = tempfile::tempdir().unwrap();
        let keys = TrustedKeys::in_home(dir.path());
        let bytes = b"plugin bytes\n";
        let digest = crate::digest::sha256_hex(bytes);
        let pinned = Requirements {
            sha256: Some(parse_sha256(&digest.to_uppercase()).unwrap()),
            require_signature: false,
            remote: true,
        };
        assert!(keys.admit("u", bytes, None, &pinned).unwrap().is_none());
        let error = keys.admit("u", b"other", None, &pinned).unwrap_err();
        assert!(
            matches!(error, TrustError::DigestMismatch { .. }),
            "{error}"
        );

        let unpinned = Requirements {
            remote: true,
            ..Requirements::default()
        };
        let error = keys.admit("u", bytes, None, &unpinned).unwrap_err();
        assert!(matches!(error, TrustError::Unpinned { .. }), "{error}");
        assert!(
            keys.admit("f", bytes, None, &Requirements::default())
                .is_ok()
        );

        let required = Requirements {
            require_signature: true,
            ..pinned
        };
        let error = keys.admit("u", bytes, None, &required).unwrap_err();
        assert!(matches!(error, TrustError::Unsigned { .. }), "{error}");

        assert!(parse_sha256(&format!("sha256:{digest}")).is_ok());
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"g".repeat(64)).is_err());
    }

    #[test]
    fn what_is_not_a_key_or_a_signature_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not.pub");
        std::fs::write(&file, "hello\nworld\n").unwrap();
        let keys = TrustedKeys::in_home(dir.path());
        let error = keys.add(&file).unwrap_err();
        assert!(
            error.to_string().contains("not a minisign public key"),
            "{error}"
        );
        let error = keys.verify("x.wasm", b"x", b"garbage").unwrap_err();
        assert!(
            error.to_string().contains("not a minisign signature"),
            "{error}"
        );
    }
}
