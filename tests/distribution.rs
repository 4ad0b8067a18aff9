//! Plugins installed from URLs, pinned by a digest or signed with minisign: a real HTTP file
//! server on loopback, keys and signatures made by the real `minisign` tool, the real `mecha`
//! binary, and the daemon serving what was installed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mecha::digest::sha256_hex;

use crate::support::daemon::{Daemon, Home};
use crate::support::minisign::Key;
use crate::support::plugins;

/// What the file server answers at a path.
#[derive(Clone)]
enum Entry {
    File(Vec<u8>),
    Redirect(String),
}

/// An HTTP file server on 127.0.0.1, on a thread and runtime of its own, so that tests can run
/// the (blocking) CLI while it answers.
struct FileServer {
    base: String,
}

impl FileServer {
    fn start(entries: Vec<(&str, Entry)>) -> FileServer {
        let entries: Arc<HashMap<String, Entry>> = Arc::new(
            entries
                .into_iter()
                .map(|(path, entry)| (path.to_owned(), entry))
                .collect(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(move |uri: Uri| {
                    let entries = entries.clone();
                    async move { answer(&entries, uri.path()) }
                });
                axum::serve(listener, app).await.expect("served");
            });
        });
        FileServer {
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn answer(entries: &HashMap<String, Entry>, path: &str) -> Response {
    match entries.get(path) {
        Some(Entry::File(bytes)) => bytes.clone().into_response(),
        Some(Entry::Redirect(to)) => {
            (StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

/// Nothing of the plugin `name` was written into the home.
fn assert_nothing_installed(home: &Home, name: &str) {
    assert!(home.installed(name).is_none(), "{name} is not listed");
    let plugins = home.path().join("plugins");
    let files: Vec<String> = std::fs::read_dir(&plugins)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|file| file != "lock.json" && file != ".lock")
                .collect()
        })
        .unwrap_or_default();
    assert!(
        files.is_empty(),
        "nothing written under plugins/: {files:?}"
    );
}

/// A URL install pinned by the right digest is installed, follows a redirect within its origin,
/// records the digest and the URL, and the daemon serves the plugin.
#[tokio::test]
async fn a_url_pinned_by_its_digest_is_installed_and_served() {
    let wasm = std::fs::read(plugins::path("panic")).expect("built");
    let digest = sha256_hex(&wasm);
    let server = FileServer::start(vec![
        ("/releases/panic.wasm", Entry::File(wasm)),
        (
            "/latest/panic.wasm",
            Entry::Redirect("/releases/panic.wasm".into()),
        ),
    ]);
    let home = Home::new("");
    let url = server.url("/latest/panic.wasm?token=not-recorded");
    let (ok, stdout, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        &url,
        "--sha256",
        &digest.to_uppercase(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("installed panic"), "{stdout}");

    let entry = home.installed("panic").expect("listed");
    assert_eq!(entry["sha256"], digest.as_str());
    assert_eq!(
        entry["source"],
        server.url("/latest/panic.wasm"),
        "no query"
    );
    assert!(entry.get("signer").is_none(), "{entry}");
    let lock =
        std::fs::read_to_string(home.path().join("plugins").join("lock.json")).expect("lock");
    assert!(!lock.contains("not-recorded"), "{lock}");

    let daemon = Daemon::start(&home);
    let response = daemon
        .client()
        .post(daemon.url("/webhook/panic"))
        .body("ok")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        response.status(),
        202,
        "the installed plugin serves its webhook"
    );
}

/// A wrong digest, a URL with neither digest nor signature, a redirect to another origin and
/// plain HTTP beyond loopback are each refused, with nothing written.
#[test]
fn unpinned_or_mismatched_downloads_are_refused_and_nothing_is_written() {
    let wasm = std::fs::read(plugins::path("panic")).expect("built");
    let digest = sha256_hex(&wasm);
    // Another port is another origin.
    let elsewhere = FileServer::start(vec![("/panic.wasm", Entry::File(wasm.clone()))]);
    let server = FileServer::start(vec![
        ("/panic.wasm", Entry::File(wasm)),
        ("/away.wasm", Entry::Redirect(elsewhere.url("/panic.wasm"))),
    ]);
    let home = Home::new("");
    let url = server.url("/panic.wasm");

    let wrong = sha256_hex(b"something else");
    let (ok, _, stderr) = home.mecha(&["plugin", "install", "--yes", &url, "--sha256", &wrong]);
    assert!(!ok);
    assert!(stderr.contains(&format!("not the {wrong}")), "{stderr}");
    assert!(
        stderr.contains(&digest),
        "the actual digest is named: {stderr}"
    );
    assert_nothing_installed(&home, "panic");

    let (ok, _, stderr) = home.mecha(&["plugin", "install", "--yes", &url]);
    assert!(!ok);
    assert!(
        stderr.contains("neither --sha256 nor a signature"),
        "{stderr}"
    );
    assert_nothing_installed(&home, "panic");

    let (ok, _, stderr) = home.mecha(&["plugin", "install", "--yes", &url, "--sha256", "abc"]);
    assert!(!ok);
    assert!(stderr.contains("not a sha256 digest"), "{stderr}");

    let away = server.url("/away.wasm");
    let (ok, _, stderr) = home.mecha(&["plugin", "install", "--yes", &away, "--sha256", &digest]);
    assert!(!ok);
    assert!(stderr.contains("another origin"), "{stderr}");
    assert!(
        stderr.contains(&format!("to {}", elsewhere.base)),
        "the redirect's origin is named: {stderr}"
    );
    assert_nothing_installed(&home, "panic");

    // Refused before any connection: the name need not resolve.
    let (ok, _, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        "http://plugins.example.invalid/panic.wasm",
        "--sha256",
        &digest,
    ]);
    assert!(!ok);
    assert!(stderr.contains("plain HTTP"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");

    let (ok, _, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        &server.url("/missing.wasm"),
        "--sha256",
        &digest,
    ]);
    assert!(!ok);
    assert!(stderr.contains("answered 404"), "{stderr}");
    assert_nothing_installed(&home, "panic");
}

/// A plugin signed by a trusted key installs from a URL without a digest (its signature is
/// fetched from `<url>.minisig`); `plugin ls` and `inspect` show the key, the digest and the
/// source. Tampered bytes and an untrusted key are refused.
#[test]
fn signatures_by_trusted_keys_are_accepted_and_everything_else_refused() {
    let keys = tempfile::tempdir().expect("temp");
    let publisher = Key::generate(keys.path(), "publisher");
    let stranger = Key::generate(keys.path(), "stranger");
    let wasm = std::fs::read(plugins::path("panic")).expect("built");
    let file = keys.path().join("panic.wasm");
    std::fs::write(&file, &wasm).expect("copied");
    let signature = publisher.sign(&file);
    let stranger_file = keys.path().join("stranger.wasm");
    std::fs::write(&stranger_file, &wasm).expect("copied");
    let stranger_signature = stranger.sign(&stranger_file);
    let mut tampered = wasm.clone();
    tampered.extend_from_slice(b"\0");
    let server = FileServer::start(vec![
        ("/good/panic.wasm", Entry::File(wasm.clone())),
        ("/good/panic.wasm.minisig", Entry::File(signature.clone())),
        ("/tampered/panic.wasm", Entry::File(tampered)),
        ("/tampered/panic.wasm.minisig", Entry::File(signature)),
        ("/stranger/panic.wasm", Entry::File(wasm.clone())),
        (
            "/stranger/panic.wasm.minisig",
            Entry::File(stranger_signature),
        ),
    ]);
    let home = Home::new("");

    let (ok, _, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        &server.url("/good/panic.wasm"),
    ]);
    assert!(!ok, "no key is trusted yet");
    assert!(
        stderr.contains(&format!("key {}", publisher.id)),
        "{stderr}"
    );
    assert!(stderr.contains("not trusted"), "{stderr}");
    assert_nothing_installed(&home, "panic");

    let (ok, stdout, stderr) = home.mecha(&["plugin", "trust", "add", text(&publisher.public)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&publisher.id), "{stdout}");
    let (ok, stdout, _) = home.mecha(&["plugin", "trust", "ls"]);
    assert!(ok);
    assert!(stdout.contains(&publisher.id), "{stdout}");
    assert!(!stdout.contains(&stranger.id), "{stdout}");

    let (ok, _, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        &server.url("/tampered/panic.wasm"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("does not match its bytes"), "{stderr}");
    assert_nothing_installed(&home, "panic");

    let (ok, _, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        &server.url("/stranger/panic.wasm"),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("key {}, which is not trusted", stranger.id)),
        "{stderr}"
    );
    assert_nothing_installed(&home, "panic");

    let url = server.url("/good/panic.wasm");
    let (ok, stdout, stderr) = home.mecha(&["plugin", "install", "--yes", &url]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("signed by: {}", publisher.id)),
        "{stdout}"
    );

    let entry = home.installed("panic").expect("listed");
    assert_eq!(entry["signer"], publisher.id.as_str());
    assert_eq!(entry["source"], url.as_str());
    assert_eq!(entry["sha256"], sha256_hex(&wasm).as_str());
    let (ok, stdout, _) = home.mecha(&["plugin", "ls"]);
    assert!(ok);
    let line = stdout
        .lines()
        .find(|line| line.starts_with("panic"))
        .expect("listed");
    assert!(
        line.contains(&publisher.id) && line.contains(&url),
        "{line}"
    );
    let (ok, stdout, _) = home.mecha(&["plugin", "inspect", "panic"]);
    assert!(ok);
    assert!(
        stdout.contains(&format!("signed by: {}", publisher.id)),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("source:    {url}")), "{stdout}");
    assert!(
        stdout.contains(&format!("sha256:    {}", sha256_hex(&wasm))),
        "{stdout}"
    );

    let (ok, _, stderr) = home.mecha(&["plugin", "trust", "rm", &publisher.id]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = home.mecha(&["plugin", "trust", "ls"]);
    assert!(ok);
    assert!(!stdout.contains(&publisher.id), "{stdout}");
}

/// With `plugins.require_signature: true` nothing unsigned is installed, a digest being no
/// substitute; `--signature FILE` signs a local file.
#[test]
fn require_signature_refuses_unsigned_plugins_and_signature_files_sign_local_ones() {
    let keys = tempfile::tempdir().expect("temp");
    let publisher = Key::generate(keys.path(), "publisher");
    let wasm = std::fs::read(plugins::path("panic")).expect("built");
    let file = keys.path().join("panic.wasm");
    std::fs::write(&file, &wasm).expect("copied");
    let signature = publisher.sign(&file);
    let server = FileServer::start(vec![("/panic.wasm", Entry::File(wasm.clone()))]);
    let home = Home::new("plugins:\n  require_signature: true\n");
    let (ok, _, stderr) = home.mecha(&["plugin", "trust", "add", text(&publisher.public)]);
    assert!(ok, "{stderr}");

    let (ok, _, stderr) = home.mecha(&["plugin", "install", "--yes", text(&file)]);
    assert!(!ok);
    assert!(stderr.contains("plugins.require_signature"), "{stderr}");
    assert_nothing_installed(&home, "panic");
    let (ok, _, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        &server.url("/panic.wasm"),
        "--sha256",
        &sha256_hex(&wasm),
    ]);
    assert!(!ok);
    assert!(stderr.contains("is not signed"), "{stderr}");
    assert_nothing_installed(&home, "panic");

    let signature_file = keys.path().join("detached.minisig");
    std::fs::write(&signature_file, signature).expect("written");
    let (ok, stdout, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        text(&file),
        "--signature",
        text(&signature_file),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("signed by: {}", publisher.id)),
        "{stdout}"
    );
    let entry = home.installed("panic").expect("listed");
    assert_eq!(entry["signer"], publisher.id.as_str());
    assert_eq!(entry["source"], text(&file));
}
