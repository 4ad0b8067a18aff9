//! Runs the real `mecha` binary against a temporary home, on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The secret the tests configure for the github source.
pub const GITHUB_SECRET: &str = "test-webhook-secret";

/// A temporary mecha home with its config files.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    /// A home whose secrets.yml holds [`GITHUB_SECRET`] and whose config.yml holds `config`.
    pub fn new(config: &str) -> Home {
        let home = Home::empty();
        home.write_config(config);
        home.write_secrets(&format!("github:\n  webhook_secret: {GITHUB_SECRET}\n"));
        home
    }

    /// A home with no files at all, but the compile cache that every test home shares: each
    /// plugin is then compiled once per test run, not once per test (a CPython component
    /// takes most of a minute).
    pub fn empty() -> Home {
        let home = Home {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let shared = target_dir().join("test-compile-cache");
        std::fs::create_dir_all(&shared).expect("shared compile cache");
        std::os::unix::fs::symlink(&shared, home.path().join("cache")).expect("cache link");
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes config.yml owner-only, as mecha requires of a file that may hold the API key.
    pub fn write_config(&self, config: &str) {
        let path = self.path().join("config.yml");
        std::fs::write(&path, config).expect("config written");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    pub fn write_secrets(&self, secrets: &str) {
        let path = self.path().join("secrets.yml");
        std::fs::write(&path, secrets).expect("secrets written");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    /// Runs `mecha ARGS` with this home and returns (success, stdout, stderr).
    pub fn mecha(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(binary())
            .args(args)
            .env("MECHA_HOME", self.path())
            .env_remove("MECHA_DB_PATH")
            .env_remove("MECHA_API_KEY")
            .output()
            .expect("mecha runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The installed plugin `name` as `mecha plugin ls --json` shows it, if it is installed.
    pub fn installed(&self, name: &str) -> Option<serde_json::Value> {
        let (ok, stdout, stderr) = self.mecha(&["plugin", "ls", "--json"]);
        assert!(ok, "{stderr}");
        let plugins: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        plugins
            .as_array()
            .expect("array")
            .iter()
            .find(|plugin| plugin["name"] == name && plugin["origin"]["kind"] == "installed")
            .cloned()
    }

    /// The component file of the current version of the installed plugin `name`, as
    /// `plugins/lock.json` names it.
    pub fn installed_component(&self, name: &str) -> PathBuf {
        let lock: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.path().join("plugins/lock.json")).expect("lock.json"),
        )
        .expect("lock.json is JSON");
        let entry = lock["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .find(|entry| entry["name"] == name)
            .unwrap_or_else(|| panic!("{name} is installed"));
        self.path()
            .join("plugins")
            .join(entry["file"].as_str().expect("file"))
    }
}

impl Home {
    /// Writes the live worker definition `yaml` into the home, and adds and starts it with
    /// the CLI.
    ///
    /// The CLI blocks the calling thread, so tests serving workers run on a multi-threaded
    /// runtime to keep answering the health check that `worker start` makes.
    pub fn add_worker(&self, yaml: &str) {
        let name = yaml
            .lines()
            .find_map(|line| line.strip_prefix("name: "))
            .expect("a name line")
            .trim()
            .to_owned();
        let path = self.path().join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).expect("worker file");
        let (ok, stdout, stderr) = self.mecha(&["worker", "add", path.to_str().expect("utf-8")]);
        assert!(ok, "worker add {name}: {stderr}");
        assert!(stdout.contains(&format!("added {name} (live)")), "{stdout}");
        let (ok, stdout, stderr) = self.mecha(&["worker", "start", &name]);
        assert!(ok, "worker start {name}: {stderr}");
        assert_eq!(stdout.trim(), format!("started {name}"), "healthy at start");
    }

    /// Runs `mecha serve`, which must refuse to start within 30 s; returns what it printed.
    pub fn serve_refused(&self) -> String {
        let mut child = Command::new(binary())
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("MECHA_HOME", self.path())
            .env_remove("MECHA_DB_PATH")
            .env_remove("MECHA_API_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mecha serve starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("mecha serve started although it should have refused to");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            use std::io::Read;
            pipe.read_to_string(&mut stderr).expect("stderr");
        }
        assert!(
            !status.success(),
            "mecha serve exited successfully:\n{stderr}"
        );
        stderr
    }
}

/// The target directory of this build.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mecha"))
}

/// A running daemon; killed when dropped.
pub struct Daemon {
    child: Child,
    pub base: String,
    log: PathBuf,
    /// The key its API requires: MECHA_API_KEY, config.yml's `api_key`, or the generated one.
    pub api_key: String,
}

impl Daemon {
    /// Starts `mecha serve` on a free port and waits until `/health` answers.
    pub fn start(home: &Home) -> Daemon {
        Daemon::start_with_env(home, &[])
    }

    /// [`Daemon::start`] with `env` added to the daemon's environment.
    pub fn start_with_env(home: &Home, env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let log = home.path().join(format!("daemon-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary())
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .env("MECHA_HOME", home.path())
            .env_remove("MECHA_DB_PATH")
            .env_remove("MECHA_API_KEY")
            .env("MECHA_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("mecha serve starts");
        let mut daemon = Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            api_key: String::new(),
        };
        daemon.wait_ready();
        // Resolved as the CLI resolves it; the daemon wrote a generated key before listening.
        let env_key = env
            .iter()
            .find(|(name, _)| *name == "MECHA_API_KEY")
            .map(|(_, value)| (*value).to_owned());
        daemon.api_key = mecha::config::api_key::for_client(
            &mecha::config::home::Home::at(home.path()),
            env_key,
        )
        .expect("the API key is readable")
        .expect("the daemon has an API key")
        .expose()
        .to_owned();
        daemon
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An HTTP client that sends the daemon's API key with every request.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-api-key",
            reqwest::header::HeaderValue::from_str(&self.api_key).expect("a header value"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mecha serve exited with {status}:\n{}", self.log());
            }
            if std::net::TcpStream::connect(self.base.trim_start_matches("http://")).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mecha serve did not become ready:\n{}", self.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = self.child.wait().expect("daemon exits");
        assert!(exit.success(), "daemon exited with {exit}:\n{}", self.log());
        self.log()
    }

    /// Sends SIGHUP, which makes the daemon re-read secrets.yml.
    pub fn hangup(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Kills the daemon with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        self.child.kill().expect("killed");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// An HTTP client for the tests, without the daemon's key (see [`Daemon::client`]).
pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Posts a GitHub delivery of `event` signed with [`GITHUB_SECRET`].
pub async fn send_github(
    daemon: &Daemon,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let response = client()
        .post(daemon.url("/webhook/github"))
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header(
            "X-Hub-Signature-256",
            mecha::signature::github_signature(GITHUB_SECRET.as_bytes(), body),
        )
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("request sent");
    status_and_json(response).await
}

pub async fn status_and_json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

/// `GET path` with the daemon's key.
pub async fn get_json(daemon: &Daemon, path: &str) -> (u16, serde_json::Value) {
    let response = daemon
        .client()
        .get(daemon.url(path))
        .send()
        .await
        .expect("request sent");
    status_and_json(response).await
}

/// The sha256 of the `world` plugin `name` that `daemon` runs now (`GET /plugins`), if it runs
/// one.
pub async fn running_sha256(daemon: &Daemon, name: &str, world: &str) -> Option<String> {
    let (_, running) = get_json(daemon, "/plugins").await;
    running
        .as_array()
        .expect("array")
        .iter()
        .find(|plugin| plugin["name"] == name && plugin["world"] == world)
        .and_then(|plugin| plugin["sha256"].as_str())
        .map(str::to_owned)
}

/// Polls `GET /tasks?…` until `count` tasks are in `state`.
pub async fn wait_tasks(daemon: &Daemon, query: &str, count: usize) -> Vec<serde_json::Value> {
    let mut tasks = Vec::new();
    for _ in 0..1500 {
        let (_, page) = get_json(daemon, &format!("/tasks?{query}")).await;
        tasks = page["tasks"].as_array().cloned().unwrap_or_default();
        if tasks.len() >= count {
            return tasks;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {count} tasks for {query}, found {}: {tasks:?}\n{}",
        tasks.len(),
        daemon.log()
    );
}

/// Waits until the task of `event_id` has its write-back in `state`; returns the task.
pub async fn wait_write_back(daemon: &Daemon, event_id: &str, state: &str) -> serde_json::Value {
    let mut task = serde_json::Value::Null;
    for _ in 0..1000 {
        let tasks = wait_tasks(daemon, &format!("event={event_id}&state=completed"), 1).await;
        task = tasks[0].clone();
        if task["write_back"] == state {
            return task;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("write-back never reached {state}: {task}\n{}", daemon.log());
}

/// Posts `body` (of `content_type`) to `/webhook/slack`, signed now with the signing secret
/// `secret`, as Slack signs its requests.
pub async fn send_slack(
    daemon: &Daemon,
    secret: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let response = client()
        .post(daemon.url("/webhook/slack"))
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header(
            "x-slack-signature",
            mecha::signature::slack_signature(secret.as_bytes(), timestamp, body),
        )
        .body(body.to_vec())
        .send()
        .await
        .expect("request sent");
    status_and_json(response).await
}
