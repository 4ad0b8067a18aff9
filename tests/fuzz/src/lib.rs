//! Fuzzes the native builds of mecha's source parsers.
//!
//! Source plugins keep their parsing in plain functions that compile natively (see each plugin's
//! `parse.rs`), and those functions promise never to panic on anything a sender can put in a
//! request. This crate checks the promise with millions of generated inputs per entry point:
//! real fixtures and hand-written seeds ([`corpus`]), mutated byte-wise, as JSON and as forms
//! ([`mutate`]), under generated headers; every call runs under `catch_unwind`.
//!
//! No fuzzing engine is involved: generation is deterministic from a seed ([`rng`]), so a
//! failure replays from the seed, the source and the input's index, and a short campaign runs
//! as an ordinary test.

pub mod campaign;
mod catch;
pub mod corpus;
pub mod dump;
mod headers;
mod hostile;
mod mutate;
mod rng;
mod seeds;
pub mod shrink;
pub mod targets;

use campaign::Failure;
use targets::Target;

/// The campaign seed when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 0x6d65_6368_6121;

/// The inputs per source when `--inputs` is not given.
pub const DEFAULT_INPUTS: u64 = 1_000_000;

/// The target `--source` names, if any.
pub fn target(name: &str) -> Option<&'static Target> {
    targets::ALL.iter().find(|target| target.name == name)
}

/// The command that replays input `index` of `source`.
pub fn replay_command(source: &str, seed: u64, index: u64) -> String {
    format!(
        "cargo run --release -p mecha-fuzz -- --source {source} --seed {seed:#x} --index {index}"
    )
}

/// Shrinks `failure`, writes it (minimal and original input) to the failure directory, and
/// returns what to tell the user: the failure, the file and the replay command.
pub fn record_failure(target: &Target, seed: u64, failure: &Failure) -> String {
    let signature = failure.verdict.failure().unwrap_or_default();
    let minimal = shrink::shrink(target, &failure.case, &signature);
    let what = match &failure.verdict {
        targets::Verdict::Panicked(message) => format!("panicked: {message}"),
        targets::Verdict::Broken { invariant, detail } => {
            format!("broke the invariant \"{invariant}\": {detail}")
        }
        other => format!("{other:?}"),
    };
    let replay = replay_command(target.name, seed, failure.index);
    let text = format!(
        "source: {}\nseed: {seed:#x}\nindex: {}\n{what}\nreplay: {replay}\n\n\
         --- minimal input ---\n{}\n--- original input ---\n{}",
        target.name,
        failure.index,
        dump::describe(&minimal),
        dump::describe(&failure.case),
    );
    let file = match dump::write_failure(target.name, failure.index, &text) {
        Ok(path) => format!("input written to {}", path.display()),
        Err(err) => format!(
            "could not write the input to {}: {err}",
            dump::failure_dir().display()
        ),
    };
    format!(
        "{}: input {} {what}\n  {file}\n  replay: {replay}\n--- minimal input ---\n{}",
        target.name,
        failure.index,
        dump::describe(&minimal)
    )
}

#[cfg(test)]
mod tests;
