//! Starts a worker in-process and talks to it: through reqwest, or over a raw socket for requests
//! reqwest will not send (no Content-Length).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mecha_worker::{Agent, Config, DEFAULT_MAX_BODY_BYTES, Environment, Options};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A worker to start: its agent, environment and body cap.
pub struct Setup {
    agent: Agent,
    vars: Vec<(OsString, OsString)>,
    max_body_bytes: u64,
}

/// A worker whose agent is `sh -c SCRIPT`.
pub fn command(script: &str) -> Setup {
    Setup {
        agent: Agent::Command {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
        },
        vars: Vec::new(),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
    }
}

/// A worker with the echo backend.
pub fn echo() -> Setup {
    Setup {
        agent: Agent::Echo,
        ..command("")
    }
}

impl Setup {
    /// Sets an environment variable for the worker (and so for its command).
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    pub fn max_body_bytes(mut self, limit: u64) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Starts the worker on a free loopback port, running its command in a fresh directory.
    pub async fn start(self) -> Worker {
        let scratch = Scratch::new();
        let options = Options {
            listen: None,
            workdir: Some(scratch.path().to_owned()),
            max_body_bytes: self.max_body_bytes,
            agent: self.agent,
        };
        let path = std::env::var_os("PATH").unwrap_or_default();
        let env: Environment = [("PATH".into(), path)]
            .into_iter()
            .chain(self.vars)
            .collect();
        let config = Config::resolve(options, env).expect("a valid config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(mecha_worker::serve(
            listener,
            config,
            std::future::pending(),
        ));
        Worker {
            base: format!("http://{address}"),
            address: address.to_string(),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            scratch,
        }
    }
}

pub struct Worker {
    base: String,
    address: String,
    client: reqwest::Client,
    scratch: Scratch,
}

/// A reply, with its body read as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Worker {
    /// The directory the command runs in.
    pub fn dir(&self) -> &Path {
        self.scratch.path()
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    /// `POST /task` with `body`, without a key.
    pub async fn task(&self, body: &Value) -> Reply {
        send(self.post("/task").body(body.to_string())).await
    }

    /// `POST /task` with just a prompt.
    pub async fn prompt(&self, prompt: &str) -> Reply {
        self.task(&serde_json::json!({"id": "t-1", "prompt": prompt, "context": {}}))
            .await
    }

    pub async fn health(&self) -> (u16, String) {
        let reply = send(self.get("/health")).await;
        (reply.status, reply.text)
    }

    /// Polls `/health` until it says `busy`, for at most 10 seconds.
    pub async fn wait_until_busy(&self) {
        for _ in 0..200 {
            if self.health().await == (503, "busy".to_owned()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the worker never became busy");
    }

    /// Sends `request` as written and returns the status and body of the reply. The request
    /// should say `Connection: close`, so the reply ends with the connection.
    pub async fn raw(&self, request: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.expect("read");
        let status = reply
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("a reply");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// A directory removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "mecha-worker-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("scratch directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether process `pid` has ended: gone from `/proc`, or a zombie waiting for its reaper.
pub fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Reads a PID that a command wrote to `file`.
pub fn read_pid(file: &Path) -> u32 {
    std::fs::read_to_string(file)
        .expect("the command wrote its PID")
        .trim()
        .parse()
        .expect("a PID")
}
