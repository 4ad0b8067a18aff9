//! The compile cache: native code for each component, compiled once and reused across starts.
//!
//! Entries are keyed by the component's sha256 and the engine's compatibility key, so a new
//! mecha (or a different CPU) never loads stale code. Deserializing is `unsafe` in wasmtime
//! because the bytes are trusted as native code. The digest recorded next to each entry catches
//! a damaged or half-written file, not a malicious one; what keeps others from planting code is
//! the directory itself: the cache is used only when no one but its owner can write to it.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::Error;
use crate::digest::{sha256_hex, sha256_hex_of_file};

pub struct CompileCache {
    dir: Option<PathBuf>,
    compatibility_key: String,
}

impl CompileCache {
    /// A cache in `dir`, or none (compile every time) when `dir` is `None`.
    pub fn new(dir: Option<PathBuf>, compatibility_key: String) -> CompileCache {
        CompileCache {
            dir,
            compatibility_key,
        }
    }

    /// The compiled form of `wasm`: from the cache when a valid entry exists, else compiled and
    /// stored. A cache that cannot be written costs time, never correctness.
    pub fn component(
        &self,
        engine: &Engine,
        plugin: &str,
        wasm: &[u8],
    ) -> Result<Component, Error> {
        let invalid = |err: wasmtime::Error| Error::Invalid {
            plugin: plugin.to_owned(),
            reason: format!("{err:#}"),
        };
        let Some(dir) = self.dir.as_ref().filter(|dir| private(dir)) else {
            return Component::new(engine, wasm).map_err(invalid);
        };
        let key = format!("{}-{}", sha256_hex(wasm), self.compatibility_key);
        let code_path = dir.join(format!("{key}.cwasm"));
        let digest_path = dir.join(format!("{key}.sha256"));
        if verified(&code_path, &digest_path) {
            // Mapped, not read: only the pages of code that calls run become resident, and they
            // are the file's (a CPython component's code is tens of MB, most of it never run).
            // SAFETY: the file sits in a directory only its owner can write, under a key naming
            // an engine with the same compatibility key, and matches the digest written with it;
            // entries are replaced by rename, never rewritten in place, so the mapped file stays
            // the one that was checked.
            match unsafe { Component::deserialize_file(engine, &code_path) } {
                Ok(component) => return Ok(component),
                Err(err) => {
                    tracing::warn!(plugin, error = %err, "ignoring an unusable compile cache entry")
                }
            }
        }
        let code = engine.precompile_component(wasm).map_err(invalid)?;
        match write_entry(dir, &code_path, &digest_path, &code) {
            // SAFETY: the entry was just written from `code`, which `precompile_component`
            // produced on this very engine (and see above).
            Ok(()) => unsafe { Component::deserialize_file(engine, &code_path) }.map_err(invalid),
            Err(err) => {
                tracing::warn!(plugin, error = %err, "could not write the compile cache; the plugin will be compiled again next start");
                // SAFETY: `code` was just produced by `precompile_component` on this very engine.
                unsafe { Component::deserialize(engine, &code) }.map_err(invalid)
            }
        }
    }
}

/// Whether only the directory's owner can write to it. A cache others can write to could hold
/// their native code, so it is not used (and a warning says why).
fn private(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(dir) {
            Ok(metadata) if metadata.permissions().mode() & 0o022 != 0 => {
                tracing::warn!(
                    dir = %dir.display(),
                    "the compile cache is writable by other users, so it is not used; run `chmod 700` on it"
                );
                false
            }
            _ => true,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        true
    }
}

/// Whether the entry's code matches the digest written with it.
fn verified(code_path: &Path, digest_path: &Path) -> bool {
    let Ok(expected) = std::fs::read_to_string(digest_path) else {
        return false;
    };
    sha256_hex_of_file(code_path).is_ok_and(|digest| digest == expected.trim())
}

/// Writes code and digest through temporary files and renames, so a crash never leaves a
/// half-written entry that looks valid. The temporary names carry the process id: the daemon
/// and a `mecha plugin` command may fill the same cache at once.
fn write_entry(dir: &Path, code_path: &Path, digest_path: &Path, code: &[u8]) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Cache { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = format!("{}.tmp", std::process::id());
    let code_tmp = code_path.with_extension(format!("cwasm.{tmp}"));
    std::fs::write(&code_tmp, code).map_err(io(&code_tmp))?;
    std::fs::rename(&code_tmp, code_path).map_err(io(code_path))?;
    let digest_tmp = digest_path.with_extension(format!("sha256.{tmp}"));
    std::fs::write(&digest_tmp, sha256_hex(code)).map_err(io(&digest_tmp))?;
    std::fs::rename(&digest_tmp, digest_path).map_err(io(digest_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bundled::BUNDLED;

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        Engine::new(&config).expect("engine")
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("cache dir")
            .map(|entry| entry.expect("entry").path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn compiles_once_and_reuses_the_entry() {
        let temp = tempfile::tempdir().expect("temp");
        let engine = engine();
        let cache = CompileCache::new(Some(temp.path().to_owned()), "engine-a".into());
        let (_, wasm) = BUNDLED[0];
        cache.component(&engine, "plugin", wasm).expect("compiled");
        let files = entries(temp.path());
        assert_eq!(files.len(), 2, "code and digest: {files:?}");
        let code = files
            .iter()
            .find(|path| path.extension().is_some_and(|e| e == "cwasm"))
            .expect("code");
        assert!(
            code.file_name()
                .expect("name")
                .to_string_lossy()
                .starts_with(&sha256_hex(wasm))
        );
        let written = std::fs::metadata(code)
            .expect("meta")
            .modified()
            .expect("mtime");
        cache
            .component(&engine, "plugin", wasm)
            .expect("from cache");
        let reread = std::fs::metadata(code)
            .expect("meta")
            .modified()
            .expect("mtime");
        assert_eq!(written, reread, "the second load did not rewrite the entry");

        // Another engine configuration gets its own entry.
        let other = CompileCache::new(Some(temp.path().to_owned()), "engine-b".into());
        other.component(&engine, "plugin", wasm).expect("compiled");
        assert_eq!(entries(temp.path()).len(), 4);
    }

    /// A cached component's code is mapped from its entry, not copied into the daemon's memory:
    /// only the pages that calls run become resident (tens of MB less for a CPython plugin).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_cached_component_runs_from_its_mapped_entry() {
        let temp = tempfile::tempdir().expect("temp");
        let engine = engine();
        let cache = CompileCache::new(Some(temp.path().to_owned()), "engine".into());
        let (_, wasm) = BUNDLED[0];
        drop(cache.component(&engine, "plugin", wasm).expect("compiled"));
        let code = entries(temp.path())
            .into_iter()
            .find(|path| path.extension().is_some_and(|e| e == "cwasm"))
            .expect("code");
        let mapped = |path: &Path| {
            std::fs::read_to_string("/proc/self/maps")
                .expect("maps")
                .lines()
                .any(|line| line.ends_with(path.to_str().expect("utf-8")))
        };
        assert!(!mapped(&code));
        let component = cache.component(&engine, "plugin", wasm).expect("cached");
        assert!(mapped(&code), "{} is not mapped", code.display());
        drop(component);
    }

    #[test]
    fn a_tampered_entry_is_not_loaded_but_replaced() {
        let temp = tempfile::tempdir().expect("temp");
        let engine = engine();
        let cache = CompileCache::new(Some(temp.path().to_owned()), "engine".into());
        let (_, wasm) = BUNDLED[0];
        cache.component(&engine, "plugin", wasm).expect("compiled");
        let code = entries(temp.path())
            .into_iter()
            .find(|path| path.extension().is_some_and(|e| e == "cwasm"))
            .expect("code");
        let original = std::fs::read(&code).expect("code");
        std::fs::write(&code, b"\x7fELF not what was compiled").expect("tampered");
        assert!(!verified(&code, &code.with_extension("sha256")));
        cache
            .component(&engine, "plugin", wasm)
            .expect("recompiled");
        assert_eq!(
            std::fs::read(&code).expect("code"),
            original,
            "the entry was rewritten"
        );
    }

    #[test]
    fn garbage_is_an_invalid_component_error() {
        let cache = CompileCache::new(None, "engine".into());
        let err = match cache.component(&engine(), "junk.wasm", b"not wasm") {
            Err(err) => err.to_string(),
            Ok(_) => panic!("garbage compiled"),
        };
        assert!(
            err.starts_with("junk.wasm is not a valid WebAssembly component"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_cache_others_can_write_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let temp = tempfile::tempdir().expect("temp");
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let cache = CompileCache::new(Some(temp.path().to_owned()), "engine".into());
        let (_, wasm) = BUNDLED[0];
        cache
            .component(&engine(), "plugin", wasm)
            .expect("compiled anyway");
        assert!(
            entries(temp.path()).is_empty(),
            "nothing written or read there"
        );
    }
}
