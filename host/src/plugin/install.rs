//! Installed plugins: files under `<mecha home>/plugins/`, recorded in `lock.json` with their
//! sha256 so that a file changed behind the daemon's back is refused instead of run.
//!
//! Every write goes through a temporary file and a rename: a crash mid-install leaves either
//! the old state or the new one, never a half-written plugin or lock.
//!
//! What is installed is read as `component_file.rs` reads it (a regular file, within a size cap),
//! and may not take a bundled plugin's name (`bundled.rs` says why).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cache::sha256_hex;
use super::loader::{LoadedPlugin, Loader, Origin};
use super::world::World;
use super::{Error, bundled, component_file};

const LOCK_FILE: &str = "lock.json";

/// One installed plugin as recorded in the lock file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockEntry {
    pub name: String,
    /// The component's file name inside the plugins directory.
    pub file: String,
    pub sha256: String,
    pub world: World,
    pub version: String,
    pub wit_version: String,
    /// Where it was installed from: a file's absolute path or a URL (never credentials).
    /// Absent in entries written before sources were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The id of the trusted minisign key that signed it (`mecha plugin trust ls`); absent
    /// when it was installed unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

/// Where an installed plugin came from, recorded in its lock entry.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// A file's absolute path or a URL without credentials.
    pub source: String,
    /// The id of the trusted key whose signature was verified.
    pub signer: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LockFile {
    plugins: Vec<LockEntry>,
}

/// The installed plugins in `dir`.
pub struct Installed {
    dir: PathBuf,
}

impl Installed {
    pub fn new(dir: PathBuf) -> Installed {
        Installed { dir }
    }

    /// The entries of the lock file; none when nothing was ever installed.
    pub fn entries(&self) -> Result<Vec<LockEntry>, Error> {
        let path = self.dir.join(LOCK_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<LockFile>(&bytes)
                .map(|lock| lock.plugins)
                .map_err(|err| {
                    Error::Lock(format!(
                        "{} is damaged ({err}); remove it and install the plugins again",
                        path.display()
                    ))
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Reads an installed plugin's component, refusing it when it no longer matches the lock.
    pub fn read(&self, entry: &LockEntry) -> Result<(PathBuf, Vec<u8>), Error> {
        let path = self.dir.join(&entry.file);
        let bytes = component_file::read(&path)?;
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(Error::Lock(format!(
                "installed plugin {} ({}) was changed since it was installed (sha256 differs from \
                 lock.json); reinstall it with `mecha plugin install`",
                entry.name,
                path.display()
            )));
        }
        Ok((path, bytes))
    }

    /// Validates and installs the component at `file`, replacing an installed plugin of the
    /// same name; a bundled plugin's name is refused. Returns the loaded plugin so the caller can
    /// show what it asks for.
    pub async fn install(&self, loader: &Loader, file: &Path) -> Result<LoadedPlugin, Error> {
        let bytes = component_file::read(file)?;
        let label = file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.display().to_string());
        let provenance = Provenance {
            source: std::path::absolute(file)
                .unwrap_or_else(|_| file.to_owned())
                .display()
                .to_string(),
            signer: None,
        };
        self.install_bytes(loader, &label, &bytes, provenance).await
    }

    /// Validates and installs the component `bytes` (called `label` in errors), fetched and
    /// checked by the caller (`fetch.rs`, `trust.rs`), recording where it came from.
    pub async fn install_bytes(
        &self,
        loader: &Loader,
        label: &str,
        bytes: &[u8],
        provenance: Provenance,
    ) -> Result<LoadedPlugin, Error> {
        let label = label.to_owned();
        let mut plugin = loader.load(&label, bytes, Origin::Bundled).await?;
        if bundled::is_reserved(&plugin.info.name) {
            return Err(Error::BundledName {
                plugin: label,
                name: plugin.info.name.clone(),
            });
        }
        let file_name = format!("{}.wasm", plugin.info.name);
        let target = self.dir.join(&file_name);
        write_atomically(&target, bytes)?;
        let entry = LockEntry {
            name: plugin.info.name.clone(),
            file: file_name,
            sha256: plugin.sha256.clone(),
            world: plugin.world,
            version: plugin.info.version.clone(),
            wit_version: plugin.wit_version.clone(),
            source: Some(provenance.source),
            signer: provenance.signer,
        };
        let mut entries = self.entries()?;
        entries.retain(|existing| existing.name != entry.name);
        entries.push(entry);
        self.write_lock(entries)?;
        plugin.origin = Origin::Installed(target);
        Ok(plugin)
    }

    /// Removes the installed plugin `name`.
    pub fn remove(&self, name: &str) -> Result<LockEntry, Error> {
        let mut entries = self.entries()?;
        let position = entries
            .iter()
            .position(|entry| entry.name == name)
            .ok_or_else(|| Error::NotInstalled(name.to_owned()))?;
        let entry = entries.remove(position);
        self.write_lock(entries)?;
        let path = self.dir.join(&entry.file);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path, source }),
        }
        Ok(entry)
    }

    fn write_lock(&self, mut plugins: Vec<LockEntry>) -> Result<(), Error> {
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        let bytes = serde_json::to_vec_pretty(&LockFile { plugins })
            .map_err(|err| Error::Lock(format!("could not encode the lock file: {err}")))?;
        write_atomically(&self.dir.join(LOCK_FILE), &bytes)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, bytes).map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}
