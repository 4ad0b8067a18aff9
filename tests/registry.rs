//! `mecha plugin push` and `mecha plugin install oci://...` against a real OCI registry:
//! Debian's `docker-registry` (distribution 2.8), started by each test on a loopback port with
//! its storage in a temporary directory, and stopped when the test ends.
//!
//! Outside CI a test skips, saying why, when `/usr/bin/docker-registry` (or `minisign`, for the
//! signed test) is missing; with `CI=true` (where `.ci/run` installs both) it fails instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::support::daemon::{Home, binary, free_port};
use crate::support::plugins;

const REGISTRY: &str = "/usr/bin/docker-registry";
const USER: &str = "mecha";
const PASSWORD: &str = "mecha-registry-test";
/// `PASSWORD` hashed with bcrypt (cost 5), as distribution's htpasswd backend reads it; made once
/// with Python's `crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))`.
const PASSWORD_BCRYPT: &str = "$2b$05$DD3NnEBJaiTvEtyqBbsDfeJ61cTh1CRBGj2G7t37h63O5bvH/gUH2";

/// Whether a test that needs `what` may run; says why not outside CI, fails under CI.
fn available(test: &str, what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("CI=true, so {test} must run, but {what} is not installed (.ci/run installs it)");
    }
    eprintln!("skipping {test}: {what} is not installed (apt-get install {what})");
    false
}

/// A distribution registry on a loopback port, killed when dropped.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    /// Starts a registry; with `auth`, one that asks for [`USER`] and [`PASSWORD`] (HTTP Basic).
    fn start(test: &str, auth: bool) -> Option<Registry> {
        if !available(test, "docker-registry", Path::new(REGISTRY).is_file()) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if auth {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{USER}:{PASSWORD_BCRYPT}\n")).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: mecha-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new(REGISTRY)
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry { child, dir, port };
        registry.wait_until_listening();
        Some(registry)
    }

    fn wait_until_listening(&self) {
        // Polls rather than sleeping a fixed time; gives up after 30 s of attempts, printing
        // the registry's log.
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start listening:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `oci://127.0.0.1:PORT/REPO`.
    fn reference(&self, repository: &str) -> String {
        format!("oci://127.0.0.1:{}/{repository}", self.port)
    }

    /// Where the registry keeps the blob `sha256:HEX` on disk.
    fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one `mecha` run printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `mecha ARGS` in `home`, with `stdin` on standard input and Docker's config in
/// `docker_config` (an empty directory unless the test writes one).
fn mecha(home: &Home, docker_config: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(binary())
        .args(args)
        .env("MECHA_HOME", home.path())
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("MECHA_DB_PATH")
        .env_remove("MECHA_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mecha runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    let output = child.wait_with_output().expect("mecha ends");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The `digest: sha256:...` line `mecha plugin push` prints.
fn pushed_digest(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("digest: "))
        .unwrap_or_else(|| panic!("no digest in {stdout}"))
        .to_owned()
}

/// The installed plugin `name` in `plugin ls --json`, if any.
fn listed(home: &Home, docker_config: &Path, name: &str) -> Option<serde_json::Value> {
    let run = mecha(home, docker_config, &["plugin", "ls", "--json"], "");
    assert!(run.ok, "{}", run.stderr);
    let plugins: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    plugins
        .as_array()
        .expect("array")
        .iter()
        .find(|plugin| plugin["name"] == name && plugin["origin"]["kind"] == "installed")
        .cloned()
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
            &tagged,
            "--sha256",
            &sha256_hex(&bytes),
        ],
        "",
    );
    assert!(install.ok, "{}", install.stderr);
    let entry = listed(&home, docker.path(), "panic").expect("panic installed");
    assert_eq!(entry["sha256"], sha256_hex(&bytes));
    assert_eq!(entry["source"], tagged.as_str());

    // By digest, the manifest's digest pins it, and no --sha256 is needed.
    let other = Home::empty();
    let pinned = format!("{}@{digest}", registry.reference("plugins/panic"));
    let install = mecha(&other, docker.path(), &["plugin", "install", &pinned], "");
    assert!(install.ok, "{}", install.stderr);
    assert!(
        install.stdout.contains("installed panic 0.1.0"),
        "{}",
        install.stdout
    );
    assert!(listed(&other, docker.path(), "panic").is_some());
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
    let run = mecha(&home, docker.path(), &["plugin", "install", &pinned], "");
    assert!(!run.ok);
    assert!(
        run.stderr.contains("was changed or corrupted")
            && run
                .stderr
                .contains(&format!("not sha256:{}", sha256_hex(&bytes))),
        "{}",
        run.stderr
    );
    assert!(listed(&home, docker.path(), "panic").is_none());

    // A manifest changed in storage no longer has the digest it is fetched by.
    std::fs::write(&layer, &bytes).expect("restored");
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let manifest_file = registry.blob_file(hex);
    let manifest = std::fs::read_to_string(&manifest_file).expect("manifest blob");
    let changed = manifest.replacen("{", "{ ", 1);
    assert_ne!(changed, manifest);
    std::fs::write(&manifest_file, changed).expect("tampered");
    let run = mecha(&home, docker.path(), &["plugin", "install", &pinned], "");
    assert!(!run.ok);
    assert!(
        run.stderr.contains("was changed or corrupted") && run.stderr.contains(&digest),
        "{}",
        run.stderr
    );
    assert!(listed(&home, docker.path(), "panic").is_none());
}

#[test]
fn a_signature_pushed_beside_the_plugin_is_found_at_install() {
    let test = "a_signature_pushed_beside_the_plugin_is_found_at_install";
    let minisign = Command::new("minisign").arg("-v").output().is_ok();
    if !available(test, "minisign", minisign) {
        return;
    }
    let Some(registry) = Registry::start(test, false) else {
        return;
    };
    let docker = tempfile::tempdir().expect("temp dir");
    let keys = tempfile::tempdir().expect("temp dir");
    let home = Home::empty();
    let (public, secret) = (keys.path().join("key.pub"), keys.path().join("key.sec"));
    let generated = Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .output()
        .expect("minisign runs");
    assert!(generated.status.success(), "{generated:?}");
    let wasm = keys.path().join("panic.wasm");
    std::fs::copy(plugins::path("panic"), &wasm).expect("copied");
    let signed = Command::new("minisign")
        .arg("-S")
        .arg("-s")
        .arg(&secret)
        .arg("-m")
        .arg(&wasm)
        .output()
        .expect("minisign runs");
    assert!(signed.status.success(), "{signed:?}");
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
    let install = mecha(&home, docker.path(), &["plugin", "install", &tagged], "");
    assert!(install.ok, "{}", install.stderr);
    assert!(install.stdout.contains("signed by:"), "{}", install.stdout);
    let entry = listed(&home, docker.path(), "panic").expect("installed");
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
    let install = mecha(&home, docker.path(), &["plugin", "install", &unsigned], "");
    assert!(!install.ok, "admitted unsigned by tag: {}", install.stdout);
    assert!(install.stderr.contains("--sha256"), "{}", install.stderr);
    // Nor is the signed one where its key is not trusted.
    let other = Home::empty();
    let install = mecha(&other, docker.path(), &["plugin", "install", &tagged], "");
    assert!(
        !install.ok,
        "an untrusted key admitted it: {}",
        install.stdout
    );
    assert!(listed(&other, docker.path(), "panic").is_none());
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
    let run = mecha(&home, docker.path(), &["plugin", "install", &pinned], "");
    assert!(!run.ok);
    assert!(
        run.stderr.contains("refused with the credentials given")
            && !run.stderr.contains("not-the-password"),
        "{}",
        run.stderr
    );

    write_docker_config(PASSWORD);
    let run = mecha(&home, docker.path(), &["plugin", "install", &pinned], "");
    assert!(run.ok, "{}", run.stderr);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    assert!(listed(&home, docker.path(), "panic").is_some());
}
