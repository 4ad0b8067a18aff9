//! GitHub's hydration, against a fake API: generated events (pull requests or not, with odd
//! numbers, owners and SHAs) and generated replies (statuses, `Link` headers, diffs, file lists,
//! errors, huge and non-UTF-8 bodies).

use mecha_plugin_github::hydrate;
use mecha_plugin_sdk::http::{self, HttpError, Recording, Response};
use mecha_plugin_sdk::source::{self, Event, Value};

use super::{Case, Target, Verdict, check_events};
use crate::corpus::Corpus;
use crate::hostile;
use crate::mutate;
use crate::rng::Rng;

pub const HYDRATE: Target = Target {
    name: "github-hydrate",
    generate,
    run,
};

/// A stored event, the API base it is hydrated from, and the fake API's replies in order.
#[derive(Clone, Debug)]
pub struct Hydration {
    pub api: String,
    pub event: Event,
    /// Replies to the first requests; any further request fails as a network error.
    pub replies: Vec<Result<Response, HttpError>>,
}

const EVENT_TYPES: &[&str] = &[
    "pull_request.opened",
    "pull_request.synchronize",
    "pull_request",
    "pull_request_review.submitted",
    "pull_request_review_comment.created",
    "pull_requests",
    "pull_request.😀",
    "push",
    "issues.opened",
];

const APIS: &[&str] = &[
    hydrate::DEFAULT_API_URL,
    hydrate::DEFAULT_API_URL,
    "https://ghe.test/api/v3",
    "http://127.0.0.1:8080",
    "HTTPS://API.GITHUB.COM",
    "",
    "not a url",
    "https://",
    "https:///x",
    "https://ü.test",
    "https://a.test?x=1",
    "https://user@a.test:99999",
];

const STATUSES: &[u16] = &[
    0, 1, 100, 199, 201, 204, 301, 304, 400, 401, 403, 404, 422, 429, 500, 502, 599, 999, 65535,
];

fn generate(rng: &mut Rng, corpus: &Corpus) -> Case {
    let api = if rng.chance(5) {
        hostile::text(rng)
    } else {
        rng.pick(APIS).to_string()
    };
    let event = event(rng);
    let replies = if rng.chance(15) {
        pages(rng, &api)
    } else {
        (0..rng.below(15))
            .map(|_| reply(rng, corpus, &api))
            .collect()
    };
    Case::Hydration(Hydration {
        api,
        event,
        replies,
    })
}

/// An event as the parser stores it (attrs set once each), with the attrs hydration reads
/// present, absent, or of the wrong type.
fn event(rng: &mut Rng) -> Event {
    let mut event = source::event(*rng.pick(EVENT_TYPES))
        .actor("ana")
        .subject("acme/widgets");
    let number = match rng.below(8) {
        0 => Value::Integer(hostile::integer(rng)),
        1 => Value::Text(format!(" {} ", rng.size(100_000))),
        2 => Value::Text(hostile::text(rng)),
        3 => Value::Text("99999999999999999999".into()),
        4 => Value::Float(1.0),
        5 => Value::Boolean(true),
        _ => Value::Integer(rng.between(1, 100_000) as i64),
    };
    let text = |rng: &mut Rng, real: &str| match rng.below(6) {
        0 => Value::Text(hostile::text(rng)),
        1 => Value::Text(
            rng.pick(&["../..", "a/b", "?x#y", "%2F", " ", ""])
                .to_string(),
        ),
        2 if rng.chance(30) => Value::Integer(1),
        _ => Value::Text(real.to_owned()),
    };
    let attrs = [
        ("number", number),
        ("repo_owner", text(rng, "acme")),
        ("repo_name", text(rng, "widgets")),
        (
            "base_sha",
            text(rng, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"),
        ),
        (
            "head_sha",
            text(rng, "a10867b14bb761a232cd80139fbd4c0d33264240"),
        ),
        ("diff", Value::Integer(1)),
        ("file_count", Value::Text("many".into())),
    ];
    for (name, value) in attrs {
        // The attrs hydration reads are usually there; the ones it writes rarely are.
        let present = if name.starts_with("diff") || name.starts_with("file") {
            rng.chance(10)
        } else {
            rng.chance(90)
        };
        if present {
            event.set_attr(name, value);
        }
    }
    event
}

/// One reply of the fake API: usually a `200`, sometimes a network error.
fn reply(rng: &mut Rng, corpus: &Corpus, api: &str) -> Result<Response, HttpError> {
    if rng.chance(8) {
        return Err(HttpError::new(hostile::text(rng), rng.chance(50)));
    }
    let status = if rng.chance(75) {
        200
    } else {
        *rng.pick(STATUSES)
    };
    let mut response = Response::new(status, reply_body(rng, corpus));
    if rng.chance(40) {
        for _ in 0..rng.between(1, 2) {
            let name = rng.pick(&["link", "Link", "LINK"]).to_string();
            response.headers.push((name, link(rng, api)));
        }
    }
    if rng.chance(10) {
        response
            .headers
            .push((hostile::text(rng), hostile::text(rng)));
    }
    Ok(response)
}

/// A diff, then file list pages that each link to a next one: pagination followed to its end.
fn pages(rng: &mut Rng, api: &str) -> Vec<Result<Response, HttpError>> {
    let diff = Response::new(200, "diff --git a/x b/x\n");
    let pages = (0..rng.between(1, 14)).map(|page| {
        let files = files(rng).to_string();
        let next = format!(
            "<{api}/repositories/1/pulls/2/files?page={}>; rel=\"next\"",
            page + 2
        );
        Response::new(200, files).with_header("link", &next)
    });
    std::iter::once(diff).chain(pages).map(Ok).collect()
}

/// A `Link` header: a next page on the API's origin most of the time, otherwise another
/// origin, odd relations and quoting, broken brackets, many links, or non-ASCII.
fn link(rng: &mut Rng, api: &str) -> String {
    let next = format!("{api}/repositories/1/pulls/2/files?page={}", rng.below(20));
    let header = match rng.below(12) {
        0..4 => format!("<{next}>; rel=\"next\", <{api}/x?page=9>; rel=\"last\""),
        4 => "<https://evil.test/steal>; rel=\"next\"".to_owned(),
        5 => format!("<{next}>; REL=NEXT"),
        6 => format!("<{next}>; title=\"a,b;c\"; rel=\"last next\""),
        7 => rng
            .pick(&[
                "<",
                ">",
                "<>; rel=next",
                ">; rel=next<",
                "<<<>>>",
                ";;,,==",
                "rel=next",
            ])
            .to_string(),
        8 => format!("<{next}>; rel=\"next"),
        9 => format!("<{next}>; rel=\"prev\", ").repeat(rng.between(2, 200)),
        10 => format!(
            "<{next}{}>; rel=\"{}next\"",
            hostile::unicode(rng),
            hostile::unicode(rng)
        ),
        _ => hostile::text(rng),
    };
    if rng.chance(15) {
        let boundaries: Vec<usize> = header.char_indices().map(|(at, _)| at).collect();
        let cut = boundaries
            .get(rng.below(boundaries.len()))
            .copied()
            .unwrap_or_default();
        return header[..cut].to_owned();
    }
    header
}

/// A reply body: a diff, a file list, a compare, an error, something huge, or garbage.
fn reply_body(rng: &mut Rng, corpus: &Corpus) -> Vec<u8> {
    match rng.below(10) {
        0 | 1 => "diff --git a/é b/é\n+😀 line\n"
            .repeat(rng.size(2000))
            .into_bytes(),
        2 | 3 => {
            let files = files(rng);
            mutate::json_text(rng, &files)
        }
        4 => {
            let compare = serde_json::json!({ "files": files(rng) });
            mutate::json_text(rng, &compare)
        }
        5 => {
            let message = format!(
                "{}{}",
                "x".repeat(rng.between(190, 210)),
                hostile::unicode(rng)
            );
            serde_json::json!({ "message": message })
                .to_string()
                .into_bytes()
        }
        6 if rng.chance(3) => huge_diff(rng),
        7 => (0..rng.size(512)).map(|_| rng.byte()).collect(),
        8 => Vec::new(),
        _ => {
            let seed = corpus.seed(rng, &corpus.github);
            mutate::body(rng, seed, corpus)
        }
    }
}

/// Pull request files as GitHub lists them, with some entries of the wrong shape.
fn files(rng: &mut Rng) -> serde_json::Value {
    let files = (0..rng.size(150))
        .map(|index| match rng.below(10) {
            0 => serde_json::json!({ "filename": index }),
            1 => serde_json::json!(null),
            2 => serde_json::json!({ "filename": hostile::text(rng) }),
            _ => serde_json::json!({ "filename": format!("src/file{index}.rs"), "status": "modified" }),
        })
        .collect();
    serde_json::Value::Array(files)
}

/// A diff around the size where hydration cuts, so the cut can land inside a character.
fn huge_diff(rng: &mut Rng) -> Vec<u8> {
    let len = hydrate::MAX_DIFF_BYTES - 2048 + rng.below(8192);
    let mut diff = "x".repeat(rng.below(4));
    while diff.len() < len {
        diff.push_str("é😀");
    }
    diff.into_bytes()
}

/// Hydrates with a fake API answering the case's replies in order, then checks the event and
/// that no request left the API's origin (a `Link` may point anywhere).
fn run(case: &Case) -> Verdict {
    let Case::Hydration(hydration) = case else {
        return Verdict::Broken {
            invariant: "case matches target",
            detail: "a delivery was given to hydration".into(),
        };
    };
    let mut replies = hydration.replies.clone().into_iter();
    let mut api = Recording::new(move |_| {
        replies
            .next()
            .unwrap_or_else(|| Err(HttpError::new("connection refused", true)))
    });
    let event = hydrate::hydrate(&mut api, &hydration.api, hydration.event.clone());
    if let Some(request) = api
        .requests
        .iter()
        .find(|request| !same_origin(&request.url, &hydration.api))
    {
        return Verdict::Broken {
            invariant: "requests stay on the API origin",
            detail: format!("{} with api {:?}", request.url, hydration.api),
        };
    }
    if let Some(Value::Text(diff)) = event.get_attr("diff")
        && diff.len() > hydrate::MAX_DIFF_BYTES + hydrate::TRUNCATION_NOTICE.len()
    {
        return Verdict::Broken {
            invariant: "the diff is cut at MAX_DIFF_BYTES",
            detail: format!("{} bytes", diff.len()),
        };
    }
    check_events([&event])
}

/// Whether `url` is on the origin of `api`; anything goes when `api` has no origin, since
/// then the host grants nothing and refuses every request.
fn same_origin(url: &str, api: &str) -> bool {
    match (http::origin(url), http::origin(api)) {
        (Some(url), Some(api)) => url.eq_ignore_ascii_case(api),
        (_, None) => true,
        (None, Some(_)) => false,
    }
}
