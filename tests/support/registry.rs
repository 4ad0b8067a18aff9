//! A real OCI registry for the tests: Debian's `docker-registry` (distribution 2.8), started on
//! a loopback port with its storage in a temporary directory and stopped when dropped; and
//! `mecha` runs with Docker's config and standard input of the test's choosing.
//!
//! Outside CI a test skips, saying why, when `/usr/bin/docker-registry` is missing; with
//! `CI=true` (where `.ci/run` installs it) it fails instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::daemon::{Home, binary, free_port};

pub const REGISTRY: &str = "/usr/bin/docker-registry";
pub const USER: &str = "mecha";
pub const PASSWORD: &str = "mecha-registry-test";
/// `PASSWORD` hashed with bcrypt (cost 5), as distribution's htpasswd backend reads it; made once
/// with Python's `crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))`.
pub const PASSWORD_BCRYPT: &str = "$2b$05$DD3NnEBJaiTvEtyqBbsDfeJ61cTh1CRBGj2G7t37h63O5bvH/gUH2";

/// Whether a test that needs `what` may run; says why not outside CI, fails under CI.
pub fn available(test: &str, what: &str, present: bool) -> bool {
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
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Registry {
    /// Starts a registry; with `auth`, one that asks for [`USER`] and [`PASSWORD`] (HTTP Basic).
    pub fn start(test: &str, auth: bool) -> Option<Registry> {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `oci://127.0.0.1:PORT/REPO`.
    pub fn reference(&self, repository: &str) -> String {
        format!("oci://127.0.0.1:{}/{repository}", self.port)
    }

    /// Where the registry keeps the blob `sha256:HEX` on disk.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
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
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `mecha ARGS` in `home`, with `stdin` on standard input and Docker's config in
/// `docker_config` (an empty directory unless the test writes one).
pub fn mecha(home: &Home, docker_config: &Path, args: &[&str], stdin: &str) -> Run {
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
