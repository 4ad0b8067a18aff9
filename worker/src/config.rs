//! What the worker runs with: the command line and the `WORKER_*` variables, resolved once at start.
//!
//! Two steps, as in ripgrep's flags: [`Options`] mirrors what the command line said and nothing
//! more; [`Config::resolve`] reads the environment and checks what needs the machine (the program
//! can be found, the work directory is one), so a bad deployment stops at start with a message
//! naming the variable or the path instead of failing its first task. The environment arrives as
//! an [`Environment`] snapshot rather than being read from the process: the same snapshot is what
//! the agent command inherits, and tests build a `Config` without touching the process's own.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::ApiKey;
use crate::backend::{Backend, CommandBackend};

/// 10 MiB: the reference runtime's cap on a task body, and the most mecha reads back from a worker.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;

/// 8080: the container port mecha publishes for a worker.
const DEFAULT_PORT: u16 = 8080;

/// 10 minutes: mecha's default worker timeout, so the worker gives up about when the daemon does.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(600_000);

/// Where mecha mounts the worker's `cwd`.
const DEFAULT_WORKDIR: &str = "/workspace";

/// The variable holding the key that guards the worker; never passed on to the agent.
const API_KEY_VAR: &str = "WORKER_API_KEY";

/// What the command line asked for, before anything is checked against the machine.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--listen`: overrides `0.0.0.0:$WORKER_PORT`.
    pub listen: Option<SocketAddr>,
    /// `--workdir`: where the command runs; `/workspace` when it exists, else the current directory.
    pub workdir: Option<PathBuf>,
    /// `--max-body-bytes`: the largest `POST /task` body accepted.
    pub max_body_bytes: u64,
    /// What answers tasks.
    pub agent: Agent,
}

/// The agent named on the command line.
#[derive(Debug, Clone)]
pub enum Agent {
    /// `-- PROGRAM [ARGS...]`: run this once per task.
    Command {
        program: OsString,
        args: Vec<OsString>,
    },
    /// `--echo`: the built-in backend for smoke tests.
    Echo,
}

/// Everything the server needs, checked.
#[derive(Debug)]
pub struct Config {
    /// Where `main` binds; [`crate::serve`] takes an already bound listener.
    pub listen: SocketAddr,
    /// `WORKER_API_KEY`, when set and not empty.
    pub api_key: Option<ApiKey>,
    /// `WORKER_TIMEOUT`: how long a task may run before it is stopped.
    pub timeout: Duration,
    /// `WORKER_DRY_RUN`: answer what would run, run nothing.
    pub dry_run: bool,
    pub max_body_bytes: u64,
    pub backend: Backend,
}

impl Config {
    /// Reads the `WORKER_*` variables from `env` and checks the options against the machine.
    pub fn resolve(options: Options, env: Environment) -> Result<Self, Error> {
        let port = env
            .parse("WORKER_PORT", "a port number from 1 to 65535", |text| {
                text.parse::<u16>().ok().filter(|port| *port != 0)
            })?
            .unwrap_or(DEFAULT_PORT);
        let timeout = env
            .parse(
                "WORKER_TIMEOUT",
                "a whole number of milliseconds greater than 0",
                |text| {
                    text.parse::<u64>()
                        .ok()
                        .filter(|millis| *millis > 0)
                        .map(Duration::from_millis)
                },
            )?
            .unwrap_or(DEFAULT_TIMEOUT);
        let dry_run = env
            .parse("WORKER_DRY_RUN", "true, 1, false or 0", parse_switch)?
            .unwrap_or(false);
        let api_key = env.text(API_KEY_VAR)?.map(ApiKey::new);
        let backend = match options.agent {
            Agent::Echo => Backend::Echo,
            Agent::Command { program, args } => Backend::Command(CommandBackend {
                program: find_program(&program, env.get("PATH"))?,
                args,
                workdir: resolve_workdir(options.workdir)?,
                env: env.without(API_KEY_VAR),
            }),
        };
        Ok(Self {
            listen: options
                .listen
                .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))),
            api_key,
            timeout,
            dry_run,
            max_body_bytes: options.max_body_bytes,
            backend,
        })
    }
}

/// A snapshot of environment variables: read for the `WORKER_*` settings and handed, less
/// `WORKER_API_KEY`, to the agent command.
#[derive(Clone, Default)]
pub struct Environment {
    vars: Vec<(OsString, OsString)>,
}

impl Environment {
    /// The process's environment, as it is now.
    pub fn capture() -> Self {
        std::env::vars_os().collect()
    }

    /// The value of `name`; the last one wins, as when the environment was built.
    fn get(&self, name: &str) -> Option<&OsStr> {
        self.vars
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_os_str())
    }

    /// The value of `name` as text; `None` when unset or empty (Docker passes `-e NAME=` as empty).
    fn text(&self, name: &'static str) -> Result<Option<&str>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => match value.to_str() {
                Some("") => Ok(None),
                Some(text) => Ok(Some(text)),
                None => Err(Error::NotUnicode { name }),
            },
        }
    }

    /// Parses `name` with `parse`; a value it refuses is an error naming the variable.
    fn parse<T>(
        &self,
        name: &'static str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        parse(text.trim())
            .map(Some)
            .ok_or_else(|| Error::InvalidVariable {
                name,
                value: text.to_owned(),
                expected,
            })
    }

    /// Every variable but `name`.
    fn without(self, name: &str) -> Vec<(OsString, OsString)> {
        self.vars
            .into_iter()
            .filter(|(key, _)| key != name)
            .collect()
    }
}

impl<K: Into<OsString>, V: Into<OsString>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(vars: I) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        }
    }
}

/// Names only: values include the agent's credentials.
impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.vars.iter().map(|(key, _)| key))
            .finish()
    }
}

/// Why the worker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name}={value:?} is not valid: expected {expected}")]
    InvalidVariable {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{name} is not valid UTF-8")]
    NotUnicode { name: &'static str },
    #[error(
        "program `{program}` was not found on PATH ({path}); install it in the image or give its \
         path after `--`"
    )]
    ProgramNotFound { program: String, path: String },
    #[error("program {} does not exist", path.display())]
    ProgramMissing { path: PathBuf },
    #[error("program {} is not an executable file", path.display())]
    ProgramNotExecutable { path: PathBuf },
    #[error("--workdir {} is not a directory", path.display())]
    WorkdirNotDirectory { path: PathBuf },
    #[error("cannot find the current directory")]
    CurrentDir(#[source] std::io::Error),
}

fn parse_switch(text: &str) -> Option<bool> {
    match text {
        "1" => Some(true),
        "0" => Some(false),
        _ if text.eq_ignore_ascii_case("true") => Some(true),
        _ if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The program to spawn, as an absolute path: a name is looked up on `PATH` now, so a missing
/// agent is a start-up error rather than every task's.
fn find_program(program: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, Error> {
    let program = Path::new(program);
    if program.components().count() > 1 || program.is_absolute() {
        let path = std::path::absolute(program).map_err(Error::CurrentDir)?;
        return match std::fs::metadata(&path) {
            Err(_) => Err(Error::ProgramMissing { path }),
            Ok(_) if !is_executable_file(&path) => Err(Error::ProgramNotExecutable { path }),
            Ok(_) => Ok(path),
        };
    }
    path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        // An empty PATH entry means the current directory, which is not where an agent lives.
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
        .ok_or_else(|| Error::ProgramNotFound {
            program: program.display().to_string(),
            path: path_var.map_or_else(
                || "PATH is not set".to_owned(),
                |path| path.to_string_lossy().into_owned(),
            ),
        })
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

fn resolve_workdir(workdir: Option<PathBuf>) -> Result<PathBuf, Error> {
    match workdir {
        Some(path) if path.is_dir() => std::path::absolute(&path).map_err(Error::CurrentDir),
        Some(path) => Err(Error::WorkdirNotDirectory { path }),
        None if Path::new(DEFAULT_WORKDIR).is_dir() => Ok(PathBuf::from(DEFAULT_WORKDIR)),
        None => std::env::current_dir().map_err(Error::CurrentDir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Options {
        Options {
            listen: None,
            workdir: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            agent: Agent::Echo,
        }
    }

    fn command(program: &str) -> Options {
        Options {
            workdir: Some(std::env::temp_dir()),
            agent: Agent::Command {
                program: program.into(),
                args: vec!["-c".into(), "true".into()],
            },
            ..echo()
        }
    }

    fn env(vars: &[(&str, &str)]) -> Environment {
        vars.iter().copied().collect()
    }

    fn system_path() -> Environment {
        [("PATH", std::env::var_os("PATH").unwrap_or_default())]
            .into_iter()
            .collect()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = Config::resolve(echo(), Environment::default()).expect("resolves");
        assert_eq!(config.listen, "0.0.0.0:8080".parse().expect("address"));
        assert_eq!(config.timeout, Duration::from_secs(600));
        assert!(!config.dry_run);
        assert!(config.api_key.is_none());
        assert_eq!(config.max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(config.backend.name(), "echo");
    }

    #[test]
    fn variables_set_port_timeout_dry_run_and_key() {
        let config = Config::resolve(
            echo(),
            env(&[
                ("WORKER_PORT", "9000"),
                ("WORKER_TIMEOUT", "1500"),
                ("WORKER_DRY_RUN", "1"),
                ("WORKER_API_KEY", "k"),
            ]),
        )
        .expect("resolves");
        assert_eq!(config.listen, "0.0.0.0:9000".parse().expect("address"));
        assert_eq!(config.timeout, Duration::from_millis(1500));
        assert!(config.dry_run);
        assert!(config.api_key.is_some_and(|key| key.matches(b"k")));
    }

    #[test]
    fn listen_flag_wins_over_worker_port() {
        let options = Options {
            listen: Some("127.0.0.1:0".parse().expect("address")),
            ..echo()
        };
        let config = Config::resolve(options, env(&[("WORKER_PORT", "9000")])).expect("resolves");
        assert_eq!(config.listen, "127.0.0.1:0".parse().expect("address"));
    }

    #[test]
    fn an_empty_key_turns_auth_off() {
        let config = Config::resolve(echo(), env(&[("WORKER_API_KEY", "")])).expect("resolves");
        assert!(config.api_key.is_none());
    }

    #[test]
    fn dry_run_reads_true_and_false_in_any_case() {
        for (text, expected) in [
            ("true", true),
            ("TRUE", true),
            ("0", false),
            ("False", false),
        ] {
            let config =
                Config::resolve(echo(), env(&[("WORKER_DRY_RUN", text)])).expect("resolves");
            assert_eq!(config.dry_run, expected, "{text}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("WORKER_TIMEOUT", "abc"),
            ("WORKER_TIMEOUT", "0"),
            ("WORKER_TIMEOUT", "-5"),
            ("WORKER_PORT", "99999"),
            ("WORKER_PORT", "0"),
            ("WORKER_DRY_RUN", "yes"),
        ] {
            let err = Config::resolve(echo(), env(&[(name, value)])).expect_err(value);
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("{name}=\"{value}\" is not valid")),
                "{message}"
            );
        }
    }

    #[test]
    fn a_program_name_is_found_on_path() {
        let config = Config::resolve(command("sh"), system_path()).expect("resolves");
        let Backend::Command(backend) = config.backend else {
            panic!("expected the command backend");
        };
        assert!(backend.program.is_absolute(), "{:?}", backend.program);
        assert!(backend.program.ends_with("sh"));
    }

    #[test]
    fn a_missing_program_stops_the_start() {
        let err = Config::resolve(command("no-such-agent-program"), system_path())
            .expect_err("not found");
        assert!(
            err.to_string()
                .starts_with("program `no-such-agent-program` was not found on PATH"),
            "{err}"
        );
        let err = Config::resolve(command("/no/such/agent"), system_path()).expect_err("missing");
        assert_eq!(err.to_string(), "program /no/such/agent does not exist");
        let err = Config::resolve(command("sh"), Environment::default()).expect_err("no PATH");
        assert!(err.to_string().contains("PATH is not set"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_executable_is_refused() {
        let dir = std::env::temp_dir().join(format!("mecha-worker-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let script = dir.join("agent.txt");
        std::fs::write(&script, "not a program").expect("write");
        let err = Config::resolve(command(&script.to_string_lossy()), system_path())
            .expect_err("not executable");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(matches!(err, Error::ProgramNotExecutable { .. }), "{err}");
    }

    #[test]
    fn the_workdir_must_be_a_directory() {
        let options = Options {
            workdir: Some(PathBuf::from("/no/such/dir")),
            ..command("sh")
        };
        let err = Config::resolve(options, system_path()).expect_err("no dir");
        assert_eq!(err.to_string(), "--workdir /no/such/dir is not a directory");
    }

    #[test]
    fn the_command_environment_leaves_out_the_api_key() {
        let vars = system_path()
            .vars
            .into_iter()
            .chain([
                ("WORKER_API_KEY".into(), "secret".into()),
                ("ANTHROPIC_API_KEY".into(), "agent-credential".into()),
            ])
            .collect::<Environment>();
        let config = Config::resolve(command("sh"), vars).expect("resolves");
        let Backend::Command(backend) = config.backend else {
            panic!("expected the command backend");
        };
        let names: Vec<_> = backend.env.iter().map(|(key, _)| key.as_os_str()).collect();
        assert!(!names.contains(&OsStr::new("WORKER_API_KEY")), "{names:?}");
        assert!(
            names.contains(&OsStr::new("ANTHROPIC_API_KEY")),
            "{names:?}"
        );
    }

    #[test]
    fn debug_output_shows_no_values() {
        let vars = env(&[("WORKER_API_KEY", "secret-value")]);
        assert_eq!(format!("{vars:?}"), r#"["WORKER_API_KEY"]"#);
        let config = Config::resolve(echo(), vars).expect("resolves");
        assert!(!format!("{config:?}").contains("secret-value"));
    }
}
