//! Slack's request parser (Events API JSON, slash command and interactive forms) and its
//! signed-message builder, which reads the signing headers before anything is verified.

use mecha_plugin_sdk::source::{Outcome, Request};
use mecha_plugin_slack::{parse, signature};

use super::{Case, Target, Verdict, check_events, judge, on_delivery};
use crate::corpus::{Corpus, Shape};
use crate::headers;
use crate::hostile;
use crate::mutate::{self, form::FormBody};
use crate::rng::Rng;

pub const PARSE: Target = Target {
    name: "slack",
    generate,
    run,
};

pub const SIGNATURE: Target = Target {
    name: "slack-signature",
    generate: generate_signed,
    run: run_signed,
};

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Content types Slack sends and ones it does not: parameters, case, junk, near misses.
const CONTENT_TYPES: &[&str] = &[
    JSON,
    FORM,
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "text/plain",
    "multipart/form-data; boundary=x",
    ";",
    "application/json;",
    "application/jsonx",
    " application/json ;q=1",
    "application/x-www-form-urlencoded,application/json",
];

/// Slack's published signing example: a timestamp and a well-formed signature.
const TIMESTAMP: i64 = 1_531_420_618;
const SIGNATURE_VALUE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

fn generate(rng: &mut Rng, corpus: &Corpus) -> Case {
    let (content_type, body) = if rng.chance(30) {
        (FORM, interactive_form(rng, corpus))
    } else {
        let seed = corpus.seed(rng, &corpus.slack);
        let content_type = match seed.shape {
            Shape::Form => FORM,
            Shape::Json(_) | Shape::Opaque => JSON,
        };
        (content_type, mutate::body(rng, seed, corpus))
    };
    let mut headers = Vec::new();
    headers::add(
        rng,
        &mut headers,
        "Content-Type",
        content_type,
        CONTENT_TYPES,
    );
    if rng.chance(20) {
        let retries = &["0", "2", "-1", "99999999999999999999", "1.5", "x", "١"];
        headers::add(rng, &mut headers, "X-Slack-Retry-Num", "1", retries);
        let reasons = &["http_error", "too_many_requests", "unknown_error", ""];
        headers::add(
            rng,
            &mut headers,
            "X-Slack-Retry-Reason",
            "http_timeout",
            reasons,
        );
    }
    headers::add_noise(rng, &mut headers);
    Case::delivery(headers, body)
}

/// A form with a `payload` field holding a (mutated) interactive payload: percent-encoded as
/// Slack sends it, or raw; among other fields; then maybe mangled as a form.
fn interactive_form(rng: &mut Rng, corpus: &Corpus) -> Vec<u8> {
    let mut form = if rng.chance(30) {
        FormBody::parse(b"token=x&team_id=T1")
    } else {
        FormBody::empty()
    };
    let payload = rng.pick(&corpus.interactive);
    let json = mutate::json_text(rng, payload);
    let value = if rng.chance(80) {
        mutate::form::encode(rng, &json)
    } else {
        json
    };
    form.set("payload", value);
    for _ in 0..rng.below(3) {
        form.mutate(rng);
    }
    form.into_bytes()
}

/// What `handle_webhook` does once the signature is verified.
fn run(case: &Case) -> Verdict {
    on_delivery(case, |request, _| {
        judge(parse::request(request), |outcome| match outcome {
            Outcome::Events(events) => check_events(events),
            Outcome::Reply(_) => Verdict::Accepted,
        })
    })
}

fn generate_signed(rng: &mut Rng, corpus: &Corpus) -> Case {
    let now_unix = match rng.below(8) {
        0 => 0,
        1 => i64::MIN,
        2 => i64::MAX,
        3 => hostile::integer(rng),
        _ => TIMESTAMP + rng.between(0, 1000) as i64 - 500,
    };
    let mut headers = Vec::new();
    let signatures = &[
        "v0=", "v1=abc", "V0=ABC", "v0", "=", "v0=v0=ab", "v0=zz", "v0=é",
    ];
    headers::add(
        rng,
        &mut headers,
        signature::SIGNATURE_HEADER,
        SIGNATURE_VALUE,
        signatures,
    );
    let timestamp = timestamp(rng, now_unix);
    headers::add(
        rng,
        &mut headers,
        signature::TIMESTAMP_HEADER,
        &timestamp,
        TIMESTAMPS,
    );
    headers::add_noise(rng, &mut headers);
    let seed = corpus.seed(rng, &corpus.slack);
    let body = mutate::body(rng, seed, corpus);
    Case::delivery(headers, body).at(now_unix)
}

/// Timestamps that are not plain digits, or overflow, or are far from any clock.
const TIMESTAMPS: &[&str] = &[
    "",
    "+1531420618",
    "-1531420618",
    " 1531420618",
    "1531420618.5",
    "0",
    "00000000001531420618",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999999",
    "١٥٣١٤٢٠٦١٨",
    "１５３１４２０６１８",
    "1e9",
    "0x5b47",
];

/// A timestamp near `now_unix`, within the replay window or just outside it.
fn timestamp(rng: &mut Rng, now_unix: i64) -> String {
    let skew = rng.between(0, 700) as i64 - 350;
    now_unix.saturating_add(skew).to_string()
}

/// `signed_message`, checked against how Slack builds the message: `v0:<timestamp>:<body>`,
/// with the signature's hex after `v0=`.
fn run_signed(case: &Case) -> Verdict {
    on_delivery(case, |request, now_unix| {
        judge(
            signature::signed_message(request, now_unix),
            |(message, hex)| check_signed(request, message, hex),
        )
    })
}

fn check_signed(request: &Request, message: &[u8], hex: &str) -> Verdict {
    let header = |name| request.header(name).unwrap_or_default();
    let mut expected = format!("v0:{}:", header(signature::TIMESTAMP_HEADER)).into_bytes();
    expected.extend_from_slice(&request.body);
    if message != expected {
        return Verdict::Broken {
            invariant: "the signed message is v0:<timestamp>:<body>",
            detail: format!("got {:?}", String::from_utf8_lossy(message)),
        };
    }
    if header(signature::SIGNATURE_HEADER) != format!("v0={hex}") {
        return Verdict::Broken {
            invariant: "the signature is the header after v0=",
            detail: format!("got {hex:?}"),
        };
    }
    Verdict::Accepted
}
