//! The misbehaving test plugins in `tests/plugins/`, built once per test run for wasm32-wasip2
//! into the same target directory as the bundled plugins, so shared dependencies are reused.

use std::path::PathBuf;
use std::sync::OnceLock;

const TEST_PLUGINS: &[&str] = &[
    "spin",
    "bomb",
    "panic",
    "sandbox",
    "unverified",
    "snoop",
    "greedy",
];

/// The path of the built test plugin `name` (one of [`TEST_PLUGINS`]).
pub fn path(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(build);
    dir.join(format!("mecha_test_plugin_{name}.wasm"))
}

fn build() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = super::daemon::target_dir().join("wasm-plugins");
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo
        .current_dir(&workspace)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"])
        .arg("--target-dir")
        .arg(&target_dir);
    for name in TEST_PLUGINS {
        cargo.args(["-p", &format!("mecha-test-plugin-{name}")]);
    }
    let output = cargo.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building the test plugins failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir.join("wasm32-wasip2").join("plugin")
}
