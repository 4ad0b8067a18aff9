//! End-to-end tests: the real `mecha` binary, the real wasm plugins, a real SQLite file, real
//! HTTP over loopback. One test binary, one module per behaviour.

/// Running the daemon, building test plugins, signing and sending fixtures.
mod support;

/// Adapter workers against LLM stand-ins, and canary secrets that never leak.
mod adapters;
/// Answers in Slack threads, at slash commands' response URLs and as Telegram replies.
mod chat_answers;
/// `mecha plugin` and the other CLI commands.
mod cli;
/// Three daemons on one PostgreSQL database, through a crash.
mod cluster;
/// Misbehaving plugins fail their own call only; forbidden imports are refused at install.
mod containment;
/// The dashboard (`/ui`) in a real headless Chromium: signing in, events, traces, live updates.
mod dashboard;
/// Matching, fan-out, prompts, retries, dead letters, recovery and the audit trail.
mod dispatch;
/// Plugins installed from URLs, pinned by sha256 or signed with minisign by trusted keys.
mod distribution;
/// Managed workers on the real Docker engine: lifecycle, hardening, restarts, disposables.
mod docker;
/// The GitHub and GitLab stand-ins answer like the real APIs.
mod forge_standins;
/// The github plugin (as wasm) on every GitHub fixture, through the library API.
mod github_source;
/// The gitlab plugin (as wasm) on every GitLab fixture, through the library API.
mod gitlab_source;
/// Pull requests hydrated with their diff and files from a GitHub API stand-in.
mod hydration;
/// Webhooks in, durable events out: acknowledgement, duplicates, restarts, the API.
mod ingest;
/// Plugins built by the Python and C toolchains: sources serving webhooks, a policy in a chain,
/// and a sandbox that grants them nothing.
mod languages;
/// `mecha plugin new` projects that build and pass their test; `mecha plugin test` itself.
mod plugin_kit;
/// `mecha plugin push` and `install oci://` against a real OCI registry on loopback.
mod registry;
/// Status codes and messages for bad requests, signatures, keys and sizes.
mod rejection;
/// Attacks on the daemon's HTTP, secrets, workers and local files, and the defences that hold.
mod security;
/// The slack plugin (as wasm): the signature vector at its time, the window, the handshake,
/// every fixture.
mod slack_source;
/// Named source instances, refusal of missing secrets, 401s, Slack's handshake and retries.
mod source_instances;
/// A call served by a spare instance is a pristine one with its own settings and secrets.
mod spares;
/// The telegram plugin (as wasm) on every Telegram fixture, through the library API.
mod telegram_source;
/// A trace per event over OTLP, joined by workers and by responders' requests.
mod traces;
/// Cron schedules: ticks to events and tasks, overlapping ticks skipped.
mod triggers;
/// Consent to what plugins ask for, upgrades, rollbacks, live changes (also under load) and
/// installs killed at random points.
mod versions;
/// Policies over workers' results, and write-back to GitHub and GitLab stand-ins.
mod write_back;
