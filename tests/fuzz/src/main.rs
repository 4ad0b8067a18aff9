//! `mecha-fuzz [--inputs N] [--seed S] [--source NAME] [--index I] [--threads T]`
//!
//! Runs N generated inputs (default 1,000,000) against each source parser, prints a line per
//! source and a total, and exits 1 if any input made a parser panic or break an invariant, after
//! writing the input to `target/fuzz-failures/`. `--index` replays a single input.

use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use mecha_fuzz::campaign::{self, Tally};
use mecha_fuzz::corpus::Corpus;
use mecha_fuzz::targets::{self, Target};
use mecha_fuzz::{DEFAULT_INPUTS, DEFAULT_SEED, dump, record_failure};

const USAGE: &str = "usage: mecha-fuzz [--inputs N] [--seed S] [--source NAME] [--index I] [--threads T]
  --inputs N     inputs per source (default 1000000)
  --seed S       campaign seed, decimal or 0x-hex (default 0x6d6563686121)
  --source NAME  only this source: github, github-hydrate, generic, gitlab, slack, slack-signature, telegram
  --index I      replay input I of --source alone, printing it
  --threads T    worker threads (default: one per core)";

struct Options {
    inputs: u64,
    seed: u64,
    source: Option<&'static Target>,
    index: Option<u64>,
    threads: usize,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            inputs: DEFAULT_INPUTS,
            seed: DEFAULT_SEED,
            source: None,
            index: None,
            threads: thread::available_parallelism().map_or(1, usize::from),
        };
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--inputs" => options.inputs = number(&flag, &value)?,
                "--seed" => options.seed = number(&flag, &value)?,
                "--index" => options.index = Some(number(&flag, &value)?),
                "--threads" => {
                    options.threads = usize::try_from(number(&flag, &value)?)
                        .map_err(|_| format!("--threads {value} is too many"))?
                }
                "--source" => {
                    options.source = Some(
                        mecha_fuzz::target(&value)
                            .ok_or_else(|| format!("no source named {value:?}"))?,
                    )
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if options.index.is_some() && options.source.is_none() {
            return Err("--index needs --source".into());
        }
        Ok(options)
    }
}

/// A decimal or `0x`-prefixed hexadecimal number.
fn number(flag: &str, text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.replace('_', "").parse(),
    };
    parsed.map_err(|_| format!("{flag} takes a number, not {text:?}"))
}

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(problem) if problem.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("mecha-fuzz: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let corpus = match Corpus::load() {
        Ok(corpus) => corpus,
        Err(err) => {
            eprintln!("mecha-fuzz: cannot load the seeds: {err}");
            return ExitCode::from(2);
        }
    };
    match (options.source, options.index) {
        (Some(target), Some(index)) => replay(target, &corpus, options.seed, index),
        _ => fuzz(&options, &corpus),
    }
}

/// Runs the campaign over the selected sources and prints the table.
fn fuzz(options: &Options, corpus: &Corpus) -> ExitCode {
    let selected: Vec<&Target> = match options.source {
        Some(target) => vec![target],
        None => targets::ALL.iter().collect(),
    };
    println!(
        "mecha-fuzz: seed {:#x}, {} inputs per source, {} threads",
        options.seed, options.inputs, options.threads
    );
    let started = Instant::now();
    let mut total = Tally::default();
    let mut failures = Vec::new();
    for target in selected {
        match campaign::run(
            target,
            corpus,
            options.seed,
            options.inputs,
            options.threads,
        ) {
            Ok(report) => {
                println!("{report}");
                total.add(&report.tally);
                if let Some(failure) = &report.failure {
                    failures.push(record_failure(target, options.seed, failure));
                }
            }
            Err(err) => {
                eprintln!("mecha-fuzz: cannot start worker threads: {err}");
                return ExitCode::from(2);
            }
        }
    }
    println!("{}", campaign::line("total", &total, started.elapsed()));
    for failure in &failures {
        eprintln!("\n{failure}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Generates input `index` of `target` alone, prints it, runs it and prints what happened.
fn replay(target: &Target, corpus: &Corpus, seed: u64, index: u64) -> ExitCode {
    let case = campaign::generate(target, corpus, seed, index);
    println!("{}", dump::describe(&case));
    let verdict = campaign::execute(target, &case);
    match verdict.failure() {
        None => {
            println!("{}: input {index}: {verdict:?}", target.name);
            ExitCode::SUCCESS
        }
        Some(_) => {
            let failure = campaign::Failure {
                index,
                case,
                verdict,
            };
            eprintln!("{}", record_failure(target, seed, &failure));
            ExitCode::FAILURE
        }
    }
}
