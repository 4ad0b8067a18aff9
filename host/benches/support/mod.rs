//! What the benchmarks share: the real `mecha serve` as a child process on a free loopback
//! port, its resident memory and CPU time, its private files and its CLI.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running daemon; killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub base: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mecha serve` with `home` as its home and returns it once it accepts connections,
/// with the time that took.
pub fn start_daemon(home: &Path) -> (Daemon, Duration) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_mecha"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("MECHA_HOME", home)
        .env("MECHA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("mecha serve");
    let addr = format!("127.0.0.1:{port}");
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "daemon did not start"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
    let ready = started.elapsed();
    let daemon = Daemon {
        child,
        base: format!("http://{addr}"),
    };
    (daemon, ready)
}

/// The resident memory of process `pid`, in KiB (0 when it cannot be read).
#[allow(
    dead_code,
    reason = "each benchmark compiles this module; the dispatch benchmark reports no memory"
)]
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// The CPU time process `pid` has used so far (user and system), from `/proc` (zero when it
/// cannot be read).
#[allow(
    dead_code,
    reason = "each benchmark compiles this module; only the ingest benchmark reports CPU time"
)]
pub fn cpu_time(pid: u32) -> std::time::Duration {
    // Fields 14 and 15 (utime, stime) of /proc/PID/stat, in clock ticks; the command name
    // (field 2) may hold spaces, so counting starts after its closing parenthesis.
    let ticks: u64 = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let fields: Vec<u64> = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|field| field.parse().ok())
                .collect();
            Some(fields.iter().sum())
        })
        .unwrap_or(0);
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    std::time::Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// Writes `text` to `path`, owner-only, as mecha requires of its config and secrets files.
pub fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("written");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Runs `mecha ARGS` with `home` as its home, which must succeed.
#[allow(
    dead_code,
    reason = "each benchmark compiles this module; only some set workers up with the CLI"
)]
pub fn mecha(home: &Path, args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_mecha"))
        .args(args)
        .env("MECHA_HOME", home)
        .env("MECHA_LOG", "warn")
        .output()
        .expect("mecha runs");
    assert!(
        output.status.success(),
        "mecha {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The value of counter `name` in the daemon's `/metrics`.
#[allow(
    dead_code,
    reason = "each benchmark compiles this module; only those that wait on counters read them"
)]
pub async fn metric(client: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}
