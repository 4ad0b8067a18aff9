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

/// System directories that no worker may mount, nor anything below them.
const SENSITIVE_SYSTEM_DIRS: [&str; 5] = ["/etc", "/proc", "/sys", "/dev", "/boot"];

/// Directories below a home directory that hold keys, tokens and logins; neither they nor
/// anything below them may be mounted.
const SENSITIVE_HOME_DIRS: [&str; 8] = [
    ".mecha",
    ".ssh",
    ".gnupg",
    ".aws",
    ".config/gcloud",
    ".claude",
    ".codex",
    ".gemini",
];

/// root's home, sensitive whoever runs mecha.
const ROOT_HOME: &str = "/root";

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
        check_cwd(Path::new(cwd), &homes(home))
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

/// The home directories whose contents are sensitive: root's and the current user's.
fn homes(home: Option<&Path>) -> Vec<PathBuf> {
    let mut homes = vec![PathBuf::from(ROOT_HOME)];
    homes.extend(home.map(Path::to_path_buf));
    homes
}

impl WorkerDef {
    /// Checks what depends on this machine, for a managed worker: `docker.cwd` exists, is a
    /// directory and, once symlinks are resolved, is not sensitive (a system directory, a home
    /// directory itself, or a key or login directory in one); each of `docker.credentials` has
    /// its directory in the current user's home. Run it on the interpolated definition.
    pub fn validate_host(&self) -> Result<(), LoadErrors> {
        self.validate_host_for(current_home().as_deref())
    }

    /// [`WorkerDef::validate_host`] with `home` as the current user's home directory.
    pub fn validate_host_for(&self, home: Option<&Path>) -> Result<(), LoadErrors> {
        let mut problems = Vec::new();
        if let Some(docker) = &self.docker {
            check_docker(docker, home, &mut problems);
        }
        into_result(problems)
    }
}

/// The host checks of `docker`, with `home` the current user's home directory.
fn check_docker(docker: &DockerConfig, home: Option<&Path>, problems: &mut Vec<Problem>) {
    let at = FieldPath::root().key("docker");
    if let Some(cwd) = &docker.cwd
        && let Err(message) = check_cwd(Path::new(cwd), &homes(home))
    {
        problems.push(Problem::new(&at.key("cwd"), message));
    }
    for (index, credential) in docker.credentials.iter().enumerate() {
        let field = at.key("credentials").index(index);
        let Some(home) = home else {
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

/// Resolves `cwd` and checks that it may be mounted; returns the resolved path.
fn check_cwd(cwd: &Path, homes: &[PathBuf]) -> Result<PathBuf, String> {
    let resolved = cwd
        .canonicalize()
        .map_err(|err| format!("{} cannot be used: {err}", cwd.display()))?;
    if !resolved.is_dir() {
        return Err(format!("{} is not a directory", resolved.display()));
    }
    if let Some(reason) = sensitive(&resolved, homes) {
        let shown = if resolved == cwd {
            resolved.display().to_string()
        } else {
            format!("{} (resolved to {})", cwd.display(), resolved.display())
        };
        return Err(format!(
            "{shown} is {reason}; mount a project directory instead"
        ));
    }
    Ok(resolved)
}

/// Why the resolved `path` is sensitive, if it is. Each home and system directory is compared
/// both as written and resolved, since they may be symlinks themselves (`/etc` on macOS).
fn sensitive(path: &Path, homes: &[PathBuf]) -> Option<String> {
    if path.parent().is_none() {
        return Some("the root directory".to_owned());
    }
    for dir in SENSITIVE_SYSTEM_DIRS {
        if forms(Path::new(dir))
            .iter()
            .any(|dir| path.starts_with(dir))
        {
            return Some(format!("{dir} or below it"));
        }
    }
    for home in homes {
        for home in forms(home) {
            if path == home {
                return Some("a home directory".to_owned());
            }
            for dir in SENSITIVE_HOME_DIRS {
                if path.starts_with(home.join(dir)) {
                    return Some(format!("~/{dir} or below it, which holds keys or logins"));
                }
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

    /// A fake home with a login directory, a project and a few links.
    struct Machine {
        _temp: tempfile::TempDir,
        home: PathBuf,
        elsewhere: PathBuf,
    }

    fn machine() -> Machine {
        let temp = tempfile::tempdir().expect("temp");
        let root = temp.path().canonicalize().expect("resolves");
        let home = root.join("home");
        let elsewhere = root.join("elsewhere");
        for dir in [
            home.join(".ssh/keys"),
            home.join(".config/gcloud"),
            home.join(".claude"),
            home.join("code/project"),
            elsewhere.clone(),
        ] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(home.join("notes.txt"), "x").expect("write");
        symlink(home.join(".ssh"), elsewhere.join("innocent")).expect("link");
        symlink("/etc", elsewhere.join("config")).expect("link");
        symlink(home.join("code/project"), elsewhere.join("project")).expect("link");
        Machine {
            _temp: temp,
            home,
            elsewhere,
        }
    }

    fn cwd(machine: &Machine, path: &Path) -> Result<PathBuf, String> {
        check_cwd(path, &[PathBuf::from(ROOT_HOME), machine.home.clone()])
    }

    #[test]
    fn a_project_directory_is_fine_even_through_a_link() {
        let machine = machine();
        let project = machine.home.join("code/project");
        assert_eq!(cwd(&machine, &project), Ok(project.clone()));
        assert_eq!(
            cwd(&machine, &machine.elsewhere.join("project")),
            Ok(project)
        );
    }

    #[test]
    fn key_directories_and_homes_are_refused_after_resolving_links() {
        let machine = machine();
        for (path, expected) in [
            (machine.home.join(".ssh"), "~/.ssh or below it"),
            (machine.home.join(".ssh/keys"), "~/.ssh or below it"),
            (
                machine.home.join(".config/gcloud"),
                "~/.config/gcloud or below it",
            ),
            (machine.home.join(".claude"), "~/.claude or below it"),
            (machine.elsewhere.join("innocent"), "~/.ssh or below it"),
            (machine.home.clone(), "a home directory"),
            (machine.elsewhere.join("config"), "/etc or below it"),
            (PathBuf::from("/"), "the root directory"),
        ] {
            let err = cwd(&machine, &path).expect_err(&path.display().to_string());
            assert!(err.contains(expected), "{}: {err}", path.display());
        }
        let err = cwd(&machine, &machine.elsewhere.join("innocent")).expect_err("link");
        assert!(err.contains("(resolved to"), "{err}");
    }

    #[test]
    fn system_and_root_home_are_sensitive() {
        let homes = [PathBuf::from(ROOT_HOME)];
        assert!(sensitive(Path::new("/etc/ssl"), &homes).is_some());
        assert!(sensitive(Path::new("/proc/1"), &homes).is_some());
        assert!(sensitive(Path::new("/root"), &homes).is_some());
        assert!(sensitive(Path::new("/root/.aws/x"), &homes).is_some());
        assert!(
            sensitive(Path::new("/etcetera"), &homes).is_none(),
            "a component, not a prefix"
        );
        assert!(sensitive(Path::new("/srv/code"), &homes).is_none());
    }

    #[test]
    fn missing_paths_and_files_are_refused() {
        let machine = machine();
        let err = cwd(&machine, &machine.home.join("absent")).expect_err("missing");
        assert!(err.contains("cannot be used"), "{err}");
        let err = cwd(&machine, &machine.home.join("notes.txt")).expect_err("file");
        assert!(err.contains("is not a directory"), "{err}");
    }

    #[test]
    fn credentials_need_their_directory_in_home() {
        let machine = machine();
        let docker = DockerConfig {
            credentials: vec![Credential::Claude, Credential::Codex],
            ..serde_yaml::from_str("image: x").expect("valid")
        };
        let mut problems = Vec::new();
        check_docker(&docker, Some(&machine.home), &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field.to_string(), "docker.credentials[1]");
        assert!(problems[0].message.contains(".codex does not exist"));
        let mut problems = Vec::new();
        check_docker(&docker, None, &mut problems);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("HOME is not set"));
    }
}
