//! The Docker engine for the managed-worker tests, and their image: built by the tests from
//! scratch around a statically linked `mecha-worker` running its echo backend, so no registry
//! is needed.
//!
//! Outside CI the Docker tests skip, saying why, when no engine is reachable; with `CI=true`
//! a missing engine fails them, so CI always runs them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The image every Docker test runs.
pub const IMAGE: &str = "mecha-test-worker:e2e";

/// The static target `mecha-worker` is built for.
const STATIC_TARGET: &str = "x86_64-unknown-linux-musl";

/// Whether the Docker tests can run: the engine answers and the test image is built. Returns
/// `false` (after saying so) when there is no engine outside CI; panics under CI.
pub fn ready(test: &str) -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    match READY.get_or_init(prepare) {
        Ok(()) => true,
        Err(reason) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("CI=true, so the Docker tests must run, but: {reason}")
        }
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            false
        }
    }
}

fn prepare() -> Result<(), String> {
    let version = docker(&["version", "--format", "{{.Server.Version}}"])
        .map_err(|err| format!("no Docker engine is reachable ({err})"))?;
    if version.trim().is_empty() {
        return Err("the Docker engine did not report its version".to_owned());
    }
    let binary = build_static_worker()?;
    let context = tempfile::tempdir().map_err(|err| err.to_string())?;
    std::fs::copy(&binary, context.path().join("mecha-worker")).map_err(|err| err.to_string())?;
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY mecha-worker /mecha-worker\nENTRYPOINT [\"/mecha-worker\", \"--echo\"]\n",
    )
    .map_err(|err| err.to_string())?;
    let context = context.path().to_str().ok_or("temp path is not UTF-8")?;
    docker(&["build", "--quiet", "--tag", IMAGE, context])
        .map_err(|err| format!("building the test image failed: {err}"))?;
    Ok(())
}

/// Builds `mecha-worker` for the static target into a target directory of its own (the test
/// run's own directory is in use by the cargo that runs the tests).
fn build_static_worker() -> Result<PathBuf, String> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = super::daemon::target_dir().join("static-worker");
    let output = Command::new(env!("CARGO"))
        .current_dir(&workspace)
        .args(["build", "-p", "mecha-worker", "--target", STATIC_TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .map_err(|err| format!("cargo did not run: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "building mecha-worker for {STATIC_TARGET} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir
        .join(STATIC_TARGET)
        .join("debug")
        .join("mecha-worker"))
}

/// Runs `docker ARGS` and returns its stdout, or its stderr as the error. BuildKit is turned
/// off: the classic builder handles `FROM scratch` without any registry.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .map_err(|err| format!("the docker command did not run: {err}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// `docker inspect` of one container, or `None` when it does not exist.
pub fn inspect(container: &str) -> Option<serde_json::Value> {
    let text = docker(&["inspect", container]).ok()?;
    let mut all: Vec<serde_json::Value> = serde_json::from_str(&text).ok()?;
    (!all.is_empty()).then(|| all.remove(0))
}

/// Names of the containers (running or not) labelled `mecha.worker=<worker>`.
pub fn containers_of(worker: &str) -> Vec<String> {
    docker(&[
        "ps",
        "--all",
        "--filter",
        &format!("label=mecha.worker={worker}"),
        "--format",
        "{{.Names}}",
    ])
    .expect("docker ps runs")
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Removes whatever an earlier, interrupted run of a test left for `worker`.
pub fn clean(worker: &str) {
    for name in containers_of(worker) {
        let _ = docker(&["rm", "--force", &name]);
    }
}
