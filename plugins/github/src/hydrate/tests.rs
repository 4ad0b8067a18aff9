//! Hydration against a recording fake: which calls are made (URLs, headers, the read limit),
//! the attrs they give, pagination and its bounds, the diff cut, and how failures end up in
//! `*_error` attrs instead of failing the event.

use super::*;
use mecha_plugin_sdk::http::{HttpError, Recording};
use mecha_plugin_sdk::source;

const API: &str = "https://api.github.test";
const COMPARE: &str = "https://api.github.test/repos/octo-org/hello%20world/compare/b1...h2";
const PULL: &str = "https://api.github.test/repos/octo-org/hello%20world/pulls/42";
const FILES: &str =
    "https://api.github.test/repos/octo-org/hello%20world/pulls/42/files?per_page=100";

/// A pull request in `octo-org/hello world` (a name that needs escaping), with both SHAs.
fn pull_request() -> Event {
    source::event("pull_request.opened")
        .subject("octo-org/hello world")
        .attr("repo_owner", "octo-org")
        .attr("repo_name", "hello world")
        .attr("number", 42)
        .attr("base_sha", "b1")
        .attr("head_sha", "h2")
}

/// Whether `request` asks for the diff rather than JSON.
fn wants_diff(request: &Request) -> bool {
    request.header_value("accept") == Some(DIFF_MEDIA_TYPE)
}

fn urls(http: &Recording) -> Vec<&str> {
    http.requests
        .iter()
        .map(|request| request.url.as_str())
        .collect()
}

fn files_page(names: &[&str]) -> Response {
    let files: Vec<_> = names
        .iter()
        .map(|name| serde_json::json!({"filename": name, "status": "modified"}))
        .collect();
    Response::json_body(200, &serde_json::Value::Array(files))
}

fn page_url(page: usize) -> String {
    format!("https://api.github.test/repositories/7/pulls/42/files?per_page=100&page={page}")
}

#[test]
fn both_shas_use_the_compare_for_diff_and_files() {
    let mut http = Recording::new(|request| {
        Ok(if wants_diff(request) {
            Response::new(200, "diff --git a/a.rs b/a.rs\n+x\n")
        } else {
            Response::json_body(
                200,
                &serde_json::json!({"files": [{"filename": "a.rs"}, {"filename": "b/c.rs"}]}),
            )
        })
    });
    let event = hydrate(&mut http, API, pull_request());

    assert_eq!(
        event.text_attr("diff"),
        Some("diff --git a/a.rs b/a.rs\n+x\n")
    );
    assert_eq!(event.boolean_attr("diff_truncated"), Some(false));
    assert_eq!(event.text_attr("file_list"), Some("a.rs\nb/c.rs"));
    assert_eq!(event.integer_attr("file_count"), Some(2));
    assert!(event.get_attr("diff_error").is_none());
    assert!(event.get_attr("file_list_error").is_none());

    assert_eq!(urls(&http), [COMPARE, COMPARE]);
    for (request, accept) in http.requests.iter().zip([DIFF_MEDIA_TYPE, JSON_MEDIA_TYPE]) {
        assert_eq!(request.method, Method::Get);
        let headers: Vec<_> = request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            headers,
            [
                ("Accept", accept),
                ("User-Agent", "mecha"),
                ("X-GitHub-Api-Version", "2022-11-28"),
            ]
        );
        assert!(request.header_value("authorization").is_none());
        assert_eq!(request.limit, Some(MAX_DIFF_BYTES + 1024));
        assert!(request.body.is_empty());
    }
}

#[test]
fn a_missing_sha_uses_the_pull_and_its_linked_file_pages() {
    let mut http = Recording::new(|request| {
        let url = request.url.as_str();
        Ok(if url == PULL && wants_diff(request) {
            Response::new(200, "the diff")
        } else if url == FILES {
            files_page(&["one.rs", "two.rs"]).with_header(
                "link",
                &format!(
                    "<{}>; rel=\"next\", <{}>; rel=\"last\"",
                    page_url(2),
                    page_url(3)
                ),
            )
        } else if url == page_url(2) {
            files_page(&["three.rs"]).with_header(
                "link",
                &format!("<{FILES}>; rel=\"prev\", <{}>; rel=\"next\"", page_url(3)),
            )
        } else if url == page_url(3) {
            files_page(&["four.rs"]).with_header("link", &format!("<{FILES}>; rel=\"first\""))
        } else {
            Response::new(500, format!("unexpected {url}"))
        })
    });
    let mut event = pull_request();
    event.attrs.retain(|attr| attr.name != "base_sha");
    let event = hydrate(&mut http, API, event);

    assert_eq!(event.text_attr("diff"), Some("the diff"));
    assert_eq!(
        event.text_attr("file_list"),
        Some("one.rs\ntwo.rs\nthree.rs\nfour.rs")
    );
    assert_eq!(event.integer_attr("file_count"), Some(4));
    assert_eq!(urls(&http), [PULL, FILES, &page_url(2), &page_url(3)]);
    assert!(wants_diff(&http.requests[0]));
    assert!(
        http.requests[1..]
            .iter()
            .all(|request| !wants_diff(request))
    );
}

#[test]
fn an_empty_or_failed_compare_falls_back_to_the_file_pages() {
    for compare in [
        Response::json_body(200, &serde_json::json!({"files": []})),
        Response::new(500, "oops"),
        Response::new(200, "not json"),
    ] {
        let mut http = Recording::new(move |request| {
            Ok(match request.url.as_str() {
                _ if wants_diff(request) => Response::new(200, "d"),
                COMPARE => compare.clone(),
                FILES => files_page(&["only.rs"]),
                other => Response::new(500, format!("unexpected {other}")),
            })
        });
        let event = hydrate(&mut http, API, pull_request());
        assert_eq!(event.text_attr("file_list"), Some("only.rs"));
        assert_eq!(urls(&http), [COMPARE, COMPARE, FILES]);
    }
}

#[test]
fn paging_stops_after_ten_pages() {
    let mut http = Recording::new(|request| {
        if wants_diff(request) {
            return Ok(Response::new(200, "d"));
        }
        let page = request
            .url
            .rsplit_once("&page=")
            .map_or(1, |(_, n)| n.parse().unwrap_or(1));
        let next = format!("<{}>; rel=\"next\"", page_url(page + 1));
        Ok(files_page(&[&format!("f{page}.rs")]).with_header("link", &next))
    });
    let mut event = pull_request();
    event.attrs.retain(|attr| attr.name != "head_sha");
    let event = hydrate(&mut http, API, event);

    assert_eq!(event.integer_attr("file_count"), Some(10));
    assert!(
        event
            .text_attr("file_list")
            .expect("file_list")
            .ends_with("\nf10.rs")
    );
    assert_eq!(http.requests.len(), 1 + 10);
}

#[test]
fn a_next_link_to_another_origin_is_not_followed() {
    let mut http = Recording::new(|request| {
        Ok(if wants_diff(request) {
            Response::new(200, "d")
        } else {
            files_page(&["a.rs"]).with_header(
                "link",
                "<https://elsewhere.test/repos/octo-org/x/pulls/42/files?page=2>; rel=\"next\"",
            )
        })
    });
    let mut event = pull_request();
    event.attrs.retain(|attr| attr.name != "head_sha");
    let event = hydrate(&mut http, API, event);

    assert_eq!(event.text_attr("file_list"), Some("a.rs"));
    assert_eq!(urls(&http), [PULL, FILES]);
}

#[test]
fn a_long_diff_is_cut_on_a_character_boundary_with_a_notice() {
    // `é` takes the bytes MAX_DIFF_BYTES - 1 and MAX_DIFF_BYTES: the cut falls inside it.
    let mut diff = "a".repeat(MAX_DIFF_BYTES - 1);
    diff.push('é');
    let kept = diff[..MAX_DIFF_BYTES - 1].to_owned();
    diff.push_str(&"b".repeat(20 << 20));
    let mut http = Recording::new(move |request| {
        Ok(if wants_diff(request) {
            Response::new(200, diff.clone())
        } else {
            Response::json_body(200, &serde_json::json!({"files": [{"filename": "big"}]}))
        })
    });
    let event = hydrate(&mut http, API, pull_request());

    assert_eq!(event.boolean_attr("diff_truncated"), Some(true));
    assert_eq!(
        event.text_attr("diff"),
        Some(format!("{kept}{TRUNCATION_NOTICE}").as_str())
    );
    assert_eq!(event.text_attr("file_list"), Some("big"));
}

#[test]
fn a_diff_of_exactly_the_limit_is_kept_whole() {
    let (kept, notice) = cut_diff(&"x".repeat(MAX_DIFF_BYTES));
    assert_eq!((kept.len(), notice), (MAX_DIFF_BYTES, false));
    let (cut, notice) = cut_diff(&"x".repeat(MAX_DIFF_BYTES + 1));
    assert_eq!(
        (cut.len(), notice),
        (MAX_DIFF_BYTES + TRUNCATION_NOTICE.len(), true)
    );
}

#[test]
fn an_error_status_quotes_at_most_200_bytes_of_the_reply() {
    // `ü` takes the bytes 199 and 200 of the body: the quote stops before it.
    let mut body = String::from(r#"{"message":"Not Found","documentation_url":""#);
    body.push_str(&"d".repeat(199 - body.len()));
    body.push_str("ü and more that is not quoted\"}");
    let mut http = Recording::new(move |_| Ok(Response::new(404, body.clone())));
    let event = hydrate(&mut http, API, pull_request());

    let error = event.text_attr("diff_error").expect("diff_error");
    let expected = "GET /repos/octo-org/hello%20world/compare/b1...h2: 404 Not Found: \
                    {\"message\":\"Not Found\",\"documentation_url\":\"";
    assert!(error.starts_with(expected), "{error}");
    let quoted = &error[error.find(": {").unwrap() + 2..];
    assert_eq!(quoted.len(), 199);
    assert!(quoted.ends_with('d'));
    assert_eq!(event.text_attr("diff"), Some(""));
    assert_eq!(event.boolean_attr("diff_truncated"), Some(false));

    // The compare failed too, then the file pages: the last failure is the one reported.
    let error = event.text_attr("file_list_error").expect("file_list_error");
    assert!(
        error.starts_with(
            "GET /repos/octo-org/hello%20world/pulls/42/files?per_page=100: 404 Not Found: {"
        ),
        "{error}"
    );
    assert_eq!(event.text_attr("file_list"), Some(""));
    assert_eq!(event.integer_attr("file_count"), Some(0));
}

#[test]
fn transport_errors_become_error_attrs() {
    let mut http = Recording::new(|_| Err(HttpError::new("connection refused", true)));
    let event = hydrate(&mut http, API, pull_request());
    assert_eq!(
        event.text_attr("diff_error"),
        Some("GET /repos/octo-org/hello%20world/compare/b1...h2: connection refused")
    );
    assert_eq!(
        event.text_attr("file_list_error"),
        Some("GET /repos/octo-org/hello%20world/pulls/42/files?per_page=100: connection refused")
    );
    assert_eq!(event.text_attr("diff"), Some(""));
}

#[test]
fn a_file_page_over_the_limit_is_an_error_not_a_misread() {
    let mut http = Recording::new(|request| {
        Ok(if wants_diff(request) {
            Response::new(200, "d")
        } else {
            Response::new(200, format!("[{}]", " ".repeat(MAX_BODY_BYTES)))
        })
    });
    let event = hydrate(&mut http, API, pull_request());
    assert_eq!(
        event.text_attr("file_list_error"),
        Some(format!(
            "GET /repos/octo-org/hello%20world/pulls/42/files?per_page=100: the reply is over {MAX_BODY_BYTES} bytes"
        ).as_str())
    );
}

#[test]
fn other_events_come_back_unchanged_without_requests() {
    let without = |name: &str| {
        let mut event = pull_request();
        event.attrs.retain(|attr| attr.name != name);
        event
    };
    let issue = {
        let mut event = pull_request();
        event.event_type = "issues.opened".into();
        event
    };
    for event in [
        issue,
        pull_request().attr("number", 0),
        pull_request().attr("number", "not a number"),
        without("number"),
        without("repo_owner"),
        pull_request().attr("repo_name", " "),
    ] {
        let before = format!("{event:?}");
        let mut http = Recording::accepting();
        let after = hydrate(&mut http, API, event);
        assert_eq!(format!("{after:?}"), before);
        assert!(http.requests.is_empty(), "{before}");
    }
}

#[test]
fn a_numeric_text_number_and_an_api_path_are_used() {
    let mut http = Recording::new(|_| Ok(Response::new(200, "[]")));
    let mut event = pull_request().attr("number", "42");
    event.attrs.retain(|attr| attr.name != "base_sha");
    hydrate(&mut http, "https://ghe.test/api/v3", event);
    assert_eq!(
        urls(&http),
        [
            "https://ghe.test/api/v3/repos/octo-org/hello%20world/pulls/42",
            "https://ghe.test/api/v3/repos/octo-org/hello%20world/pulls/42/files?per_page=100",
        ]
    );
}

#[test]
fn requests_share_a_time_budget_and_none_starts_once_it_is_spent() {
    let mut http = Recording::new(|_| Ok(Response::new(200, "diff --git a/a b/a\n")));
    let event = hydrate(&mut http, API, pull_request());
    assert!(event.text_attr("diff_error").is_none());
    for request in &http.requests {
        let timeout = request.timeout.expect("every request has a timeout");
        assert!(timeout <= REQUEST_TIMEOUT, "{timeout:?}");
    }

    let mut http = Recording::accepting();
    let event = hydrate_within(&mut http, API, pull_request(), Duration::ZERO);
    assert!(http.requests.is_empty(), "{:?}", http.requests);
    assert_eq!(event.text_attr("diff"), Some(""));
    for attr in ["diff_error", "file_list_error"] {
        let error = event.text_attr(attr).expect(attr);
        assert!(
            error.contains("not sent, the hydration's 0 s are spent"),
            "{error}"
        );
    }
}
