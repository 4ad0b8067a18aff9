//! mecha-worker: mecha's worker contract, served from inside a worker's container around any
//! command-line agent.
//!
//! mecha sends a worker each task as `POST /task` and writes the reply back to where the event
//! came from; between tasks it probes `GET /health`. This crate is that server, so a worker image
//! needs only a program that reads a prompt on standard input and answers on standard output, as
//! Claude Code's `claude -p` does. The binary's `main` only parses the command line; everything
//! else is here, so tests run the server in-process.
//!
//! - `config`: the flags and `WORKER_*` variables, resolved and checked once at start;
//! - `server`: the routes, the API key check (`auth`) and the single flight;
//! - `task`: the request body and its checks;
//! - `backend`: what answers a task, the agent command or the built-in echo;
//! - `capture` and `process_group`: how the command's output is read and its processes stopped;
//! - `result`: how an agent's output becomes mecha's result contract.

mod auth;
mod backend;
mod capture;
mod config;
mod process_group;
mod result;
mod server;
mod task;

pub use config::{
    Agent, Config, DEFAULT_MAX_BODY_BYTES, Environment, Error as ConfigError, Options,
};
pub use server::serve;
