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

    /// Creates the directory (mode 0700) and its subdirectories when missing.
    pub fn ensure(&self) -> Result<(), Error> {
        for dir in [self.root.clone(), self.plugins_dir(), self.cache_dir()] {
            create_private_dir(&dir)?;
        }
        Ok(())
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
}
