//! The mecha directory: `$MECHA_HOME`, or `~/.mecha`. It holds `config.yml`, `secrets.yml`, the
//! database, installed plugins and the compile cache, and is created private (mode 0700) because
//! it holds secrets.

use std::path::{Path, PathBuf};

use super::Error;

/// Paths inside the mecha directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The directory named by `MECHA_HOME`, else `~/.mecha`, else `./.mecha` when there is no home.
    pub fn from_env() -> Home {
        let root = match std::env::var_os("MECHA_HOME") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => match std::env::var_os("HOME") {
                Some(home) if !home.is_empty() => PathBuf::from(home).join(".mecha"),
                _ => PathBuf::from(".mecha"),
            },
        };
        Home { root }
    }

    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// Creates the directory (mode 0700) and its subdirectories when missing, and makes an
    /// existing directory that others may enter private (0700), saying so in the log: a mode
    /// chosen before mecha ran (or by an older mecha) must not leave the database, the plugins
    /// and the files beside `secrets.yml` open to other users.
    pub fn ensure(&self) -> Result<(), Error> {
        for dir in [self.root.clone(), self.plugins_dir(), self.cache_dir()] {
            create_private_dir(&dir)?;
        }
        make_private(&self.root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.yml")
    }

    pub fn secrets_file(&self) -> PathBuf {
        self.root.join("secrets.yml")
    }

    /// The API key generated at the first start when `config.yml` sets none (mode 0600).
    pub fn api_key_file(&self) -> PathBuf {
        self.root.join("api_key")
    }

    /// The database, unless `MECHA_DB_PATH` names another file.
    pub fn database(&self) -> PathBuf {
        match std::env::var_os("MECHA_DB_PATH") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => self.root.join("mecha.db"),
        }
    }

    /// Installed plugins and their lock file.
    pub fn plugins_dir(&self) -> PathBuf {
        self.root.join("plugins")
    }

    /// Precompiled plugins, keyed by content and engine.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// A short, stable id of this home: 16 hex digits of the SHA-256 of its resolved path. It
    /// labels the containers its daemon makes, so that daemons sharing a Docker engine never
    /// take each other's containers for left-overs.
    pub fn id(&self) -> String {
        let resolved = self
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone());
        let mut digest = crate::digest::sha256_hex(resolved.as_os_str().as_encoded_bytes());
        digest.truncate(16);
        digest
    }

    /// The id of the daemon serving this home among all daemons sharing a database: the host's
    /// name and the home's [`id`](Home::id). It holds the leases of the tasks the daemon sends;
    /// being stable across restarts, it lets a restarted daemon take back its own leases at
    /// once instead of waiting for them to run out.
    pub fn daemon_id(&self) -> String {
        daemon_id(&self.id())
    }
}

/// The daemon id of the home whose [`Home::id`] is `home_id`, on this machine.
pub fn daemon_id(home_id: &str) -> String {
    format!("{}/{home_id}", host_name())
}

/// This machine's host name, or `localhost` when it has none that is text.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length, which is passed with it.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let end = buffer.iter().position(|&byte| byte == 0).unwrap_or(0);
    match std::str::from_utf8(&buffer[..end]) {
        Ok(name) if status == 0 && !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}

/// Sets `dir` to mode 0700 if group or others have any permission on it.
fn make_private(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        /// Everything for the owner, nothing for anyone else.
        const OWNER_ONLY: u32 = 0o700;
        let metadata = std::fs::metadata(dir).map_err(|source| Error::Read {
            path: dir.to_owned(),
            source,
        })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(OWNER_ONLY)).map_err(
                |source| Error::TightenHome {
                    path: dir.to_owned(),
                    mode,
                    source,
                },
            )?;
            tracing::warn!(
                path = %dir.display(),
                was = %format!("{mode:o}"),
                "the mecha directory was open to other users; its mode is now 700"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| Error::CreateHome {
        path: dir.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_creates_private_directories() {
        let temp = tempfile::tempdir().expect("temp dir");
        let home = Home::at(temp.path().join("mecha"));
        home.ensure().expect("created");
        assert!(home.plugins_dir().is_dir());
        assert!(home.cache_dir().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.root())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[cfg(unix)]
    #[test]
    fn ensure_makes_an_existing_open_directory_private() {
        use std::os::unix::fs::PermissionsExt;
        let temp = tempfile::tempdir().expect("temp dir");
        let home = Home::at(temp.path().join("mecha"));
        std::fs::create_dir(home.root()).expect("created");
        std::fs::set_permissions(home.root(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        home.ensure().expect("tightened");
        let mode = std::fs::metadata(home.root())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
