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
    "tally",
    "versioned",
];

/// The path of the built test plugin `name` (one of [`TEST_PLUGINS`]).
pub fn path(name: &str) -> PathBuf {
    built().join(format!("mecha_test_plugin_{name}.wasm"))
}

/// The `versioned` test plugin as version 1 (0.1.0, asks for nothing) or 2 (0.2.0, asks for an
/// API origin): copies made once per run, since both builds write the same artifact.
pub fn versioned(version: u8) -> PathBuf {
    assert!(matches!(version, 1 | 2), "versioned has versions 1 and 2");
    built().join(format!("versioned-{version}.wasm"))
}

fn built() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = build(&[]);
        let artifact = dir.join("mecha_test_plugin_versioned.wasm");
        std::fs::copy(&artifact, dir.join("versioned-1.wasm")).expect("versioned 1 copied");
        build(&["--features", "mecha-test-plugin-versioned/v2"]);
        std::fs::copy(&artifact, dir.join("versioned-2.wasm")).expect("versioned 2 copied");
        dir
    })
}

/// Builds the test plugins (with `extra` cargo arguments) and returns where they are.
fn build(extra: &[&str]) -> PathBuf {
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
    cargo.args(extra);
    let output = cargo.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building the test plugins failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir.join("wasm32-wasip2").join("plugin")
}
