//! The generic parser, fed every seed of every source: any JSON object is a generic webhook.

use mecha_plugin_generic::parse;

use super::{Case, Target, Verdict, check_events, judge, on_delivery};
use crate::corpus::Corpus;
use crate::headers;
use crate::mutate;
use crate::rng::Rng;

pub const PARSE: Target = Target {
    name: "generic",
    generate,
    run,
};

const TYPES: &[&str] = &["build.finished", "alert", "a", "😀", "deploy.v2"];

fn generate(rng: &mut Rng, corpus: &Corpus) -> Case {
    let seed = corpus.seed(rng, &corpus.generic);
    let mut headers = Vec::new();
    headers::add(
        rng,
        &mut headers,
        parse::DEFAULT_TYPE_HEADER,
        "deploy",
        TYPES,
    );
    headers::add_noise(rng, &mut headers);
    let body = mutate::body(rng, seed, corpus);
    Case::delivery(headers, body)
}

/// What `handle_webhook` does with the default `type_header`.
fn run(case: &Case) -> Verdict {
    on_delivery(case, |request, _| {
        let parsed = request
            .required_header(parse::DEFAULT_TYPE_HEADER)
            .and_then(|event_type| parse::parse(event_type, &request.body));
        judge(parsed, |event| check_events([event]))
    })
}
