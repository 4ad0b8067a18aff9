//! The kit for plugin authors: `mecha plugin new` writes a project that builds with its
//! language's own toolchain and passes its own test, which runs it through `mecha plugin test`.

use std::process::Command;

use crate::support::daemon::{Home, binary, target_dir};
use crate::support::toolchains;

/// Scaffolds `name` for `world` in `lang` inside `home`, then runs the project's `test.sh`
/// with this build's `mecha`; returns what the test printed.
fn scaffold_and_test(home: &Home, name: &str, world: &str, lang: &str) -> String {
    let dir = home.path().join(name);
    let (ok, stdout, stderr) = home.mecha(&[
        "plugin",
        "new",
        name,
        "--world",
        world,
        "--lang",
        lang,
        "--dir",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(ok, "plugin new: {stderr}");
    assert!(stdout.contains("created"), "{stdout}");
    assert!(dir.join("wit/worlds.wit").is_file());
    assert!(dir.join("wit/deps/http/http.wit").is_file());
    let output = Command::new(dir.join("test.sh"))
        .current_dir(&dir)
        .env("MECHA", binary())
        .env("MECHA_HOME", home.path())
        // Every scaffolded Rust project shares one target directory: its dependencies are
        // then built once per machine.
        .env("CARGO_TARGET_DIR", target_dir().join("plugin-kit"))
        .output()
        .expect("test.sh runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{lang} {world} test.sh failed:\n{printed}"
    );
    assert!(printed.contains("result:   ok"), "{printed}");
    assert!(
        printed.contains("instantiate"),
        "figures are shown:\n{printed}"
    );
    printed
}

#[test]
fn a_new_rust_source_builds_and_passes_its_test() {
    let home = Home::empty();
    let printed = scaffold_and_test(&home, "my-source", "source", "rust");
    assert!(printed.contains("\"type\""), "{printed}");
}

#[test]
fn a_new_rust_responder_is_answered_by_the_recorder() {
    let home = Home::empty();
    let printed = scaffold_and_test(&home, "my-responder", "responder", "rust");
    assert!(printed.contains("request sent:"), "{printed}");
    assert!(printed.contains("\"method\": \"POST\""), "{printed}");
}

#[test]
fn a_new_python_source_builds_and_passes_its_test() {
    // The same toolchain as the Python examples: without it, skip (or fail under CI).
    if toolchains::built(
        "a_new_python_source_builds_and_passes_its_test",
        "examples/plugins/python-source",
        "python-source.wasm",
    )
    .is_none()
    {
        return;
    }
    let home = Home::empty();
    let printed = scaffold_and_test(&home, "py-source", "source", "python");
    assert!(printed.contains("\"type\""), "{printed}");
}

#[test]
fn plugin_test_exits_non_zero_when_the_plugin_refuses_its_input() {
    let home = Home::empty();
    let body = home.path().join("not-json");
    std::fs::write(&body, "not json").expect("written");
    // The bundled generic source, as the build script built it.
    let generic = target_dir().join("wasm-plugins/wasm32-wasip2/plugin/mecha_plugin_generic.wasm");
    let (ok, stdout, stderr) = home.mecha(&[
        "plugin",
        "test",
        generic.to_str().expect("utf-8"),
        "--body",
        body.to_str().expect("utf-8"),
        "--json",
    ]);
    assert!(!ok, "a refused request is a failed test:\n{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(
        report["outcome"]["error"]["kind"], "bad-request",
        "{report}"
    );
    assert!(stderr.contains("did not succeed"), "{stderr}");
}
