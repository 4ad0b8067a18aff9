//! GitLab's hook parser, fed fixtures under the `X-Gitlab-Event` they were sent with.

use mecha_plugin_gitlab::parse;

use super::{Case, Target, Verdict, check_events, judge, on_delivery};
use crate::corpus::Corpus;
use crate::headers;
use crate::mutate;
use crate::rng::Rng;

pub const PARSE: Target = Target {
    name: "gitlab",
    generate,
    run,
};

/// Hook names GitLab sends, and near misses.
const HOOKS: &[&str] = &[
    "Merge Request Hook",
    "Push Hook",
    "Tag Push Hook",
    "Note Hook",
    "Confidential Note Hook",
    "Issue Hook",
    "Confidential Issue Hook",
    "Pipeline Hook",
    "Job Hook",
    "Release Hook",
    "Wiki Page Hook",
    "Deployment Hook",
    "System Hook",
    "Hook",
    " Hook ",
    "hook",
    "_hook",
    "Merge  Request\tHook",
];

fn generate(rng: &mut Rng, corpus: &Corpus) -> Case {
    let seed = corpus.seed(rng, &corpus.gitlab);
    let mut headers = Vec::new();
    headers::add(
        rng,
        &mut headers,
        parse::EVENT_HEADER,
        hook_of(&seed.name),
        HOOKS,
    );
    headers::add(
        rng,
        &mut headers,
        "X-Gitlab-Event-UUID",
        "13792a34-cac6-4fda-95a8-c58e00a3954e",
        &[],
    );
    if rng.chance(30) {
        headers::add(
            rng,
            &mut headers,
            "X-Gitlab-Instance",
            "https://gitlab.test",
            &[],
        );
        headers::add(rng, &mut headers, "X-Request-Id", "01HQ", &[]);
    }
    headers::add_noise(rng, &mut headers);
    let body = mutate::body(rng, seed, corpus);
    Case::delivery(headers, body)
}

/// The hook a fixture was sent as, from its file name.
fn hook_of(seed: &str) -> &'static str {
    let stem = seed.split('.').next().unwrap_or_default();
    match stem {
        "merge_request" => "Merge Request Hook",
        "push" => "Push Hook",
        "tag_push" => "Tag Push Hook",
        "issue" => "Issue Hook",
        "pipeline" => "Pipeline Hook",
        "job" => "Job Hook",
        "release" => "Release Hook",
        "wiki_page" => "Wiki Page Hook",
        note if note.starts_with("note") => "Note Hook",
        _ => "Push Hook",
    }
}

/// What `handle_webhook` does once the token is verified.
fn run(case: &Case) -> Verdict {
    on_delivery(case, |request, _| {
        judge(parse::request(request), |events| check_events(events))
    })
}
