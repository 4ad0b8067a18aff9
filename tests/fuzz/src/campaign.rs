//! Runs many inputs against one target on every core and tallies what happened.
//!
//! Inputs are handed out in index order, in chunks, to worker threads. Each input depends only
//! on the seed, the target and its index, so the tally is the same on any number of threads, and
//! the failure reported is the one with the lowest index: workers stop taking chunks once one is
//! found but finish the chunk they hold, so every lower index has been run.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::catch;
use crate::corpus::Corpus;
use crate::rng::Rng;
use crate::targets::{Case, Rejection, Target, Verdict};

/// Inputs a worker takes at a time: large enough to keep the shared counter cold, small enough
/// that a stop is quick.
const CHUNK: u64 = 256;

/// 8 MiB, the main thread's stack on Linux: a parser must not need more than an ordinary
/// thread gives it, so workers do not get extra.
const WORKER_STACK: usize = 8 << 20;

/// What happened to the inputs of one target.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub inputs: u64,
    pub accepted: u64,
    pub unauthorized: u64,
    pub bad_request: u64,
    pub internal: u64,
    pub panics: u64,
    /// Accepted results that break an invariant.
    pub broken: u64,
}

impl Tally {
    fn count(&mut self, verdict: &Verdict) {
        self.inputs += 1;
        let counter = match verdict {
            Verdict::Accepted => &mut self.accepted,
            Verdict::Rejected(Rejection::Unauthorized) => &mut self.unauthorized,
            Verdict::Rejected(Rejection::BadRequest) => &mut self.bad_request,
            Verdict::Rejected(Rejection::Internal) => &mut self.internal,
            Verdict::Panicked(_) => &mut self.panics,
            Verdict::Broken { .. } => &mut self.broken,
        };
        *counter += 1;
    }

    pub fn add(&mut self, other: &Tally) {
        self.inputs += other.inputs;
        self.accepted += other.accepted;
        self.unauthorized += other.unauthorized;
        self.bad_request += other.bad_request;
        self.internal += other.internal;
        self.panics += other.panics;
        self.broken += other.broken;
    }

    pub fn failures(&self) -> u64 {
        self.panics + self.broken
    }
}

/// The first failing input of a campaign.
#[derive(Debug)]
pub struct Failure {
    pub index: u64,
    pub case: Case,
    pub verdict: Verdict,
}

/// One target's campaign.
#[derive(Debug)]
pub struct Report {
    pub target: &'static str,
    pub tally: Tally,
    pub elapsed: Duration,
    pub failure: Option<Failure>,
}

/// The input `index` of `target` in the campaign `seed`.
pub fn generate(target: &Target, corpus: &Corpus, seed: u64, index: u64) -> Case {
    (target.generate)(&mut Rng::for_input(seed, target.name, index), corpus)
}

/// Calls `target` on `case`, catching a panic.
pub fn execute(target: &Target, case: &Case) -> Verdict {
    catch::call(|| (target.run)(case)).unwrap_or_else(Verdict::Panicked)
}

/// Runs inputs `0..inputs` of `target` on `threads` threads, stopping at the first failure.
pub fn run(
    target: &Target,
    corpus: &Corpus,
    seed: u64,
    inputs: u64,
    threads: usize,
) -> io::Result<Report> {
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let work = || {
        let mut tally = Tally::default();
        let mut failure: Option<Failure> = None;
        while !stop.load(Ordering::Relaxed) {
            let start = next.fetch_add(CHUNK, Ordering::Relaxed);
            if start >= inputs {
                break;
            }
            for index in start..(start + CHUNK).min(inputs) {
                let case = generate(target, corpus, seed, index);
                let verdict = execute(target, &case);
                tally.count(&verdict);
                if failure.is_none() && verdict.failure().is_some() {
                    stop.store(true, Ordering::Relaxed);
                    failure = Some(Failure {
                        index,
                        case,
                        verdict,
                    });
                }
            }
        }
        (tally, failure)
    };
    let results = thread::scope(|scope| {
        let workers = (0..threads.max(1))
            .map(|number| {
                thread::Builder::new()
                    .name(format!("{}-{number}", target.name))
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(scope, work)
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok::<_, io::Error>(
            workers
                .into_iter()
                .map(|worker| {
                    worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Vec<_>>(),
        )
    })?;
    let mut report = Report {
        target: target.name,
        tally: Tally::default(),
        elapsed: started.elapsed(),
        failure: None,
    };
    for (tally, failure) in results {
        report.tally.add(&tally);
        if let Some(failure) = failure
            && report
                .failure
                .as_ref()
                .is_none_or(|first| failure.index < first.index)
        {
            report.failure = Some(failure);
        }
    }
    Ok(report)
}

impl fmt::Display for Tally {
    /// `inputs 1000000  accepted 612345  rejected 387655 (bad-request 387655, unauthorized 0,
    /// internal 0)  panics 0  broken 0`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inputs {:>8}  accepted {:>8}  rejected {:>8} (bad-request {}, unauthorized {}, internal {})  panics {}  broken {}",
            self.inputs,
            self.accepted,
            self.bad_request + self.unauthorized + self.internal,
            self.bad_request,
            self.unauthorized,
            self.internal,
            self.panics,
            self.broken,
        )
    }
}

/// `<source>  <tally>  <seconds> s  <inputs>/s`, one line of the campaign's table.
pub fn line(name: &str, tally: &Tally, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        tally.inputs as f64 / seconds
    } else {
        0.0
    };
    format!("{name:<16} {tally}  {seconds:>7.1} s  {rate:>8.0}/s")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&line(self.target, &self.tally, self.elapsed))
    }
}
