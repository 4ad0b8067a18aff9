//! Installed plugins: components under `<mecha home>/plugins/`, recorded in `lock.json` with
//! their sha256 (a file changed behind the daemon's back is refused instead of run), where they
//! came from, what was granted to them, and the versions they replaced.
//!
//! # Crash safety
//!
//! A component's file is named after its content (`<name>-<first 16 hex of its sha256>.wasm`),
//! so a new version never overwrites the one the lock names. Every change is one transaction
//! ([`Installed::change`]): under an exclusive `flock` on `plugins/.lock` (two commands at once
//! take turns), the new component is written to a temporary file, synced and renamed into
//! place; then `lock.json` is written the same way, and that rename is the commit; only then are
//! files no version names any more removed. A crash (`kill -9`, power loss) at any point leaves
//! the lock naming either the old versions or the new ones, each with its file complete; what a
//! crash leaves behind (a temporary file, an unnamed component) is removed by the next change.
//!
//! # Versions
//!
//! Each entry keeps up to [`KEPT_VERSIONS`] earlier versions, newest first: `mecha plugin
//! rollback` makes the newest of them current again, with the grant it had.
//!
//! What is installed is read as `component_file.rs` reads it (a regular file, within a size cap).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::grants::Grants;
use super::loader::LoadedPlugin;
use super::world::World;
use super::{Error, component_file};
use crate::digest::sha256_hex;

const LOCK_FILE: &str = "lock.json";
/// Held with `flock` for the length of a change.
const GUARD_FILE: &str = ".lock";
/// Earlier versions kept per plugin for `rollback`: enough to step back past a bad release and
/// its hurried fix, while the plugins directory stays a few components per plugin.
pub const KEPT_VERSIONS: usize = 3;

/// One installed plugin as recorded in the lock file: the version that runs, and the ones it
/// replaced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockEntry {
    pub name: String,
    #[serde(flatten)]
    pub current: Version,
    /// Earlier versions, newest first, at most [`KEPT_VERSIONS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<Version>,
}

/// One version of an installed plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Version {
    /// The component's file name inside the plugins directory.
    pub file: String,
    pub sha256: String,
    pub world: World,
    pub version: String,
    pub wit_version: String,
    /// Where it was installed from: a file's absolute path, a URL or an `oci://` reference
    /// (never credentials). Absent in entries written before sources were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The id of the trusted minisign key that signed it (`mecha plugin trust ls`); absent
    /// when it was installed unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// What the operator granted it. Absent in entries written before grants were asked for:
    /// those run with what they declare, as they did when installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted: Option<Grants>,
    /// Installed in place of the bundled plugin of its name and world (`--replace-bundled`):
    /// it receives what `config.yml` and `secrets.yml` hold under that name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaces_bundled: bool,
}

impl Version {
    /// The lock record of `plugin`, whose component is `file`, from `provenance`.
    pub fn of(plugin: &LoadedPlugin, provenance: Provenance) -> Version {
        Version {
            file: file_name(&plugin.info.name, &plugin.sha256),
            sha256: plugin.sha256.clone(),
            world: plugin.world,
            version: plugin.info.version.clone(),
            wit_version: plugin.wit_version.clone(),
            source: Some(provenance.source),
            signer: provenance.signer,
            granted: Some(provenance.granted),
            replaces_bundled: provenance.replaces_bundled,
        }
    }

    /// The short form operators read: `1.2.0 (sha256 3f2a9c81d0e4)`.
    pub fn label(&self) -> String {
        format!(
            "{} (sha256 {})",
            self.version,
            &self.sha256[..12.min(self.sha256.len())]
        )
    }
}

/// Where an installed version came from and what it was granted, recorded in its lock entry.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// A file's absolute path, a URL or an `oci://` reference, without credentials.
    pub source: String,
    /// The id of the trusted key whose signature was verified.
    pub signer: Option<String>,
    pub granted: Grants,
    pub replaces_bundled: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LockFile {
    plugins: Vec<LockEntry>,
    /// The last shared change (`plugin::shared`) this directory holds: every one up to it has
    /// been applied here. Written in the same commit as the entries it changed.
    #[serde(default, skip_serializing_if = "is_zero")]
    shared_revision: i64,
}

fn is_zero(revision: &i64) -> bool {
    *revision == 0
}

/// What identifies one state of the lock file, for noticing that it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

/// The installed plugins in `dir`.
#[derive(Debug, Clone)]
pub struct Installed {
    dir: PathBuf,
}

impl Installed {
    pub fn new(dir: PathBuf) -> Installed {
        Installed { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entries of the lock file; none when nothing was ever installed.
    pub fn entries(&self) -> Result<Vec<LockEntry>, Error> {
        Ok(self.lock()?.plugins)
    }

    /// The last shared change applied here (0: none), see `plugin::shared`.
    pub fn shared_revision(&self) -> Result<i64, Error> {
        Ok(self.lock()?.shared_revision)
    }

    fn lock(&self) -> Result<LockFile, Error> {
        let path = self.dir.join(LOCK_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<LockFile>(&bytes).map_err(|err| {
                Error::Lock(format!(
                    "{} is damaged ({err}); remove it and install the plugins again",
                    path.display()
                ))
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(LockFile::default()),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// The entry of the installed plugin `name`.
    pub fn entry(&self, name: &str) -> Result<LockEntry, Error> {
        self.entries()?
            .into_iter()
            .find(|entry| entry.name == name)
            .ok_or_else(|| Error::NotInstalled(name.to_owned()))
    }

    /// The lock file's current stamp (none when there is no lock file): a daemon compares it to
    /// notice installs made while it runs. Every change renames a new file into place, so the
    /// inode changes even when the size and time do not.
    pub fn stamp(&self) -> Option<Stamp> {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(self.dir.join(LOCK_FILE)).ok()?;
        Some(Stamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            #[cfg(unix)]
            inode: metadata.ino(),
            #[cfg(not(unix))]
            inode: 0,
        })
    }

    /// The versions of `entry`, shared as plugin `name`, whose component is not here intact:
    /// what applying the change must bring. The entry is checked first ([`check_shared`]), so
    /// no path it names is read unless it is one mecha would write.
    pub fn lacking<'e>(&self, name: &str, entry: &'e LockEntry) -> Result<Vec<&'e Version>, Error> {
        check_shared(name, entry)?;
        Ok(versions(entry)
            .filter(|version| !self.intact(version))
            .collect())
    }

    /// Whether the component of `version` is here and matches its digest.
    fn intact(&self, version: &Version) -> bool {
        component_file::read(&self.dir.join(&version.file))
            .is_ok_and(|bytes| sha256_hex(&bytes) == version.sha256)
    }

    /// Applies the shared change `revision` of plugin `name`: `entry` becomes its entry (or,
    /// `None`, it is removed), with `components` (by sha256) written for the versions
    /// [`Installed::lacking`] named. The entry comes from the database, so each version's file
    /// name must be the one this directory would give it, and each component must match its
    /// digest.
    pub fn adopt(
        &self,
        name: &str,
        entry: Option<LockEntry>,
        revision: i64,
        components: &std::collections::HashMap<String, Vec<u8>>,
    ) -> Result<(), Error> {
        if let Some(entry) = &entry {
            check_shared(name, entry)?;
        }
        self.change_lock(|dir, lock| {
            if let Some(entry) = &entry {
                for version in versions(entry) {
                    match components.get(&version.sha256) {
                        Some(bytes) if sha256_hex(bytes) == version.sha256 => {
                            write_durably(&dir.join(&version.file), bytes)?;
                        }
                        Some(_) => {
                            return Err(Error::Lock(format!(
                                "the shared component of {name} {} does not match its sha256",
                                version.version
                            )));
                        }
                        // Checked under the guard: a local change since `lacking` may have
                        // removed it.
                        None if self.intact(version) => {}
                        None => {
                            return Err(Error::Lock(format!(
                                "the component of {name} {} is no longer here; the shared \
                                 change is applied again at the next poll",
                                version.version
                            )));
                        }
                    }
                }
            }
            lock.plugins.retain(|kept| kept.name != name);
            lock.plugins.extend(entry);
            lock.shared_revision = lock.shared_revision.max(revision);
            Ok(())
        })
    }

    /// Records the shared change `revision` as dealt with although it was not applied (it
    /// cannot be, here): the changes after it are applied, not held up behind it.
    pub fn pass_over(&self, revision: i64) -> Result<(), Error> {
        self.change_lock(|_, lock| {
            lock.shared_revision = lock.shared_revision.max(revision);
            Ok(())
        })
    }

    /// Reads the component of `version` of the plugin `name`, refusing it when it no longer
    /// matches the lock.
    pub fn read(&self, name: &str, version: &Version) -> Result<(PathBuf, Vec<u8>), Error> {
        let path = self.dir.join(&version.file);
        let bytes = component_file::read(&path)?;
        if sha256_hex(&bytes) != version.sha256 {
            return Err(Error::Lock(format!(
                "installed plugin {name} ({}) was changed since it was installed (sha256 differs \
                 from lock.json); reinstall it with `mecha plugin install`",
                path.display()
            )));
        }
        Ok((path, bytes))
    }

    /// Makes `version` (whose component is `bytes`) the current version of `name`, keeping the
    /// one it replaces for rollback. Returns the replaced version, if any.
    pub fn install(
        &self,
        name: &str,
        version: Version,
        bytes: &[u8],
    ) -> Result<Option<Version>, Error> {
        self.change(|dir, entries| {
            write_durably(&dir.join(&version.file), bytes)?;
            let replaced = match entries.iter_mut().find(|entry| entry.name == name) {
                Some(entry) if entry.current.sha256 == version.sha256 => {
                    // The same component again: its new provenance and grant, no new version.
                    entry.current = version;
                    None
                }
                Some(entry) => {
                    let replaced = std::mem::replace(&mut entry.current, version);
                    entry
                        .previous
                        .retain(|kept| kept.sha256 != entry.current.sha256);
                    entry.previous.insert(0, replaced.clone());
                    entry.previous.truncate(KEPT_VERSIONS);
                    Some(replaced)
                }
                None => {
                    entries.push(LockEntry {
                        name: name.to_owned(),
                        current: version,
                        previous: Vec::new(),
                    });
                    None
                }
            };
            Ok(replaced)
        })
    }

    /// Makes the newest earlier version of `name` current again; the version it replaces is
    /// dropped. Returns (the version left, the version restored).
    pub fn rollback(&self, name: &str) -> Result<(Version, Version), Error> {
        self.change(|dir, entries| {
            let entry = entries
                .iter_mut()
                .find(|entry| entry.name == name)
                .ok_or_else(|| Error::NotInstalled(name.to_owned()))?;
            if entry.previous.is_empty() {
                return Err(Error::Lock(format!(
                    "no earlier version of {name} is kept; install the version you want with \
                     `mecha plugin install`"
                )));
            }
            let restored = entry.previous.remove(0);
            // Checked before the switch: a rollback to a damaged file would leave nothing
            // that runs.
            let path = dir.join(&restored.file);
            let bytes = component_file::read(&path)?;
            if sha256_hex(&bytes) != restored.sha256 {
                return Err(Error::Lock(format!(
                    "the kept version {} of {name} ({}) was changed since it was installed; \
                     install the version you want with `mecha plugin install`",
                    restored.version,
                    path.display()
                )));
            }
            let left = std::mem::replace(&mut entry.current, restored.clone());
            Ok((left, restored))
        })
    }

    /// Removes the installed plugin `name` with every version kept of it.
    pub fn remove(&self, name: &str) -> Result<LockEntry, Error> {
        self.change(|_, entries| {
            let position = entries
                .iter()
                .position(|entry| entry.name == name)
                .ok_or_else(|| Error::NotInstalled(name.to_owned()))?;
            Ok(entries.remove(position))
        })
    }

    /// One transaction: `apply` changes the entries (and may write components into the
    /// directory it is given), then the lock is committed and unnamed files are removed.
    fn change<T>(
        &self,
        apply: impl FnOnce(&Path, &mut Vec<LockEntry>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.change_lock(|dir, lock| apply(dir, &mut lock.plugins))
    }

    /// [`Installed::change`] with the whole lock file.
    fn change_lock<T>(
        &self,
        apply: impl FnOnce(&Path, &mut LockFile) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let guard_path = self.dir.join(GUARD_FILE);
        let guard = File::options()
            .create(true)
            .append(true)
            .open(&guard_path)
            .map_err(io(&guard_path))?;
        lock_exclusive(&guard).map_err(io(&guard_path))?;
        let mut lock = self.lock()?;
        let outcome = apply(&self.dir, &mut lock)?;
        lock.plugins.sort_by(|a, b| a.name.cmp(&b.name));
        let bytes = serde_json::to_vec_pretty(&lock)
            .map_err(|err| Error::Lock(format!("could not encode the lock file: {err}")))?;
        write_durably(&self.dir.join(LOCK_FILE), &bytes)?;
        self.collect_garbage(&lock.plugins);
        drop(guard);
        Ok(outcome)
    }

    /// Removes what no version in `entries` (the lock just written) names: components of
    /// removed or dropped versions, and temporary files a crash left. Called under the guard,
    /// so no write is in progress.
    fn collect_garbage(&self, entries: &[LockEntry]) {
        let named: Vec<&str> = entries
            .iter()
            .flat_map(versions)
            .map(|version| version.file.as_str())
            .collect();
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for item in listing.flatten() {
            let name = item.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let unnamed_component = name.ends_with(".wasm") && !named.contains(&name);
            if (unnamed_component || name.ends_with(".tmp"))
                && let Err(err) = std::fs::remove_file(item.path())
            {
                tracing::debug!(file = %item.path().display(), error = %err, "could not remove an unused plugin file");
            }
        }
    }
}

/// Every version an entry names: the current one, then the kept ones.
pub fn versions(entry: &LockEntry) -> impl Iterator<Item = &Version> {
    std::iter::once(&entry.current).chain(&entry.previous)
}

/// Checks an entry that came from the database before anything of it touches the plugins
/// directory: its name is the one it is shared under and safe for a path, and every file it
/// names is the one this directory would give that version.
pub fn check_shared(name: &str, entry: &LockEntry) -> Result<(), Error> {
    let sound = entry.name == name
        && crate::config::name::is_safe_name(name)
        && versions(entry).all(|version| {
            version.sha256.len() == 64
                && version
                    .sha256
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
                && version.file == file_name(name, &version.sha256)
        });
    if sound {
        Ok(())
    } else {
        Err(Error::Lock(format!(
            "the shared install of {name:?} in the database is not one mecha wrote; it was not \
             applied"
        )))
    }
}

/// `<name>-<16 hex>.wasm`: unique per content, so installing never overwrites a file the lock
/// names.
fn file_name(name: &str, sha256: &str) -> String {
    format!("{name}-{}.wasm", &sha256[..16.min(sha256.len())])
}

/// Writes `bytes` to `path` through a synced temporary file and a rename, then syncs the
/// directory, so that after a crash `path` is either absent, as it was, or complete.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut file = File::create(&temp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&temp, path).map_err(io)?;
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)
}

#[cfg(unix)]
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a descriptor this function borrows; it changes no memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: u8) -> (Version, Vec<u8>) {
        let bytes = vec![n; 16];
        let sha256 = sha256_hex(&bytes);
        (
            Version {
                file: file_name("echo", &sha256),
                sha256,
                world: World::Source,
                version: format!("1.{n}.0"),
                wit_version: "0.1.0".into(),
                source: Some("/x.wasm".into()),
                signer: None,
                granted: Some(Grants::default()),
                replaces_bundled: false,
            },
            bytes,
        )
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|item| item.file_name().to_string_lossy().into_owned())
            .filter(|name| name != LOCK_FILE && name != GUARD_FILE)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn upgrades_keep_earlier_versions_and_rollback_restores_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let installed = Installed::new(dir.path().to_owned());
        for n in 1..=5 {
            let (version, bytes) = version(n);
            installed.install("echo", version, &bytes).unwrap();
        }
        let entry = installed.entry("echo").unwrap();
        assert_eq!(entry.current.version, "1.5.0");
        let kept: Vec<&str> = entry.previous.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(kept, ["1.4.0", "1.3.0", "1.2.0"]);
        // Only the named versions' files are left.
        assert_eq!(files(dir.path()).len(), 1 + KEPT_VERSIONS);

        let (left, restored) = installed.rollback("echo").unwrap();
        assert_eq!(
            (left.version.as_str(), restored.version.as_str()),
            ("1.5.0", "1.4.0")
        );
        let entry = installed.entry("echo").unwrap();
        assert_eq!(entry.current, restored);
        installed.read("echo", &entry.current).unwrap();
        assert_eq!(files(dir.path()).len(), KEPT_VERSIONS);

        installed.remove("echo").unwrap();
        assert!(files(dir.path()).is_empty());
        assert!(matches!(
            installed.rollback("echo"),
            Err(Error::NotInstalled(_))
        ));
    }

    #[test]
    fn the_same_component_again_is_no_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let installed = Installed::new(dir.path().to_owned());
        let (version, bytes) = version(1);
        installed.install("echo", version.clone(), &bytes).unwrap();
        assert_eq!(installed.install("echo", version, &bytes).unwrap(), None);
        assert!(installed.entry("echo").unwrap().previous.is_empty());
        let err = installed.rollback("echo").unwrap_err().to_string();
        assert!(err.contains("no earlier version of echo"), "{err}");
    }

    #[test]
    fn leftovers_of_a_crash_are_removed_by_the_next_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".echo-1.wasm.77.tmp"), b"half").unwrap();
        std::fs::write(dir.path().join("echo-0123456789abcdef.wasm"), b"unnamed").unwrap();
        let installed = Installed::new(dir.path().to_owned());
        let (version, bytes) = version(1);
        installed.install("echo", version.clone(), &bytes).unwrap();
        assert_eq!(files(dir.path()), [version.file]);
    }

    #[test]
    fn a_shared_change_is_applied_only_as_mecha_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let installed = Installed::new(dir.path().to_owned());
        let (version, bytes) = version(1);
        let entry = LockEntry {
            name: "echo".into(),
            current: version.clone(),
            previous: Vec::new(),
        };
        let components = std::collections::HashMap::from([(version.sha256.clone(), bytes)]);
        assert_eq!(installed.lacking("echo", &entry).unwrap(), [&version]);

        // A file name outside the plugins directory, or a name shared under another one.
        let mut escaping = entry.clone();
        escaping.current.file = "../escaped.wasm".into();
        assert!(installed.lacking("echo", &escaping).is_err());
        let refused = installed.adopt("echo", Some(escaping), 1, &components);
        assert!(matches!(refused, Err(Error::Lock(_))), "{refused:?}");
        let refused = installed.adopt("other", Some(entry.clone()), 1, &components);
        assert!(matches!(refused, Err(Error::Lock(_))), "{refused:?}");
        // A component that is not what the entry names.
        let wrong = std::collections::HashMap::from([(version.sha256.clone(), b"x".to_vec())]);
        assert!(
            installed
                .adopt("echo", Some(entry.clone()), 1, &wrong)
                .is_err()
        );
        assert!(installed.entries().unwrap().is_empty());
        assert!(!dir.path().parent().unwrap().join("escaped.wasm").exists());

        // A version neither given nor here is not recorded as installed.
        let refused = installed.adopt("echo", Some(entry.clone()), 4, &Default::default());
        assert!(matches!(refused, Err(Error::Lock(_))), "{refused:?}");
        assert!(installed.entries().unwrap().is_empty());

        installed
            .adopt("echo", Some(entry.clone()), 4, &components)
            .unwrap();
        assert_eq!(installed.entry("echo").unwrap(), entry);
        assert!(installed.lacking("echo", &entry).unwrap().is_empty());
        assert_eq!(installed.shared_revision().unwrap(), 4);
        // Once here, the same entry again needs no component.
        installed
            .adopt("echo", Some(entry.clone()), 5, &Default::default())
            .unwrap();
        installed.pass_over(5).unwrap();
        assert_eq!(installed.shared_revision().unwrap(), 5);

        installed.adopt("echo", None, 6, &components).unwrap();
        assert!(installed.entries().unwrap().is_empty());
        assert_eq!(installed.shared_revision().unwrap(), 6);
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn a_lock_written_before_versions_were_kept_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(LOCK_FILE),
            r#"{"plugins":[{"name":"echo","file":"echo.wasm","sha256":"ab","world":"source",
                "version":"0.1.0","wit_version":"0.1.0"}]}"#,
        )
        .unwrap();
        let entry = Installed::new(dir.path().to_owned()).entry("echo").unwrap();
        assert_eq!(entry.current.file, "echo.wasm");
        assert_eq!(entry.current.granted, None);
        assert!(entry.previous.is_empty());
    }
}
