//! Builds the bundled plugins for wasm32-wasip2 so the `mecha` binary can embed them, and records
//! the git commit that `mecha --version` reports.
//!
//! The plugins are built by an inner cargo with its own target directory: the outer build holds
//! the lock on the workspace's, and the two must not fight over it. Only changes to the plugin
//! sources, the SDK, the WIT package or the lock file rebuild them.
//!
//! rustup reads `rust-toolchain.toml` and installs its targets only when it installs the
//! toolchain itself. Where the pinned toolchain already exists without `wasm32-wasip2` (e.g. a
//! link to a local stable), the plugins cannot build, so the target is added here with rustup
//! and the build says so; without rustup, the error says which target to install.

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
    ("mecha-plugin-slack-responder", "slack-responder.wasm"),
    ("mecha-plugin-telegram-responder", "telegram-responder.wasm"),
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ sits inside the workspace");
    let out_dir = PathBuf::from(env("OUT_DIR"));

    record_git_commit(workspace);
    build_plugins(workspace, &out_dir);
    embed_project_files(workspace, &out_dir);
}

/// Writes `$OUT_DIR/project_files.rs`: every file of the WIT package (`WIT`) and of the plugin
/// templates (`TEMPLATES`), as (relative path, contents), for `mecha plugin new` to write out.
fn embed_project_files(workspace: &Path, out_dir: &Path) {
    let mut code = String::new();
    for (constant, dir) in [
        ("WIT", workspace.join("wit")),
        ("TEMPLATES", workspace.join("host/src/cli/plugin/templates")),
    ] {
        // Cargo watches a directory's whole tree.
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        collect_files(&dir, &dir, &mut files);
        files.sort();
        code.push_str(&format!("pub const {constant}: &[(&str, &str)] = &[\n"));
        for (relative, absolute) in files {
            code.push_str(&format!(
                "    ({relative:?}, include_str!({:?})),\n",
                absolute.display().to_string()
            ));
        }
        code.push_str("];\n");
    }
    std::fs::write(out_dir.join("project_files.rs"), code)
        .unwrap_or_else(|err| panic!("could not write project_files.rs: {err}"));
}

fn collect_files(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("could not read {}: {err}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative = relative.to_string_lossy().into_owned();
            files.push((relative, path));
        }
    }
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

/// The target the plugins are built for.
const PLUGIN_TARGET: &str = "wasm32-wasip2";

/// Makes sure the compiler has the standard library for [`PLUGIN_TARGET`], adding it with rustup
/// when it is missing.
fn ensure_plugin_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let Some(sysroot) = sysroot else {
        // Without a sysroot to look in, the plugin build itself reports what is missing.
        return;
    };
    let target_lib = sysroot.join("lib/rustlib").join(PLUGIN_TARGET);
    if target_lib.is_dir() {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", PLUGIN_TARGET]);
    // Under rustup's proxy this names the pinned toolchain; add the target to that one.
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    match rustup.output() {
        Ok(output) if output.status.success() => println!(
            "cargo:warning=added the {PLUGIN_TARGET} target to {} with rustup: the bundled \
             plugins are built for it",
            sysroot.display()
        ),
        Ok(output) => panic!(
            "the bundled plugins need the {PLUGIN_TARGET} target, which {} lacks, and \
             `rustup target add {PLUGIN_TARGET}` failed:\n{}",
            sysroot.display(),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) => panic!(
            "the bundled plugins need the {PLUGIN_TARGET} target, which {} lacks, and rustup \
             is not installed; install the target for this compiler (for rustup users: \
             `rustup target add {PLUGIN_TARGET}`; for distribution packages, e.g. Debian's \
             `libstd-rust-dev-wasm32`)",
            sysroot.display()
        ),
    }
}

fn build_plugins(workspace: &Path, out_dir: &Path) {
    ensure_plugin_target();
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
        .args(["build", "--target", PLUGIN_TARGET, "--profile", "plugin"])
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
            "building the bundled plugins for {PLUGIN_TARGET} failed:\n\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let built = target_dir.join(PLUGIN_TARGET).join("plugin");
    for (package, file) in BUNDLED {
        let artifact = built.join(format!("{}.wasm", package.replace('-', "_")));
        std::fs::copy(&artifact, out_dir.join(file))
            .unwrap_or_else(|err| panic!("could not copy {}: {err}", artifact.display()));
    }
}
