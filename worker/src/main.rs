//! The `mecha-worker` command: parses the command line, reads the environment, starts logging and
//! serves until SIGTERM (what `docker stop` sends) or SIGINT.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mecha_worker::{Agent, Config, DEFAULT_MAX_BODY_BYTES, Environment, Options};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

const ENVIRONMENT_HELP: &str = "\
Environment:
  WORKER_PORT      Port to listen on, on every address, when --listen is not given [default: 8080]
  WORKER_API_KEY   When set, every path but /health needs `Authorization: Bearer KEY` or
                   `X-API-Key: KEY`; the command never sees it
  WORKER_TIMEOUT   Milliseconds a task may run before its whole process group is killed and the
                   task fails [default: 600000]
  WORKER_DRY_RUN   true or 1: answer each task with its prompt and the backend, running nothing
  RUST_LOG         Log filter for the log on standard error [default: info]

The command gets the prompt on standard input and runs in the work directory with the worker's
environment less WORKER_API_KEY, plus MECHA_TASK_ID (the task's ID) and MECHA_CONTEXT (the task's
context as JSON). Its standard output is the answer: Claude Code's `--output-format json` summary,
a JSON object with result fields (output, comment, labels, status, commit, metadata), or text.

Examples:
  mecha-worker -- claude-worker
  mecha-worker --echo --listen 127.0.0.1:8080";

/// Serves mecha's worker contract (GET /health, POST /task) around a command-line agent: each
/// task runs PROGRAM once.
#[derive(Parser)]
#[command(
    name = "mecha-worker",
    version,
    override_usage = "mecha-worker [OPTIONS] -- PROGRAM [ARGS]...\n       mecha-worker [OPTIONS] --echo",
    after_help = ENVIRONMENT_HELP
)]
struct Args {
    /// Address to listen on [default: 0.0.0.0:$WORKER_PORT]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Directory the command runs in [default: /workspace if it exists, else the current
    /// directory]
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,

    /// Largest POST /task body accepted, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_body_bytes: u64,

    /// Answer each task with its own prompt instead of running a command, for smoke tests
    #[arg(long, conflicts_with = "command")]
    echo: bool,

    /// The agent to run for each task, with its arguments, after `--`
    #[arg(last = true, value_name = "PROGRAM", required_unless_present = "echo")]
    command: Vec<OsString>,
}

impl Args {
    fn into_options(self) -> Options {
        let mut command = self.command.into_iter();
        let agent = match command.next() {
            Some(program) if !self.echo => Agent::Command {
                program,
                args: command.collect(),
            },
            _ => Agent::Echo,
        };
        Options {
            listen: self.listen,
            workdir: self.workdir,
            max_body_bytes: self.max_body_bytes,
            agent,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Args::parse().into_options();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = match Config::resolve(options, Environment::capture()) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    let listener = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("mecha-worker: cannot listen on {}: {err}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    match mecha_worker::serve(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// Prints the error with its causes and picks the exit status.
fn fail(err: &dyn std::error::Error) -> ExitCode {
    eprintln!("mecha-worker: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    ExitCode::FAILURE
}

/// Completes on SIGTERM or SIGINT. A handler that cannot be installed only costs that signal its
/// graceful path: the process still stops, by Docker's SIGKILL.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: no new connections, a running task may finish");
}
