//! A short campaign over every target, so that `cargo test` catches a parser that starts to
//! panic, and a check that the harness itself catches, finds and shrinks a panic.

use super::*;
use crate::corpus::Corpus;
use crate::targets::{Case, Verdict};

/// Per source: enough for every mutation kind to hit every seed several times, small enough
/// for a debug build to finish in seconds.
const INPUTS: u64 = 10_000;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[test]
fn no_parser_panics_or_breaks_an_invariant() {
    let corpus = Corpus::load().expect("fixtures");
    let mut failures = Vec::new();
    for target in targets::ALL {
        let report =
            campaign::run(target, &corpus, DEFAULT_SEED, INPUTS, threads()).expect("threads");
        println!("{report}");
        match &report.failure {
            Some(failure) => failures.push(record_failure(target, DEFAULT_SEED, failure)),
            None => {
                assert_eq!(report.tally.inputs, INPUTS, "{report}");
                // A generator that made only garbage would never get past a parser's first check.
                assert!(report.tally.accepted > 0, "{report}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_panic_is_caught_at_its_first_input_and_shrunk() {
    const BOOM: targets::Target = targets::Target {
        name: "boom",
        generate: |rng, corpus| (targets::ALL[0].generate)(rng, corpus),
        run: |case| match case {
            Case::Delivery { request, .. }
                if request.body.windows(8).any(|w| w == b"\"action\"") =>
            {
                panic!("found an action")
            }
            _ => Verdict::Accepted,
        },
    };
    let corpus = Corpus::load().expect("fixtures");
    let report = campaign::run(&BOOM, &corpus, 5, 10_000, threads()).expect("threads");
    let failure = report.failure.expect("some body has an action");
    for index in 0..failure.index {
        let case = campaign::generate(&BOOM, &corpus, 5, index);
        assert!(
            campaign::execute(&BOOM, &case).failure().is_none(),
            "input {index} fails too"
        );
    }
    let message = failure.verdict.failure().expect("a panic");
    assert!(message.contains("tests.rs"), "{message}");
    let Case::Delivery { request, .. } = shrink::shrink(&BOOM, &failure.case, &message) else {
        panic!("a delivery shrinks to a delivery");
    };
    assert_eq!(request.body, b"\"action\"");
    assert!(request.headers.is_empty(), "{:?}", request.headers);

    let told = record_failure(&BOOM, 5, &failure);
    let written = dump::failure_dir().join(format!("boom-{}.txt", failure.index));
    let text = std::fs::read_to_string(&written).expect("the failure file");
    let replay = replay_command("boom", 5, failure.index);
    assert!(told.contains(&replay) && text.contains(&replay), "{told}");
    assert!(text.contains("found an action"), "{text}");
    std::fs::remove_file(written).expect("the file was written");
}
