//! Builds the bundled plugins for wasm32-wasip2 so the `mecha` binary can embed them, and records
//! the git commit that `mecha --version` reports.
//!
//! The plugins are built by an inner cargo with its own target directory: the outer build holds
//! the lock on the workspace's, and the two must not fight over it. Only changes to the plugin
//! sources, the SDK, the WIT package or the lock file rebuild them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Bundled plugins: (cargo package, file name embedded under `OUT_DIR`).
const BUNDLED: &[(&str, &str)] = &[
    ("mecha-plugin-github", "github.wasm"),
    ("mecha-plugin-generic", "generic.wasm"),
    ("mecha-plugin-gitlab", "gitlab.wasm"),
    ("mecha-plugin-slack", "slack.wasm"),
    ("mecha-plugin-telegram", "telegram.wasm"),
    ("mecha-plugin-cron", "cron.wasm"),
    ("mecha-plugin-rules", "rules.wasm"),
    ("mecha-plugin-github-responder", "github-responder.wasm"),
    ("mecha-plugin-gitlab-responder", "gitlab-responder.wasm"),
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ sits inside the workspace");
    let out_dir = PathBuf::from(env("OUT_DIR"));

    record_git_commit(workspace);
    build_plugins(workspace, &out_dir);
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

fn record_git_commit(workspace: &Path) {
    let git_dir = workspace.join(".git");
    for watched in ["HEAD", "refs/heads", "packed-refs"] {
        let path = git_dir.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(workspace)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MECHA_GIT_COMMIT={commit}");
}

fn build_plugins(workspace: &Path, out_dir: &Path) {
    for watched in [
        "plugins",
        "sdk",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
        ".cargo/config.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("wasm-plugins"),
        None => workspace.join("target").join("wasm-plugins"),
    };
    let mut cargo = Command::new(env("CARGO"));
    cargo
        .current_dir(workspace)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"])
        .arg("--target-dir")
        .arg(&target_dir);
    for (package, _) in BUNDLED {
        cargo.args(["-p", package]);
    }
    // The outer build's flags and target are for the host, not for the plugins.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cargo.env_remove(var);
    }
    let output = cargo
        .output()
        .unwrap_or_else(|err| panic!("could not run cargo to build the bundled plugins: {err}"));
    if !output.status.success() {
        panic!(
            "building the bundled plugins for wasm32-wasip2 failed.\n\
             If the target is missing, run: rustup target add wasm32-wasip2\n\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let built = target_dir.join("wasm32-wasip2").join("plugin");
    for (package, file) in BUNDLED {
        let artifact = built.join(format!("{}.wasm", package.replace('-', "_")));
        std::fs::copy(&artifact, out_dir.join(file))
            .unwrap_or_else(|err| panic!("could not copy {}: {err}", artifact.display()));
    }
}
