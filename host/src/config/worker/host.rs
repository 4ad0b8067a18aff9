//! Checks of a worker definition against this machine: the managed worker's `cwd` and the
//! logins it mounts (reference 2.2 and 11.1).
//!
//! They are kept apart from the definition's own checks because their answer changes with the
//! machine and over time: a definition stored on one host is re-checked where and when its
//! container is started.

use std::path::{Path, PathBuf};

use super::WorkerDef;
use super::docker::DockerConfig;
use super::problem::{FieldPath, LoadErrors, Problem, into_result};
use crate::config::home::Home;

/// System directories: none of them, nothing below them and nothing above them may be
/// mounted. Mounted read-write they hand the container the host: `/run` and `/var/run` hold the
/// Docker socket, `/usr`, `/bin` and `/lib` the programs root runs, `/etc` and `/var/spool`
/// what root runs them with, `/var/lib` every service's state (Docker's own included).
const SENSITIVE_SYSTEM_DIRS: [&str; 16] = [
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/run",
    "/var/run",
    "/usr",
    "/var/lib",
    "/var/spool",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/root",
];

/// Directories shared by every user, which may not be mounted themselves (nor anything above
/// them), though a project directory below them may: `/home` holds every user's home, `/tmp`
/// and `/var/tmp` everyone's temporary files and sockets, `/mnt` and `/media` every mounted
/// disk and share.
const SHARED_DIRS: [&str; 5] = ["/home", "/tmp", "/var/tmp", "/mnt", "/media"];

/// Where users' homes are; each directory directly in it is a home directory.
const HOMES_DIR: &str = "/home";

/// Directories below a home directory that hold keys, tokens and logins; neither they nor
/// anything below them may be mounted.
const SENSITIVE_HOME_DIRS: [&str; 14] = [
    ".mecha",
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".docker",
    ".config/gcloud",
    ".config/gh",
    ".claude",
    ".codex",
    ".gemini",
    ".password-store",
    ".local/share/keyrings",
];

/// root's home, sensitive whoever runs mecha.
const ROOT_HOME: &str = "/root";

/// Where Docker's socket is unless `DOCKER_HOST` or `docker.host` says otherwise.
const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// What of this machine decides which directories are sensitive, besides the fixed lists.
#[derive(Debug, Clone, Default)]
struct Machine {
    /// The current user's home directory.
    home: Option<PathBuf>,
    /// The mecha home, which holds `secrets.yml` and the database.
    mecha_home: Option<PathBuf>,
    /// Docker sockets that exist on this machine and that a worker may be run through.
    docker_sockets: Vec<PathBuf>,
}

impl Machine {
    /// This machine as `docker` sees it, with `home` as the current user's home directory.
    fn current(home: Option<&Path>, docker: &DockerConfig) -> Machine {
        let configured = [std::env::var("DOCKER_HOST").ok(), docker.host.clone()];
        let docker_sockets = configured
            .iter()
            .flatten()
            .filter_map(|host| host.strip_prefix("unix://"))
            .map(PathBuf::from)
            .chain([PathBuf::from(DEFAULT_DOCKER_SOCKET)])
            // A socket that is not there exposes nothing; it is checked again when the
            // container is created.
            .filter(|socket| socket.symlink_metadata().is_ok())
            .collect();
        Machine {
            home: home.map(Path::to_path_buf),
            mecha_home: std::path::absolute(Home::from_env().root()).ok(),
            docker_sockets,
        }
    }
}

impl DockerConfig {
    /// The host directory to mount at `/workspace`: `cwd` with symlinks resolved, after the
    /// same checks as [`WorkerDef::validate_host`]; `None` when there is no `cwd`. Call it when
    /// the container is created, since the directory may have changed since the worker was
    /// added.
    /// `home` is the current user's home directory.
    pub fn workspace(&self, home: Option<&Path>) -> Result<Option<PathBuf>, String> {
        let Some(cwd) = &self.cwd else {
            return Ok(None);
        };
        check_cwd(Path::new(cwd), &Machine::current(home, self))
            .map(Some)
            .map_err(|message| format!("docker.cwd: {message}"))
    }
}

/// The current user's home directory, if `HOME` names one.
pub(crate) fn current_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}

impl WorkerDef {
    /// Checks what depends on this machine, for a managed worker: `docker.cwd` exists, is a
    /// directory and, once symlinks and `..` are resolved, is not sensitive (a system directory,
    /// a home or shared directory itself, a key or login directory, the mecha home, the Docker
    /// socket's directory, or a parent of any of them); each of `docker.credentials` has its
    /// directory in the current user's home. Run it on the interpolated definition.
    pub fn validate_host(&self) -> Result<(), LoadErrors> {
        self.validate_host_for(current_home().as_deref())
    }

    /// [`WorkerDef::validate_host`] with `home` as the current user's home directory.
    pub fn validate_host_for(&self, home: Option<&Path>) -> Result<(), LoadErrors> {
        let mut problems = Vec::new();
        if let Some(docker) = &self.docker {
            check_docker(docker, &Machine::current(home, docker), &mut problems);
        }
        into_result(problems)
    }
}

/// The host checks of `docker` on `machine`.
fn check_docker(docker: &DockerConfig, machine: &Machine, problems: &mut Vec<Problem>) {
    let at = FieldPath::root().key("docker");
    if let Some(cwd) = &docker.cwd
        && let Err(message) = check_cwd(Path::new(cwd), machine)
    {
        problems.push(Problem::new(&at.key("cwd"), message));
    }
    for (index, credential) in docker.credentials.iter().enumerate() {
        let field = at.key("credentials").index(index);
        let Some(home) = &machine.home else {
            problems.push(Problem::new(
                &field,
                format!(
                    "HOME is not set, so ~/{} cannot be found",
                    credential.directory()
                ),
            ));
            continue;
        };
        let dir = home.join(credential.directory());
        if !dir.is_dir() {
            problems.push(Problem::new(
                &field,
                format!(
                    "{} does not exist; log in on this machine first, or use docker.token instead",
                    dir.display()
                ),
            ));
        }
    }
}

/// Resolves `cwd` (symlinks and `..`) and checks that it may be mounted; returns the resolved
/// path.
fn check_cwd(cwd: &Path, machine: &Machine) -> Result<PathBuf, String> {
    let resolved = cwd
        .canonicalize()
        .map_err(|err| format!("{} cannot be used: {err}", cwd.display()))?;
    if !resolved.is_dir() {
        return Err(format!("{} is not a directory", resolved.display()));
    }
    if let Some(reason) = sensitive(&resolved, machine) {
        let shown = if resolved == cwd {
            resolved.display().to_string()
        } else {
            format!("{} (resolved to {})", cwd.display(), resolved.display())
        };
        return Err(format!(
            "{shown} is {reason}; mounted read-write into the container it would expose the \
             host, so mount a project directory instead"
        ));
    }
    Ok(resolved)
}

/// A directory no worker may mount, and what it is.
struct Sensitive {
    path: PathBuf,
    /// What it is (`/etc`, `the mecha home /srv/mecha`).
    name: String,
    /// Why it matters, as a clause that follows the name (`, which holds keys or logins`).
    why: &'static str,
    /// Whether everything below it is sensitive too, or only the directory itself.
    below: bool,
}

/// Every sensitive directory of `machine` that bears on `path`.
fn sensitive_dirs(path: &Path, machine: &Machine) -> Vec<Sensitive> {
    let tree = |path: PathBuf, name: String, why| Sensitive {
        path,
        name,
        why,
        below: true,
    };
    let itself = |path: PathBuf, name: String, why| Sensitive {
        path,
        name,
        why,
        below: false,
    };
    let mut dirs: Vec<Sensitive> = SENSITIVE_SYSTEM_DIRS
        .iter()
        .map(|dir| tree(dir.into(), (*dir).to_owned(), ", a system directory"))
        .collect();
    dirs.extend(SHARED_DIRS.iter().map(|dir| {
        itself(
            dir.into(),
            (*dir).to_owned(),
            ", which every user of the machine shares",
        )
    }));
    if let Some(mecha) = &machine.mecha_home {
        dirs.push(tree(
            mecha.clone(),
            format!("the mecha home {}", mecha.display()),
            ", which holds secrets.yml and the database",
        ));
    }
    for socket in &machine.docker_sockets {
        if let Some(dir) = socket.parent() {
            dirs.push(tree(
                dir.to_path_buf(),
                dir.display().to_string(),
                ", the Docker socket's directory (the socket gives root on the host)",
            ));
        }
    }
    // Root's home, the current user's, and the one `path` is in when it is under /home.
    let mut homes = vec![PathBuf::from(ROOT_HOME)];
    homes.extend(machine.home.clone());
    if let Ok(rest) = path.strip_prefix(HOMES_DIR)
        && let Some(user) = rest.components().next()
    {
        homes.push(Path::new(HOMES_DIR).join(user));
    }
    for home in homes {
        // The home before its key directories, so that a parent of the home is called that.
        let name = format!("the home directory {}", home.display());
        dirs.push(itself(home.clone(), name, ""));
        for dir in SENSITIVE_HOME_DIRS {
            let keys = home.join(dir);
            let name = keys.display().to_string();
            dirs.push(tree(keys, name, ", which holds keys or logins"));
        }
        // Programs keep their keys in hidden directories of the home (`.cargo`, `.netrc.d`,
        // `.terraform.d`, ...), more than any list names: every one that exists is refused.
        for hidden in hidden_dirs(&home) {
            let name = hidden.display().to_string();
            dirs.push(tree(
                hidden,
                name,
                ", a hidden directory of a home, where programs keep keys and logins",
            ));
        }
    }
    dirs
}

/// The hidden directories directly in `home` (none when it cannot be read).
fn hidden_dirs(home: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(home) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().as_encoded_bytes().starts_with(b"."))
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path())
        .collect()
}

/// Why the resolved `path` is sensitive, if it is: it is a sensitive directory, lies below one
/// whose contents are sensitive, or lies above one (mounting a parent mounts its children).
/// Each sensitive directory is compared both as written and resolved, since it may be a symlink
/// itself (`/var/run` to `/run`, `/etc` on macOS).
fn sensitive(path: &Path, machine: &Machine) -> Option<String> {
    if path.parent().is_none() {
        return Some("the root directory".to_owned());
    }
    let dirs = sensitive_dirs(path, machine);
    for dir in &dirs {
        for form in forms(&dir.path) {
            if dir.below && path.starts_with(&form) {
                return Some(format!("{} or below it{}", dir.name, dir.why));
            }
            if path == form {
                return Some(format!("{}{}", dir.name, dir.why));
            }
        }
    }
    for dir in &dirs {
        for form in forms(&dir.path) {
            if form.starts_with(path) {
                return Some(format!("a parent of {}{}", dir.name, dir.why));
            }
        }
    }
    None
}

/// `path` as written and, when it differs, resolved.
fn forms(path: &Path) -> Vec<PathBuf> {
    let mut forms = vec![path.to_path_buf()];
    if let Ok(resolved) = path.canonicalize()
        && resolved != path
    {
        forms.push(resolved);
    }
    forms
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::config::worker::Credential;

    /// A fake home with a login directory, a project, a mecha home, a Docker socket and a few
    /// links, all in a temporary directory.
    struct Fake {
        _temp: tempfile::TempDir,
        home: PathBuf,
        elsewhere: PathBuf,
        machine: Machine,
    }

    fn fake() -> Fake {
        let temp = tempfile::tempdir().expect("temp");
        let root = temp.path().canonicalize().expect("resolves");
        let home = root.join("home");
        let elsewhere = root.join("elsewhere");
        let mecha = root.join("srv/mecha");
        let sockets = root.join("sockets");
        for dir in [
            home.join(".ssh/keys"),
            home.join(".config/gcloud"),
            home.join(".claude"),
            home.join("code/project"),
            elsewhere.clone(),
            mecha.join("plugins"),
            sockets.clone(),
        ] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(home.join("notes.txt"), "x").expect("write");
        std::fs::write(mecha.join("secrets.yml"), "x").expect("write");
        std::fs::write(sockets.join("docker.sock"), "").expect("write");
        symlink(home.join(".ssh"), elsewhere.join("innocent")).expect("link");
        symlink("/etc", elsewhere.join("config")).expect("link");
        symlink("/run", elsewhere.join("sockets")).expect("link");
        symlink(home.join("code/project"), elsewhere.join("project")).expect("link");
        let machine = Machine {
            home: Some(home.clone()),
            mecha_home: Some(mecha),
            docker_sockets: vec![sockets.join("docker.sock")],
        };
        Fake {
            _temp: temp,
            home,
            elsewhere,
            machine,
        }
    }

    fn cwd(fake: &Fake, path: &Path) -> Result<PathBuf, String> {
        check_cwd(path, &fake.machine)
    }

    fn refused(machine: &Machine, path: &str) -> Option<String> {
        sensitive(Path::new(path), machine)
    }

    #[test]
    fn a_project_directory_is_fine_even_through_a_link() {
        let fake = fake();
        let project = fake.home.join("code/project");
        assert_eq!(cwd(&fake, &project), Ok(project.clone()));
        assert_eq!(cwd(&fake, &fake.elsewhere.join("project")), Ok(project));
    }

    #[test]
    fn every_hidden_directory_of_a_home_is_refused() {
        let fake = fake();
        let cargo = fake.home.join(".cargo/registry");
        std::fs::create_dir_all(&cargo).expect("mkdir");
        let err = cwd(&fake, &cargo).expect_err("a hidden directory");
        assert!(
            err.contains(".cargo or below it, a hidden directory of a home"),
            "{err}"
        );
    }

    #[test]
    fn mount_points_are_shared_but_projects_on_them_are_not() {
        let machine = Machine::default();
        for dir in ["/mnt", "/media"] {
            let reason = refused(&machine, dir).expect(dir);
            assert!(
                reason.contains("which every user of the machine shares"),
                "{reason}"
            );
        }
        assert_eq!(refused(&machine, "/mnt/data/project"), None);
    }

    #[test]
    fn key_directories_homes_and_their_parents_are_refused_after_resolving_links() {
        let fake = fake();
        let root = fake.home.parent().expect("parent").to_path_buf();
        let ssh = fake.home.join(".ssh");
        for (path, expected) in [
            (ssh.clone(), format!("{} or below it", ssh.display())),
            (ssh.join("keys"), format!("{} or below it", ssh.display())),
            (
                fake.home.join(".config/gcloud"),
                "/.config/gcloud or below it, which holds keys or logins".to_owned(),
            ),
            (fake.home.join(".claude"), "/.claude or below it".to_owned()),
            (
                fake.elsewhere.join("innocent"),
                "/.ssh or below it".to_owned(),
            ),
            (fake.home.clone(), "the home directory".to_owned()),
            (fake.home.join("code/.."), "the home directory".to_owned()),
            (root.clone(), "is a parent of".to_owned()),
            (fake.elsewhere.join("config"), "/etc or below it".to_owned()),
            (
                fake.elsewhere.join("sockets"),
                "/run or below it".to_owned(),
            ),
            (PathBuf::from("/"), "the root directory".to_owned()),
        ] {
            let err = cwd(&fake, &path).expect_err(&path.display().to_string());
            assert!(err.contains(&expected), "{}: {err}", path.display());
            assert!(err.contains("mount a project directory instead"), "{err}");
        }
        let err = cwd(&fake, &fake.elsewhere.join("innocent")).expect_err("link");
        assert!(err.contains("(resolved to"), "{err}");
    }

    #[test]
    fn the_mecha_home_and_the_docker_socket_directory_are_refused_with_their_parents() {
        let fake = fake();
        let mecha = fake.machine.mecha_home.clone().expect("mecha home");
        for path in [mecha.clone(), mecha.join("plugins")] {
            let err = cwd(&fake, &path).expect_err("mecha home");
            assert!(
                err.contains("the mecha home") && err.contains("holds secrets.yml"),
                "{err}"
            );
        }
        let err = cwd(&fake, mecha.parent().expect("parent")).expect_err("above the home");
        assert!(err.contains("is a parent of the mecha home"), "{err}");
        let sockets = fake.machine.docker_sockets[0]
            .parent()
            .expect("dir")
            .to_path_buf();
        let err = cwd(&fake, &sockets).expect_err("socket directory");
        assert!(err.contains("the Docker socket's directory"), "{err}");
        // A socket that does not exist makes nothing sensitive.
        let machine = Machine::current(
            None,
            &serde_yaml::from_str(&format!(
                "image: x\nhost: unix://{}/absent.sock",
                fake.home.join("code/project").display()
            ))
            .expect("docker"),
        );
        assert!(
            !machine
                .docker_sockets
                .iter()
                .any(|socket| socket.ends_with("absent.sock"))
        );
    }

    #[test]
    fn system_shared_and_root_directories_and_their_parents_are_sensitive() {
        let machine = Machine::default();
        for (path, expected) in [
            ("/etc/ssl", "/etc or below it"),
            ("/proc/1", "/proc or below it"),
            ("/run", "/run or below it"),
            ("/var/run", "/var/run or below it"),
            ("/usr", "/usr or below it"),
            ("/usr/local/bin", "/usr or below it"),
            ("/var/lib", "/var/lib or below it"),
            ("/var/lib/docker", "/var/lib or below it"),
            ("/var", "a parent of /var/run"),
            ("/root", "/root or below it"),
            ("/root/code", "/root or below it"),
            ("/home", "/home, which every user of the machine shares"),
            ("/tmp", "/tmp, which every user of the machine shares"),
            ("/home/alice", "the home directory /home/alice"),
            ("/home/alice/.ssh", "/home/alice/.ssh or below it"),
            ("/home/alice/.aws/x", "/home/alice/.aws or below it"),
        ] {
            let found = refused(&machine, path).unwrap_or_default();
            assert!(found.contains(expected), "{path}: {found}");
        }
        for fine in [
            "/etcetera",
            "/srv/code",
            "/home/alice/code/widgets",
            "/tmp/project",
            "/var/www/site",
            "/opt/agent/work",
        ] {
            assert_eq!(refused(&machine, fine), None, "{fine}");
        }
    }

    #[test]
    fn missing_paths_and_files_are_refused() {
        let fake = fake();
        let err = cwd(&fake, &fake.home.join("absent")).expect_err("missing");
        assert!(err.contains("cannot be used"), "{err}");
        let err = cwd(&fake, &fake.home.join("notes.txt")).expect_err("file");
        assert!(err.contains("is not a directory"), "{err}");
    }

    #[test]
    fn credentials_need_their_directory_in_home() {
        let fake = fake();
        let docker = DockerConfig {
            credentials: vec![Credential::Claude, Credential::Codex],
            ..serde_yaml::from_str("image: x").expect("valid")
        };
        let mut problems = Vec::new();
        check_docker(&docker, &fake.machine, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field.to_string(), "docker.credentials[1]");
        assert!(problems[0].message.contains(".codex does not exist"));
        let mut problems = Vec::new();
        check_docker(&docker, &Machine::default(), &mut problems);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("HOME is not set"));
    }
}
