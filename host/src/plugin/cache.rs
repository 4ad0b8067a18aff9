//! The compile cache: native code for each component, compiled once and reused across starts.
//!
//! Entries are keyed by the component's sha256 and the engine's compatibility key, so a new
//! mecha (or a different CPU) never loads stale code. Deserializing is `unsafe` in wasmtime
//! because the bytes are trusted as native code: the cache only loads files it wrote itself,
//! each checked against the digest recorded next to it, and the directory is private (0700).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::Error;

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
        let Some(dir) = &self.dir else {
            return Component::new(engine, wasm).map_err(invalid);
        };
        let key = format!("{}-{}", sha256_hex(wasm), self.compatibility_key);
        let code_path = dir.join(format!("{key}.cwasm"));
        let digest_path = dir.join(format!("{key}.sha256"));
        if let Some(code) = read_verified(&code_path, &digest_path) {
            // SAFETY: `code` was produced by `precompile_component` of an engine with the same
            // compatibility key, written by this cache, and matches the digest written with it.
            match unsafe { Component::deserialize(engine, &code) } {
                Ok(component) => return Ok(component),
                Err(err) => {
                    tracing::warn!(plugin, error = %err, "ignoring an unusable compile cache entry")
                }
            }
        }
        let code = engine.precompile_component(wasm).map_err(invalid)?;
        if let Err(err) = write_entry(dir, &code_path, &digest_path, &code) {
            tracing::warn!(plugin, error = %err, "could not write the compile cache; the plugin will be compiled again next start");
        }
        // SAFETY: `code` was just produced by `precompile_component` on this very engine.
        unsafe { Component::deserialize(engine, &code) }.map_err(invalid)
    }
}

/// The hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn read_verified(code_path: &Path, digest_path: &Path) -> Option<Vec<u8>> {
    let expected = std::fs::read_to_string(digest_path).ok()?;
    let code = std::fs::read(code_path).ok()?;
    (sha256_hex(&code) == expected.trim()).then_some(code)
}

/// Writes code and digest through temporary files and renames, so a crash never leaves a
/// half-written entry that looks valid.
fn write_entry(dir: &Path, code_path: &Path, digest_path: &Path, code: &[u8]) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Cache { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let code_tmp = code_path.with_extension("cwasm.tmp");
    std::fs::write(&code_tmp, code).map_err(io(&code_tmp))?;
    std::fs::rename(&code_tmp, code_path).map_err(io(code_path))?;
    let digest_tmp = digest_path.with_extension("sha256.tmp");
    std::fs::write(&digest_tmp, sha256_hex(code)).map_err(io(&digest_tmp))?;
    std::fs::rename(&digest_tmp, digest_path).map_err(io(digest_path))?;
    Ok(())
}
