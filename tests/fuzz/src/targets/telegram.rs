//! Telegram's update parser. It reads no header besides the token the host checks, so inputs
//! differ only in their bodies.

use mecha_plugin_telegram::parse;

use super::{Case, Target, Verdict, check_events, judge, on_delivery};
use crate::corpus::Corpus;
use crate::headers;
use crate::mutate;
use crate::rng::Rng;

pub const PARSE: Target = Target {
    name: "telegram",
    generate,
    run,
};

fn generate(rng: &mut Rng, corpus: &Corpus) -> Case {
    let seed = corpus.seed(rng, &corpus.telegram);
    let mut headers = Vec::new();
    headers::add(
        rng,
        &mut headers,
        "X-Telegram-Bot-Api-Secret-Token",
        "s3cr3t",
        &[],
    );
    headers::add_noise(rng, &mut headers);
    let body = mutate::body(rng, seed, corpus);
    Case::delivery(headers, body)
}

/// What `handle_webhook` does once the token is verified.
fn run(case: &Case) -> Verdict {
    on_delivery(case, |request, _| {
        judge(parse::request(request), |events| check_events(events))
    })
}
