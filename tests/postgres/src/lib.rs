//! A throwaway PostgreSQL cluster on loopback, for the tests of mecha's PostgreSQL store.
//!
//! [`shared`] starts one cluster per test process, on first use, from Debian's `postgresql`
//! package: `initdb` in a directory of its own, then `postgres` listening on 127.0.0.1 only,
//! with password (SCRAM) authentication so that URLs carry a real password. Each test asks it
//! for a [`Server::fresh_database`] of its own, so tests run in parallel without seeing each
//! other's rows.
//!
//! PostgreSQL refuses to run as root; when the tests do, the cluster runs as `nobody`. The
//! server is tied to the test process: it gets `SIGQUIT` (an immediate shutdown) when the
//! process ends, however it ends, and the directory of a cluster whose process is gone is
//! removed by the next start.
//!
//! Outside CI, [`available`] says why the tests skip when PostgreSQL is not installed; with
//! `CI=true` (where `.ci/run` installs it) it fails them instead.

use std::io::{self, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The role the tests connect as.
pub const USER: &str = "mecha";

/// Prefix of the clusters' directories in the system's temporary directory.
const DIRECTORY_PREFIX: &str = "mecha-postgres-";

/// How long a starting cluster may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running cluster.
pub struct Server {
    port: u16,
    password: String,
    bin: PathBuf,
    directory: PathBuf,
    /// The certificate authority of the server's TLS certificate, when it serves TLS.
    ca: Option<PathBuf>,
    /// Kept so that the child is not reaped as a zombie before the process ends.
    _postgres: Mutex<Child>,
    databases: AtomicU32,
}

/// Whether the PostgreSQL tests may run here: true when the server's programs are installed;
/// otherwise false after saying why, or a panic under `CI=true`.
pub fn available() -> bool {
    match binaries() {
        Some(_) => true,
        None if std::env::var("CI").is_ok_and(|ci| ci == "true") => panic!(
            "CI=true, so the PostgreSQL tests must run, but no PostgreSQL server is installed \
             (apt-get install postgresql)"
        ),
        None => {
            eprintln!(
                "skipped: no PostgreSQL server is installed here (apt-get install postgresql)"
            );
            false
        }
    }
}

/// The process's cluster, started on first use.
///
/// # Panics
/// If PostgreSQL is not installed or does not start; call [`available`] first.
pub fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start().unwrap_or_else(|error| panic!("{error}")))
}

impl Server {
    /// Starts a new cluster. Its server lives as long as the test process.
    pub fn start() -> io::Result<Server> {
        Server::start_with(false)
    }

    /// [`Server::start`] with TLS: a certificate for `127.0.0.1` and `localhost`, signed by a
    /// throwaway authority ([`Server::ca_file`]). Needs `openssl`.
    pub fn start_tls() -> io::Result<Server> {
        Server::start_with(true)
    }

    /// The PEM file of the authority that signed the server's certificate, when it serves TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    fn start_with(tls: bool) -> io::Result<Server> {
        let bin =
            binaries().ok_or_else(|| io::Error::other("no PostgreSQL server is installed"))?;
        remove_abandoned_directories();
        let directory = std::env::temp_dir().join(format!(
            "{DIRECTORY_PREFIX}{}-{}",
            std::process::id(),
            next_id()
        ));
        std::fs::create_dir_all(&directory)?;
        let data = directory.join("data");
        let password = password()?;
        let password_file = directory.join("password");
        std::fs::write(&password_file, format!("{password}\n"))?;
        let owner = unprivileged_owner();
        if let Some((uid, gid)) = owner {
            chown_all(&directory, uid, gid)?;
        }
        run(
            as_owner(Command::new(bin.join("initdb")), owner)
                .arg("--pgdata")
                .arg(&data)
                .args(["--username", USER, "--auth", "scram-sha-256", "--no-sync"])
                .args(["--encoding", "UTF8", "--locale", "C"])
                .arg(format!("--pwfile={}", password_file.display())),
            "initdb",
        )?;
        std::fs::remove_file(&password_file)?;
        let ca = if tls {
            Some(certificates(&directory, &data, owner)?)
        } else {
            None
        };

        let port = free_port()?;
        let mut postgres = as_owner(Command::new(bin.join("postgres")), owner);
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1", "-p", &port.to_string()])
            .args([
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=300",
            ])
            .args(["-c", "shared_buffers=32MB", "-c", "fsync=on"])
            .args(if tls {
                &[
                    "-c",
                    "ssl=on",
                    "-c",
                    "ssl_cert_file=server.crt",
                    "-c",
                    "ssl_key_file=server.key",
                ][..]
            } else {
                &[][..]
            })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(directory.join("server.log"))?);
        let postgres = spawn_tied_to_process(postgres)?;
        let server = Server {
            port,
            password,
            bin,
            directory,
            ca,
            _postgres: Mutex::new(postgres),
            databases: AtomicU32::new(0),
        };
        server.wait_until_ready()?;
        Ok(server)
    }

    /// The URL of database `name` on this cluster, with the role's password.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{name}",
            self.password, self.port
        )
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password of [`USER`], which must never show up in what mecha prints.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Creates an empty database of its own for one test and returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!("test_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let mut command = Command::new(self.bin.join("createdb"));
        command
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--username", USER])
            .arg(&name)
            .env("PGPASSWORD", &self.password);
        run(&mut command, "createdb").unwrap_or_else(|error| panic!("{error}"));
        self.url(&name)
    }

    /// The server's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.join("server.log")).unwrap_or_default()
    }

    fn wait_until_ready(&self) -> io::Result<()> {
        let started = Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                .stdout(Stdio::null())
                .status()?;
            if ready.success() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(io::Error::other(format!(
                    "PostgreSQL did not accept connections within {READY_TIMEOUT:?}; its log:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The directory of the newest installed PostgreSQL's programs.
fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MECHA_POSTGRES_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// `nobody` when the tests run as root (PostgreSQL refuses root), else nobody to change to.
fn unprivileged_owner() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } == 0).then_some((65_534, 65_534))
}

fn as_owner(mut command: Command, owner: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}

fn chown_all(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(path)? {
        std::os::unix::fs::chown(entry?.path(), Some(uid), Some(gid))?;
    }
    Ok(())
}

fn run(command: &mut Command, what: &str) -> io::Result<()> {
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

/// Spawns `command` from a thread that lives as long as the process, with `SIGQUIT` as its
/// parent-death signal: the kernel sends it when the spawning thread ends, so the thread must
/// outlive every test.
fn spawn_tied_to_process(mut command: Command) -> io::Result<Child> {
    // SAFETY: prctl is async-signal-safe, as a pre_exec closure requires.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("postgres-parent".into())
        .spawn(move || {
            let _ = sender.send(command.spawn());
            loop {
                std::thread::park();
            }
        })?;
    receiver
        .recv()
        .map_err(|_| io::Error::other("the thread starting PostgreSQL stopped"))?
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// 32 hexadecimal characters from the system's random source.
fn password() -> io::Result<String> {
    let mut buffer = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buffer)?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn next_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Removes the directories of clusters whose test process has ended.
fn remove_abandoned_directories() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|name| name.strip_prefix(DIRECTORY_PREFIX))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next() else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Makes a throwaway certificate authority in `directory` and a server certificate it signed
/// (for `127.0.0.1` and `localhost`) in the cluster's `data` directory, owned by the server's
/// user; returns the authority's PEM file.
fn certificates(directory: &Path, data: &Path, owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    let ca_key = directory.join("ca.key");
    let ca = directory.join("ca.pem");
    let request = directory.join("server.csr");
    let extensions = directory.join("server.ext");
    std::fs::write(&extensions, "subjectAltName=IP:127.0.0.1,DNS:localhost\n")?;
    let (key, certificate) = (data.join("server.key"), data.join("server.crt"));
    let openssl = |args: &[&std::ffi::OsStr]| run(Command::new("openssl").args(args), "openssl");
    let os = std::ffi::OsStr::new;
    openssl(&[
        os("req"),
        os("-x509"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        ca.as_os_str(),
        os("-days"),
        os("2"),
        os("-subj"),
        os("/CN=mecha test authority"),
    ])?;
    openssl(&[
        os("req"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        request.as_os_str(),
        os("-subj"),
        os("/CN=localhost"),
    ])?;
    openssl(&[
        os("x509"),
        os("-req"),
        os("-in"),
        request.as_os_str(),
        os("-CA"),
        ca.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-out"),
        certificate.as_os_str(),
        os("-days"),
        os("2"),
        os("-extfile"),
        extensions.as_os_str(),
    ])?;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&key, Some(uid), Some(gid))?;
        std::os::unix::fs::chown(&certificate, Some(uid), Some(gid))?;
    }
    Ok(ca)
}
