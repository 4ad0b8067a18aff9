//! Plugins built by other languages' toolchains: the examples under `examples/plugins/` and the
//! probes under `tests/plugins/python-*`, each built once per test run by its own `build.sh`,
//! exactly as a plugin author would build it (componentize-py from PyPI; clang, wasi-libc,
//! wit-bindgen and wasm-tools for C).
//!
//! Outside CI a test whose toolchain is missing skips, saying why; with `CI=true` (where
//! `.ci/run` installs every toolchain) it fails instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The component `build.sh` makes in `dir` (relative to the repository), named `file`; `None`
/// (after saying so) when its toolchain is missing outside CI.
pub fn built(test: &str, dir: &str, file: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let cache = BUILT.get_or_init(Mutex::default);
    // One build at a time: componentize-py takes a core each, and the machine has two.
    let mut cache = cache.lock().unwrap_or_else(|err| err.into_inner());
    let outcome = cache
        .entry(dir.to_owned())
        .or_insert_with(|| build(dir, file))
        .clone();
    match outcome {
        Ok(path) => Some(path),
        Err(reason) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("CI=true, so {test} must run, but: {reason}")
        }
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            None
        }
    }
}

fn build(dir: &str, file: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir);
    let output = std::process::Command::new(dir.join("build.sh"))
        .current_dir(&dir)
        .output()
        .map_err(|err| format!("could not run {}/build.sh: {err}", dir.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{}/build.sh failed:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let path = dir.join(file);
    if !path.is_file() {
        return Err(format!("{}/build.sh made no {file}", dir.display()));
    }
    Ok(path)
}
