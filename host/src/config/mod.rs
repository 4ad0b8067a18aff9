//! Configuration: where mecha keeps its files ([`home`]), the daemon's settings
//! ([`server`], with the triggers' [`schedule`]s) and the operator's secrets ([`secrets`]).
//!
//! Files are parsed strictly (unknown keys are errors that name the key, line and column), so a
//! typo never silently turns a setting off.

pub mod api_key;
pub mod home;
pub mod http;
pub mod name;
pub mod private_file;
pub mod schedule;
pub mod secrets;
pub mod server;
pub mod worker;
mod yaml;

use std::path::PathBuf;

/// Errors reading mecha's own files. Each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not create the mecha directory {path}: {source}")]
    CreateHome {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the mecha directory {path} is open to other users (mode {mode:o}) and could not be made \
         private: {source}; run `chmod 700 {path}` as its owner"
    )]
    TightenHome {
        path: PathBuf,
        mode: u32,
        source: std::io::Error,
    },
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "the system gave no randomness to generate the API key ({0}); set api_key in config.yml"
    )]
    Randomness(String),
    #[error("could not write {path}: {source}; check that the mecha directory is writable")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is open to other users (mode {mode:o}), but it holds secrets and must be private: \
         run `chmod 600 {path}`"
    )]
    SecretsPermissions { path: PathBuf, mode: u32 },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// A `${VAR}` in a worker definition could not be resolved (unset, or written wrong).
    #[error("worker {worker}: {field}: {message}")]
    Interpolate {
        worker: String,
        field: String,
        message: String,
    },
    /// A `backend.name` token reference that does not lead to a token in `secrets.yml`.
    #[error("token reference `{reference}`: {message}")]
    TokenReference { reference: String, message: String },
    /// A token whose prefix does not say which variable a worker container reads it from. The
    /// token itself is never part of the message.
    #[error(
        "the token does not start with sk-ant-oat (Claude OAuth), sk-ant- (Anthropic API key) or \
         sk- (Codex); set the variable it belongs in through docker.env instead"
    )]
    TokenPrefix,
}

/// Turns a serde_yaml error into a message with the line and column it points at, and without
/// the value it quoted (see [`yaml`]).
fn yaml_error(path: &std::path::Path, err: serde_yaml::Error) -> Error {
    let message = match yaml::describe(&err) {
        (Some((line, column)), message) => format!("line {line} column {column}: {message}"),
        (None, message) => message,
    };
    Error::Parse {
        path: path.to_owned(),
        message,
    }
}
