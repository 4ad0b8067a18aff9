//! The worker contract, checked over real HTTP against a worker started in-process on a free
//! loopback port (the `binary` module runs the built `mecha-worker` instead).
//!
//! - `auth`: the API key on every path but `/health`;
//! - `validation`: what a malformed request gets (411, 413, 400, 404, 405);
//! - `single_flight`: one task at a time, and `/health` saying so;
//! - `command`: the command backend, from prompt to result, failures and timeouts;
//! - `echo`: the built-in backend for smoke tests;
//! - `binary`: the command line, start-up errors and shutdown on SIGTERM.
//!
//! `worker` is support: it starts workers and sends requests.

mod auth;
mod binary;
mod command;
mod echo;
mod single_flight;
mod validation;
mod worker;
