//! `mecha plugin push` and `mecha plugin install oci://...` against a real OCI registry:
//! Debian's `docker-registry` (distribution 2.8), started by each test on a loopback port with
//! its storage in a temporary directory, and stopped when the test ends.
//!
//! Outside CI a test skips, saying why, when `/usr/bin/docker-registry` (or `minisign`, for the
//! signed test) is missing; with `CI=true` (where `.ci/run` installs both) it fails instead.

use base64::Engine as _;
use mecha::digest::sha256_hex;

use crate::support::daemon::Home;
use crate::support::minisign::{Key, minisign_present};
use crate::support::plugins;
use crate::support::registry::{PASSWORD, Registry, USER, available, mecha};

/// The `digest: sha256:...` line `mecha plugin push` prints.
fn pushed_digest(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("digest: "))
        .unwrap_or_else(|| panic!("no digest in {stdout}"))
        .to_owned()
}

#[test]
fn a_pushed_plugin_installs_by_tag_and_by_digest() {
    let Some(registry) = Registry::start("a_pushed_plugin_installs_by_tag_and_by_digest", false)
    else {
        return;
    };
    let docker = tempfile::tempdir().expect("temp dir");
    let home = Home::empty();
    let wasm = plugins::path("panic");
    let tagged = format!("{}:v1", registry.reference("plugins/panic"));
    let push = mecha(
        &home,
        docker.path(),
        &["plugin", "push", wasm.to_str().expect("utf-8"), &tagged],
        "",
    );
    assert!(push.ok, "{}\n{}", push.stderr, registry.log());
    assert!(
        push.stdout.contains("pushed panic 0.1.0"),
        "{}",
        push.stdout
    );
    let digest = pushed_digest(&push.stdout);

    // The registry holds the CNCF wasm layout: a wasm config and one application/wasm layer.
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(registry.blob_file(hex)).expect("manifest blob"))
            .expect("manifest json");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let config_hex = manifest["config"]["digest"]
        .as_str()
        .and_then(|digest| digest.strip_prefix("sha256:"))
        .expect("config digest");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(registry.blob_file(config_hex)).expect("config"))
            .expect("config json");
    assert_eq!(config["os"], "wasip2");
    assert!(config["created"].is_string(), "{config}");
    let exports = config["component"]["exports"].as_array().expect("exports");
    assert!(
        exports.iter().any(|name| name
            .as_str()
            .is_some_and(|name| name.starts_with("mecha:plugin/"))),
        "{config}"
    );
    let bytes = std::fs::read(&wasm).expect("plugin");
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(1));
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(
        manifest["layers"][0]["digest"],
        format!("sha256:{}", sha256_hex(&bytes))
    );

    // By tag, the component's sha256 pins what is installed.
    let install = mecha(
        &home,
        docker.path(),
        &[
            "plugin",
            "install",
            "--yes",
            &tagged,
            "--sha256",
            &sha256_hex(&bytes),
        ],
        "",
    );
    assert!(install.ok, "{}", install.stderr);
    let entry = home.installed("panic").expect("panic installed");
    assert_eq!(entry["sha256"], sha256_hex(&bytes));
    assert_eq!(entry["source"], tagged.as_str());

    // By digest, the manifest's digest pins it, and no --sha256 is needed.
    let other = Home::empty();
    let pinned = format!("{}@{digest}", registry.reference("plugins/panic"));
    let install = mecha(
        &other,
        docker.path(),
        &["plugin", "install", "--yes", &pinned],
        "",
    );
    assert!(install.ok, "{}", install.stderr);
    assert!(
        install.stdout.contains("installed panic 0.1.0"),
        "{}",
        install.stdout
    );
    assert!(other.installed("panic").is_some());
}

#[test]
fn tampered_blobs_and_wrong_digests_are_refused() {
    let Some(registry) = Registry::start("tampered_blobs_and_wrong_digests_are_refused", false)
    else {
        return;
    };
    let docker = tempfile::tempdir().expect("temp dir");
    let home = Home::empty();
    let wasm = plugins::path("panic");
    let tagged = format!("{}:v1", registry.reference("plugins/panic"));
    let push = mecha(
        &home,
        docker.path(),
        &["plugin", "push", wasm.to_str().expect("utf-8"), &tagged],
        "",
    );
    assert!(push.ok, "{}", push.stderr);
    let digest = pushed_digest(&push.stdout);

    // A digest the registry does not hold.
    let mut wrong = digest.clone();
    let last = if wrong.ends_with('0') { "1" } else { "0" };
    wrong.replace_range(wrong.len() - 1.., last);
    let run = mecha(
        &home,
        docker.path(),
        &[
            "plugin",
            "install",
            "--yes",
            &format!("{}@{wrong}", registry.reference("plugins/panic")),
        ],
        "",
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("does not exist in the registry"),
        "{}",
        run.stderr
    );

    // The component's bytes changed in the registry's storage behind its back.
    let bytes = std::fs::read(&wasm).expect("plugin");
    let layer = registry.blob_file(&sha256_hex(&bytes));
    let mut tampered = std::fs::read(&layer).expect("layer blob");
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    std::fs::write(&layer, &tampered).expect("tampered");
    let pinned = format!("{}@{digest}", registry.reference("plugins/panic"));
    let run = mecha(
        &home,
        docker.path(),
        &["plugin", "install", "--yes", &pinned],
        "",
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("was changed or corrupted")
            && run
                .stderr
                .contains(&format!("not sha256:{}", sha256_hex(&bytes))),
        "{}",
        run.stderr
    );
    assert!(home.installed("panic").is_none());

    // A manifest changed in storage no longer has the digest it is fetched by.
    std::fs::write(&layer, &bytes).expect("restored");
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let manifest_file = registry.blob_file(hex);
    let manifest = std::fs::read_to_string(&manifest_file).expect("manifest blob");
    let changed = manifest.replacen("{", "{ ", 1);
    assert_ne!(changed, manifest);
    std::fs::write(&manifest_file, changed).expect("tampered");
    let run = mecha(
        &home,
        docker.path(),
        &["plugin", "install", "--yes", &pinned],
        "",
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("was changed or corrupted") && run.stderr.contains(&digest),
        "{}",
        run.stderr
    );
    assert!(home.installed("panic").is_none());
}

#[test]
fn a_signature_pushed_beside_the_plugin_is_found_at_install() {
    let test = "a_signature_pushed_beside_the_plugin_is_found_at_install";
    if !available(test, "minisign", minisign_present()) {
        return;
    }
    let Some(registry) = Registry::start(test, false) else {
        return;
    };
    let docker = tempfile::tempdir().expect("temp dir");
    let keys = tempfile::tempdir().expect("temp dir");
    let home = Home::empty();
    let key = Key::generate(keys.path(), "key");
    let public = key.public.clone();
    let wasm = keys.path().join("panic.wasm");
    std::fs::copy(plugins::path("panic"), &wasm).expect("copied");
    key.sign(&wasm);
    let signature = keys.path().join("panic.wasm.minisig");

    let tagged = format!("{}:signed", registry.reference("plugins/panic"));
    let push = mecha(
        &home,
        docker.path(),
        &[
            "plugin",
            "push",
            wasm.to_str().expect("utf-8"),
            &tagged,
            "--signature",
            signature.to_str().expect("utf-8"),
        ],
        "",
    );
    assert!(push.ok, "{}", push.stderr);
    let digest = pushed_digest(&push.stdout);
    let tag = format!(
        "sha256-{}.minisig",
        digest.strip_prefix("sha256:").expect("sha256")
    );
    assert!(
        push.stdout.contains(&format!("signature: {tag}")),
        "{}",
        push.stdout
    );

    let trust = mecha(
        &home,
        docker.path(),
        &["plugin", "trust", "add", public.to_str().expect("utf-8")],
        "",
    );
    assert!(trust.ok, "{}", trust.stderr);
    // By tag, with no --sha256: only the signature found beside it admits it.
    let install = mecha(
        &home,
        docker.path(),
        &["plugin", "install", "--yes", &tagged],
        "",
    );
    assert!(install.ok, "{}", install.stderr);
    assert!(install.stdout.contains("signed by:"), "{}", install.stdout);
    let entry = home.installed("panic").expect("installed");
    assert!(entry["signer"].is_string(), "{entry}");

    // Another plugin, pushed with no signature, is not admitted by tag alone. (The same
    // component under another tag would be: its manifest, and so its signature tag, is the same.)
    let unsigned = format!("{}:unsigned", registry.reference("plugins/bomb"));
    let push = mecha(
        &home,
        docker.path(),
        &[
            "plugin",
            "push",
            plugins::path("bomb").to_str().expect("utf-8"),
            &unsigned,
        ],
        "",
    );
    assert!(push.ok, "{}", push.stderr);
    let install = mecha(
        &home,
        docker.path(),
        &["plugin", "install", "--yes", &unsigned],
        "",
    );
    assert!(!install.ok, "admitted unsigned by tag: {}", install.stdout);
    assert!(install.stderr.contains("--sha256"), "{}", install.stderr);
    // Nor is the signed one where its key is not trusted.
    let other = Home::empty();
    let install = mecha(
        &other,
        docker.path(),
        &["plugin", "install", "--yes", &tagged],
        "",
    );
    assert!(
        !install.ok,
        "an untrusted key admitted it: {}",
        install.stdout
    );
    assert!(other.installed("panic").is_none());
}

#[test]
fn a_registry_asking_for_a_login_gets_it_from_stdin_or_docker_config() {
    let Some(registry) = Registry::start(
        "a_registry_asking_for_a_login_gets_it_from_stdin_or_docker_config",
        true,
    ) else {
        return;
    };
    let docker = tempfile::tempdir().expect("temp dir");
    let home = Home::empty();
    let wasm = plugins::path("panic");
    let wasm = wasm.to_str().expect("utf-8");
    let tagged = format!("{}:v1", registry.reference("private/panic"));

    let run = mecha(&home, docker.path(), &["plugin", "push", wasm, &tagged], "");
    assert!(!run.ok);
    assert!(
        run.stderr.contains("asks for a username and password")
            && run.stderr.contains("--password-stdin"),
        "{}",
        run.stderr
    );

    let push = mecha(
        &home,
        docker.path(),
        &[
            "plugin",
            "push",
            wasm,
            &tagged,
            "--username",
            USER,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(push.ok, "{}\n{}", push.stderr, registry.log());
    assert!(!push.stdout.contains(PASSWORD) && !push.stderr.contains(PASSWORD));
    let digest = pushed_digest(&push.stdout);
    let pinned = format!("{}@{digest}", registry.reference("private/panic"));

    // A wrong password in Docker's config file is refused, and never printed.
    let host = format!("127.0.0.1:{}", registry.port);
    let write_docker_config = |password: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        std::fs::write(
            docker.path().join("config.json"),
            serde_json::json!({"auths": {host.clone(): {"auth": auth}}}).to_string(),
        )
        .expect("docker config");
    };
    write_docker_config("not-the-password");
    let run = mecha(
        &home,
        docker.path(),
        &["plugin", "install", "--yes", &pinned],
        "",
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("refused with the credentials given")
            && !run.stderr.contains("not-the-password"),
        "{}",
        run.stderr
    );

    write_docker_config(PASSWORD);
    let run = mecha(
        &home,
        docker.path(),
        &["plugin", "install", "--yes", &pinned],
        "",
    );
    assert!(run.ok, "{}", run.stderr);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    assert!(home.installed("panic").is_some());
}

/// Runs a script of the ORAS project's Python client (`oras` on PyPI) with `args`.
fn oras(script: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs")
}

/// Pushes a file as an OCI artifact: (registry host, target, wasm file, config file).
const ORAS_PUSH: &str = r#"
import sys, oras.client
host, target, wasm, config = sys.argv[1:5]
client = oras.client.OrasClient(hostname=host, insecure=True)
response = client.push(target=target, files=[wasm + ":application/wasm"],
                       manifest_config=config + ":application/vnd.wasm.config.v0+json",
                       disable_path_validation=True)
response.raise_for_status()
"#;

/// Pulls an artifact's layers into a directory and prints their paths: (host, target, dir).
const ORAS_PULL: &str = r#"
import sys, oras.client
host, target, outdir = sys.argv[1:4]
client = oras.client.OrasClient(hostname=host, insecure=True)
for path in client.pull(target=target, outdir=outdir):
    print(path)
"#;

#[test]
fn oras_pushes_what_mecha_installs_and_pulls_what_mecha_pushes() {
    let test = "oras_pushes_what_mecha_installs_and_pulls_what_mecha_pushes";
    let client = std::process::Command::new("python3")
        .args(["-c", "import oras.client"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !available(
        test,
        "the oras Python client (pip install oras==0.2.43)",
        client,
    ) {
        return;
    }
    let Some(registry) = Registry::start(test, false) else {
        return;
    };
    let docker = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
    let home = Home::empty();
    let host = format!("127.0.0.1:{}", registry.port);
    let wasm = std::fs::read(plugins::path("panic")).expect("built");
    let digest = sha256_hex(&wasm);
    let file = work.path().join("panic.wasm");
    std::fs::write(&file, &wasm).expect("written");
    // The config `wkg oci push` writes for a component.
    let config = work.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "created": "2026-01-01T00:00:00Z",
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [format!("sha256:{digest}")],
            "component": {"exports": ["mecha:plugin/source-api@0.1.0"], "imports": []},
        })
        .to_string(),
    )
    .expect("config written");

    let target = format!("{host}/thirdparty/panic:1.0");
    let pushed = oras(ORAS_PUSH, &[&host, &target, text(&file), text(&config)]);
    assert!(
        pushed.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&pushed.stderr),
        registry.log()
    );
    let install = mecha(
        &home,
        docker.path(),
        &[
            "plugin",
            "install",
            "--yes",
            &format!("oci://{target}"),
            "--sha256",
            &digest,
        ],
        "",
    );
    assert!(install.ok, "{}", install.stderr);
    assert_eq!(
        home.installed("panic").expect("installed")["sha256"],
        digest
    );

    let ours = format!("{host}/mecha/panic:1.0");
    let push = mecha(
        &home,
        docker.path(),
        &["plugin", "push", text(&file), &format!("oci://{ours}")],
        "",
    );
    assert!(push.ok, "{}", push.stderr);
    let out = work.path().join("pulled");
    let pulled = oras(ORAS_PULL, &[&host, &ours, text(&out)]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let paths = String::from_utf8_lossy(&pulled.stdout).into_owned();
    let layers: Vec<&str> = paths.lines().collect();
    assert_eq!(layers.len(), 1, "one layer: {paths}");
    assert_eq!(
        std::fs::read(layers[0]).expect("pulled layer"),
        wasm,
        "oras reads back the component mecha pushed"
    );
}

fn text(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8")
}
