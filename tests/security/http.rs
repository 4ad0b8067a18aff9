//! The daemon's HTTP surface under attack: senders that never finish, bodies larger than
//! allowed, web pages that try to use the API (cross-origin requests, DNS rebinding), the key
//! that guards the API by default, and event lists that must not carry every body.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::daemon::{Daemon, GITHUB_SECRET, Home, client, send_github, status_and_json};
use crate::support::fixtures;
use crate::support::worker::TestWorker;

/// The daemon's default `max_body_bytes` (5 MiB).
const MAX_BODY: usize = 5 * 1024 * 1024;

/// The daemon's default `http.body_memory_bytes` (64 MiB).
const BODY_MEMORY: u64 = 64 * 1024 * 1024;

/// A bound on any one step of these tests, so that a daemon that never answers fails the test
/// instead of hanging it; every assertion is about what happened, not how fast.
const PATIENCE: Duration = Duration::from_secs(60);

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {status}"))
}

fn address(daemon: &Daemon) -> String {
    daemon.base.trim_start_matches("http://").to_owned()
}

/// A connection to the daemon from the loopback address `127.0.0.<host>`, so that a test can
/// be several peers: `http.max_connections_per_ip` counts connections per peer address.
async fn connect_from(daemon: &Daemon, host: u8) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, host], 0)))
        .expect("bind a loopback address");
    let to = address(daemon).parse().expect("the daemon's address");
    socket.connect(to).await.expect("connect")
}

/// The loopback address (`127.0.0.<host>`) of attacker `n` among several peers, each holding
/// fewer connections than the default `http.max_connections_per_ip` (64).
fn attacker_host(n: usize) -> u8 {
    10 + (n / 50) as u8
}

/// Reads what the daemon answers on `stream` until it closes or [`PATIENCE`] runs out.
async fn answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    // A status line is all these tests look at.
                    if answer.windows(4).any(|window| window == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the daemon neither answered nor closed");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the daemon closed `stream` (end of file or reset) within [`PATIENCE`].
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    let result = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    result.is_ok()
}

/// The head of a signed-looking GitHub delivery of `length` bytes (the signature is wrong, but
/// the body must be read before anyone can tell).
fn github_head(daemon: &Daemon, length: u64) -> String {
    format!(
        "POST /webhook/github HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256={}\r\n\
         Content-Length: {length}\r\n\r\n",
        address(daemon),
        "0".repeat(64)
    )
}

/// Finding 1: 150 senders each send a maximum-size body but its last byte, and hold. The old
/// daemon buffered every one of them (77 MB to 847 MB). Now bodies share one memory budget, so
/// the daemon's peak memory stays within the budget plus a small amount per connection, and
/// during the attack a real webhook is still accepted and `/health` still answers. The senders
/// come from three addresses, so that every one of them is served past the per-peer cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_cannot_take_the_daemons_memory_or_its_service() {
    const SENDERS: usize = 150;
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    let push = fixtures::read("github", "push__payload.json");
    assert_eq!(send_github(&daemon, "push", "warm-up", &push).await.0, 202);
    let before = memory_kib(daemon.pid(), "VmRSS");

    // Each sender writes until the daemon stops reading from it (its writes stop getting
    // through) or its body is all sent but the last byte; then it holds the connection open.
    let stalled = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for n in 0..SENDERS {
        let (head, stalled) = (github_head(&daemon, MAX_BODY as u64), stalled.clone());
        let mut stream = connect_from(&daemon, attacker_host(n)).await;
        senders.push(tokio::spawn(async move {
            stream.write_all(head.as_bytes()).await.expect("head");
            let chunk = vec![b'a'; 64 * 1024];
            let mut left = MAX_BODY - 1;
            while left > 0 {
                let n = left.min(chunk.len());
                // A write that cannot get through in 2 s means the daemon stopped reading;
                // mistaking a slow read for that only lessens the attack.
                match tokio::time::timeout(Duration::from_secs(2), stream.write_all(&chunk[..n]))
                    .await
                {
                    Ok(Ok(())) => left -= n,
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            stalled.fetch_add(1, Ordering::SeqCst);
            stream
        }));
    }
    let mut held = Vec::new();
    for sender in senders {
        held.push(
            tokio::time::timeout(PATIENCE, sender)
                .await
                .expect("bounded")
                .expect("sender"),
        );
    }
    assert_eq!(stalled.load(Ordering::SeqCst), SENDERS);

    // Under attack, a real webhook and the health check are served.
    let issue = fixtures::read("github", "issues__opened.payload.json");
    let (status, event) = send_github(&daemon, "issues", "during-attack", &issue).await;
    assert_eq!(status, 202, "{event}");
    let health = client()
        .get(daemon.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);

    // The peak: the shared budget, plus per connection its uncounted first 64 KiB, hyper's
    // 64 KiB read buffer and allocator slack (512 KiB is generous), plus 32 MiB for the rest.
    // Buffering every body would have been 150 x 5 MiB = 750 MiB.
    let peak = memory_kib(daemon.pid(), "VmHWM");
    let bound = BODY_MEMORY / 1024 + SENDERS as u64 * 512 + 32 * 1024;
    assert!(
        peak.saturating_sub(before) < bound,
        "peak RSS grew by {} KiB (from {before} KiB), more than the {bound} KiB bound",
        peak - before
    );
    drop(held);
}

/// Finding 1: a `Content-Length` past `max_body_bytes` is answered 413 from the header alone,
/// before any of the body is read (the old daemon waited for the body).
#[tokio::test]
async fn a_huge_declared_length_is_refused_at_once() {
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    let mut stream = TcpStream::connect(address(&daemon)).await.expect("connect");
    stream
        .write_all(github_head(&daemon, 1_000_000_000_000_000).as_bytes())
        .await
        .expect("head");
    stream.write_all(b"{\"a\":").await.expect("a little body");
    let reply = answer(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");

    // On the API as well, for a caller with the key.
    let mut stream = TcpStream::connect(address(&daemon)).await.expect("connect");
    let head = format!(
        "POST /task HTTP/1.1\r\nHost: {}\r\nX-API-Key: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000000000000000\r\n\r\n{{",
        address(&daemon),
        daemon.api_key
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let reply = answer(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
}

/// Finding 1: 200 connections that send half a header block, and one that sends nothing, are
/// closed once `http.header_timeout_ms` has passed (the old daemon kept all of them after
/// 45 s); a body that stops arriving gets 408 after `http.body_timeout_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_cut_off_after_their_timeouts() {
    let home = Home::new("http:\n  header_timeout_ms: 1000\n  body_timeout_ms: 1000\n");
    let daemon = Daemon::start(&home);
    let mut streams = Vec::new();
    for n in 0..200 {
        let mut stream = connect_from(&daemon, attacker_host(n)).await;
        let half = format!("POST /webhook/github HTTP/1.1\r\nHost: x\r\nX-Partial-{n}: ");
        stream
            .write_all(half.as_bytes())
            .await
            .expect("half a head");
        streams.push(stream);
    }
    streams.push(TcpStream::connect(address(&daemon)).await.expect("connect"));
    for (n, stream) in streams.iter_mut().enumerate() {
        assert!(closed(stream).await, "connection {n} is still open");
    }

    let mut stream = TcpStream::connect(address(&daemon)).await.expect("connect");
    stream
        .write_all(github_head(&daemon, 100).as_bytes())
        .await
        .expect("head");
    stream.write_all(b"{\"half\":").await.expect("half a body");
    let reply = answer(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    let health = client()
        .get(daemon.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
}

/// Finding 1: past `http.max_connections`, a connection waits until one closes instead of
/// being served, so idle connections cannot grow without bound.
#[tokio::test]
async fn connections_past_the_limit_wait_for_a_free_slot() {
    let home = Home::new("http:\n  max_connections: 4\n  header_timeout_ms: 60000\n");
    let daemon = Daemon::start(&home);
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(address(&daemon)).await.expect("connect"));
    }
    let health = tokio::spawn(client().get(daemon.url("/health")).send());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!health.is_finished(), "a fifth connection was served");
    idle.pop();
    let health = tokio::time::timeout(PATIENCE, health)
        .await
        .expect("served once a slot is free")
        .expect("task")
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
}

/// Everything the daemon sends on `stream` until it closes it, within [`PATIENCE`].
async fn everything(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the daemon neither answered nor closed");
    String::from_utf8_lossy(&received).into_owned()
}

/// `GET /health` from the loopback address `127.0.0.<host>`: what the daemon answered.
async fn health_from(daemon: &Daemon, host: u8) -> String {
    let mut stream = connect_from(daemon, host).await;
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        address(daemon)
    );
    // A refused connection may be closed before the request is written: its answer says so.
    let _ = stream.write_all(request.as_bytes()).await;
    everything(&mut stream).await
}

/// Review A: clients that pipeline requests and never read the answers. Once the socket
/// buffers are full the daemon's writes make no progress, and after `http.body_timeout_ms` of
/// that it closes the connection. The old daemon waited forever with no timer running, so
/// such clients took every slot of `max_connections: 4`, and nothing was answered again. There
/// are more of them than slots: the extra ones wait to be accepted, ahead of the probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_their_answers_are_disconnected() {
    const HOGS: usize = 6;
    // A header timeout that never fires here: only the write deadline can free the slots.
    let home = Home::new(
        "http:\n  max_connections: 4\n  body_timeout_ms: 1000\n  header_timeout_ms: 600000\n",
    );
    let daemon = Daemon::start(&home);
    let requests =
        format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", address(&daemon)).repeat(1000);
    let (stalled, mut stalls) = tokio::sync::mpsc::unbounded_channel();
    let mut hogs = Vec::new();
    for _ in 0..HOGS {
        let mut stream = TcpStream::connect(address(&daemon)).await.expect("connect");
        let (requests, stalled) = (requests.clone(), stalled.clone());
        hogs.push(tokio::spawn(async move {
            // Requests until the writes stop getting through (the daemon stopped reading, its
            // answers having filled the buffers) or fail (it already closed the connection).
            // A write given up on wrote nothing, so the stream stays well-formed throughout.
            let requests = requests.as_bytes();
            let mut at = 0;
            loop {
                let write = stream.write(&requests[at..]);
                match tokio::time::timeout(Duration::from_secs(2), write).await {
                    Ok(Ok(0) | Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => at = (at + n) % requests.len(),
                }
            }
            let _ = stalled.send(());
            // Still reading nothing: a write fails once the daemon has closed the connection.
            let closed = tokio::time::timeout(PATIENCE, async {
                loop {
                    match stream.write(&requests[at..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => at = (at + n) % requests.len(),
                    }
                }
            })
            .await;
            // The stream is kept until the end of the test: only the daemon may free its slot.
            (closed.is_ok(), stream)
        }));
    }
    for _ in 0..HOGS {
        tokio::time::timeout(PATIENCE, stalls.recv())
            .await
            .expect("the client's writes stalled")
            .expect("sent");
    }

    // Every slot was taken; the probe and a webhook are served once the daemon dropped them.
    let health = tokio::time::timeout(PATIENCE, client().get(daemon.url("/health")).send())
        .await
        .expect("/health answered")
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    let issue = fixtures::read("github", "issues__opened.payload.json");
    let (status, event) = tokio::time::timeout(
        PATIENCE,
        send_github(&daemon, "issues", "after-hogs", &issue),
    )
    .await
    .expect("the webhook answered");
    assert_eq!(status, 202, "{event}");
    for hog in hogs {
        let (closed, _stream) = hog.await.expect("hog");
        assert!(closed, "the daemon kept a connection that reads nothing");
    }
}

/// Review A: one peer address holds at most `http.max_connections_per_ip` connections (here
/// 2); past that it is answered 503 and closed while other peers are served, and it is served
/// again once one of its connections closes. Loopback peers count like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_cannot_take_every_connection() {
    const PEER: u8 = 20;
    let home = Home::new("http:\n  max_connections_per_ip: 2\n  header_timeout_ms: 60000\n");
    let daemon = Daemon::start(&home);
    let mut held = vec![
        connect_from(&daemon, PEER).await,
        connect_from(&daemon, PEER).await,
    ];
    let refused = health_from(&daemon, PEER).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("http.max_connections_per_ip"), "{refused}");

    // Other peers: a probe from another address, a webhook from 127.0.0.1.
    let other = health_from(&daemon, PEER + 1).await;
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    let issue = fixtures::read("github", "issues__opened.payload.json");
    let (status, event) = send_github(&daemon, "issues", "other-peer", &issue).await;
    assert_eq!(status, 202, "{event}");

    held.pop();
    let served = tokio::time::timeout(PATIENCE, async {
        loop {
            if health_from(&daemon, PEER).await.starts_with("HTTP/1.1 200") {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        served.is_ok(),
        "the peer was not served after one of its connections closed"
    );
    drop(held);
}

/// Finding 2: a web page posting to `/task` (a form, or `text/plain` so that the browser does
/// not ask first) is refused; so is JSON from another origin, and a non-JSON body even with
/// the key. The worker sees only the task sent properly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_cannot_post_tasks() {
    let worker = TestWorker::start("done").await;
    let home = Home::new("");
    home.add_worker(&format!(
        "name: helper\nendpoint: {}\nevents: []\n",
        worker.endpoint
    ));
    let daemon = Daemon::start(&home);
    let prompt = r#"{"prompt":"exfiltrate","worker":"helper"}"#;
    let browser = |content_type: &'static str| {
        client()
            .post(daemon.url("/task"))
            .header("Origin", "http://evil.example")
            .header("Sec-Fetch-Site", "cross-site")
            .header("Content-Type", content_type)
            .body(prompt)
            .send()
    };
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, error) = status_and_json(browser(content_type).await.expect("sent")).await;
        assert_eq!(status, 403, "{content_type}: {error}");
    }
    // A page cannot know the key; even with it, another origin is refused.
    let keyed = daemon.client();
    let response = keyed
        .post(daemon.url("/task"))
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/json")
        .body(prompt)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 403);
    let response = keyed
        .post(daemon.url("/task"))
        .header("Sec-Fetch-Site", "same-site")
        .header("Content-Type", "application/json")
        .body(prompt)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 403);
    let (status, error) = status_and_json(
        keyed
            .post(daemon.url("/task"))
            .header("Content-Type", "text/plain")
            .body(prompt)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 415, "{error}");
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("application/json")
    );
    // Without the key, nothing at all.
    let response = client()
        .post(daemon.url("/task"))
        .header("Content-Type", "application/json")
        .body(prompt)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 401);

    let (status, task) = status_and_json(
        keyed
            .post(daemon.url("/task"))
            .header("Content-Type", "application/json")
            .body(r#"{"prompt":"the real one","worker":"helper"}"#)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 202, "{task}");
    let received = worker.wait_for(1).await;
    let prompts: Vec<&str> = received
        .iter()
        .filter_map(|task| task["prompt"].as_str())
        .collect();
    assert_eq!(prompts, ["the real one"]);
}

/// Finding 2: a page whose name was rebound to 127.0.0.1 sends its own name as `Host`; the API
/// answers only loopback names, the listen address and `http.allowed_hosts`. Webhooks, `/health`
/// and `/metrics` answer under any name (providers, probes and scrapers use their own).
#[tokio::test]
async fn a_foreign_host_name_is_refused_on_the_api() {
    let home = Home::new("http:\n  allowed_hosts: [mecha.example.com]\n");
    let daemon = Daemon::start(&home);
    let port = address(&daemon)
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    let events = |host: String| {
        daemon
            .client()
            .get(daemon.url("/events"))
            .header("Host", host)
            .send()
    };
    for host in [
        "rebind.attacker.example",
        "localhost.attacker.example",
        "192.0.2.1",
    ] {
        let response = events(format!("{host}:{port}")).await.expect("sent");
        assert_eq!(response.status().as_u16(), 403, "{host}");
        let (_, error) = status_and_json(response).await;
        assert!(
            error["error"]
                .as_str()
                .expect("message")
                .contains("http.allowed_hosts"),
            "{error}"
        );
    }
    for host in ["localhost", "127.0.0.1", "[::1]", "mecha.example.com"] {
        let response = events(format!("{host}:{port}")).await.expect("sent");
        assert_eq!(response.status().as_u16(), 200, "{host}");
    }
    // Without the key a foreign name is still refused first, saying nothing else.
    let response = client()
        .get(daemon.url("/events"))
        .header("Host", format!("rebind.attacker.example:{port}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 403);
    // Probes and scrapers reach a daemon by whatever address it has.
    for path in ["/health", "/metrics"] {
        let response = client()
            .get(daemon.url(path))
            .header("Host", format!("10.1.2.3:{port}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }

    let body = fixtures::read("github", "ping__payload.json");
    let response = client()
        .post(daemon.url("/webhook/github"))
        .header("Host", "hooks.example.org")
        .header("X-GitHub-Event", "ping")
        .header("X-GitHub-Delivery", "public-name")
        .header(
            "X-Hub-Signature-256",
            mecha::signature::github_signature(GITHUB_SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 202);
}

/// Finding 2: with no `api_key` configured, the daemon generates one at its first start into
/// `<home>/api_key` (mode 0600), keeps it across restarts, never logs it, and requires it on
/// the generic webhook (which verifies nothing) and on the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_key_one_is_generated_and_required() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    let path = home.path().join("api_key");
    let mode = std::fs::metadata(&path)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let key = daemon.api_key.clone();
    assert_eq!(key.len(), 64, "32 random bytes in hex");
    assert!(key.bytes().all(|byte| byte.is_ascii_hexdigit()));

    let generic = |key: Option<&str>| {
        let mut request = client()
            .post(daemon.url("/webhook/generic"))
            .header("X-Event-Type", "deploy")
            .body(r#"{"env":"prod"}"#);
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        request.send()
    };
    let (status, error) = status_and_json(generic(None).await.expect("sent")).await;
    assert_eq!(status, 401, "{error}");
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("api_key"),
        "{error}"
    );
    // The route decodes the name, so an encoded spelling of it is the same source.
    for spelling in ["gen%65ric", "%67%65%6e%65%72%69%63"] {
        let response = client()
            .post(daemon.url(&format!("/webhook/{spelling}")))
            .header("X-Event-Type", "deploy")
            .body(r#"{"env":"prod"}"#)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 401, "/webhook/{spelling}");
    }
    let (status, event) = status_and_json(generic(Some(&key)).await.expect("sent")).await;
    assert_eq!(status, 202, "{event}");
    let unkeyed = client()
        .get(daemon.url("/events"))
        .send()
        .await
        .expect("sent");
    assert_eq!(unkeyed.status().as_u16(), 401);

    let log = daemon.stop();
    assert!(log.contains("generated the API key"), "{log}");
    assert!(!log.contains(&key), "the key is in the log");
    let again = Daemon::start(&home);
    assert_eq!(again.api_key, key, "the same key after a restart");
}

/// Finding 2: the CLI finds the generated key by itself, for every command that calls the
/// daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_uses_the_generated_key() {
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    let payload = home.path().join("deploy.json");
    std::fs::write(&payload, r#"{"env":"prod"}"#).expect("payload");
    let addr = address(&daemon);
    let unkeyed = client()
        .post(daemon.url("/webhook/generic"))
        .header("X-Event-Type", "deploy")
        .body(r#"{"env":"staging"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        unkeyed.status().as_u16(),
        401,
        "the generic source needs the key"
    );
    let (ok, stdout, stderr) = home.mecha(&[
        "dev",
        "send",
        "generic",
        payload.to_str().expect("utf-8"),
        "--event",
        "deploy",
        "--addr",
        &addr,
        "--json",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let stored: serde_json::Value = serde_json::from_str(&stdout).expect("the stored event");
    assert_eq!(stored["state"], "received", "{stdout}");
    let id = stored["id"].as_str().expect("id");
    let (ok, stdout, stderr) = home.mecha(&["events", "replay", id, "--addr", &addr]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(&format!("replayed {id} as ")),
        "{stdout}"
    );
    assert!(!stdout.contains(&daemon.api_key) && !stderr.contains(&daemon.api_key));
}

/// Finding 11: `GET /events` lists events without their bodies, only their sizes, so a page of
/// large events stays small (the old daemon answered 582 MB for 40 events of 4.6 MB). One event
/// shows its body cut at 1 MiB, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_lists_carry_no_bodies() {
    const EVENTS: usize = 12;
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    // Nested, so that the filler is no attr; numbered, so that no body repeats another.
    let filler = "x".repeat(MAX_BODY - 1024);
    let body = |n: usize| format!(r#"{{"n":"{n:02}","nested":{{"filler":"{filler}"}}}}"#);
    let size = body(0).len() as u64;
    let keyed = daemon.client();
    let mut ids = Vec::new();
    for n in 0..EVENTS {
        let response = keyed
            .post(daemon.url("/webhook/generic"))
            .header("X-Event-Type", "large")
            .body(body(n))
            .send()
            .await
            .expect("sent");
        let (status, event) = status_and_json(response).await;
        assert_eq!(status, 202, "{}", event["error"]);
        ids.push(event["id"].as_str().expect("id").to_owned());
    }

    let response = keyed
        .get(daemon.url("/events?limit=100"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("body");
    assert!(
        text.len() < 64 * 1024,
        "{} bytes for {EVENTS} events",
        text.len()
    );
    let listed: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    assert_eq!(listed.len(), EVENTS);
    for event in &listed {
        assert!(event.get("raw").is_none(), "{event}");
        assert_eq!(event["raw_bytes"], size);
        assert_eq!(event["type"], "large");
    }

    let (status, shown) =
        crate::support::daemon::get_json(&daemon, &format!("/event/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(shown["raw"].as_str().map(str::len), Some(1024 * 1024));
    assert_eq!(shown["raw_bytes"], size);
    assert_eq!(shown["raw_truncated"], true);
}
