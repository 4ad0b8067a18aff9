//! Workers: which workers exist and in what state ([`registry`]), who moves them between
//! states ([`state`]), what each kind does to start, stop, run a task and stay healthy
//! ([`runtime`]), how they are shown ([`view`]) and brought back from `error` ([`monitor`]),
//! the HTTP contract every worker speaks ([`client`]), what a worker's reply may ask for
//! ([`result`]), the in-process adapters to LLM servers ([`adapter`]), and the containers of
//! managed workers ([`docker`]).

pub mod adapter;
mod body;
pub mod client;
pub mod docker;
pub mod monitor;
pub mod registry;
pub mod result;
pub mod retry_after;
pub mod runtime;
pub mod state;
pub mod view;
