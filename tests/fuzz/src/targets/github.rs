//! GitHub's payload parser, fed fixtures under the event name they were sent with.

use mecha_plugin_github::parse;

use super::{Case, Target, Verdict, check_events, judge, on_delivery};
use crate::corpus::Corpus;
use crate::headers;
use crate::mutate;
use crate::rng::Rng;

pub const PARSE: Target = Target {
    name: "github",
    generate,
    run,
};

const EVENT_HEADER: &str = "X-GitHub-Event";
const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// Event names GitHub sends, including ones the parser has no struct for.
const EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "push",
    "issues",
    "issue_comment",
    "release",
    "workflow_run",
    "check_run",
    "ping",
    "installation",
    "star",
    "create",
];

fn generate(rng: &mut Rng, corpus: &Corpus) -> Case {
    let seed = corpus.seed(rng, &corpus.github);
    // Fixtures are named `<event>__<action>.payload.json`.
    let event = seed.name.split("__").next().unwrap_or_default();
    let mut headers = Vec::new();
    headers::add(rng, &mut headers, EVENT_HEADER, event, EVENTS);
    headers::add(
        rng,
        &mut headers,
        DELIVERY_HEADER,
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        &[],
    );
    headers::add_noise(rng, &mut headers);
    let body = mutate::body(rng, seed, corpus);
    Case::delivery(headers, body)
}

/// What `handle_webhook` does once the signature is verified.
fn run(case: &Case) -> Verdict {
    on_delivery(case, |request, _| {
        let parsed = request
            .required_header(EVENT_HEADER)
            .and_then(|event| parse::parse(event, request.header(DELIVERY_HEADER), &request.body));
        judge(parsed, |event| check_events([event]))
    })
}
