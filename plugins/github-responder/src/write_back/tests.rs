//! The GitHub calls, checked against a recording fake: methods, escaped paths, headers and
//! bodies per action, the marker that prevents double posts, and how failures are classified.

use super::*;
use mecha_plugin_sdk::responder::{
    Comment, Commit, Labels, MAX_BODY_BYTES, Status, event,
    http::{HttpError, Recording, Response},
};

const API: &str = "https://api.github.test";
const MARKER: &str = "task-7f3a";

/// A pull request event in `octo-org/hello world` (a name that needs escaping).
fn pull_request() -> StoredEvent {
    StoredEvent::new(
        "github",
        event("pull_request.opened")
            .attr("repo_owner", "octo-org")
            .attr("repo_name", "hello world")
            .attr("number", 42)
            .attr("head_sha", "abc123"),
    )
}

fn with_comment(body: &str) -> TaskResult {
    TaskResult {
        comment: Some(Comment { body: body.into() }),
        ..TaskResult::empty()
    }
}

fn headers_of(request: &Request) -> Vec<(&str, &str)> {
    request
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

const JSON_HEADERS: [(&str, &str); 4] = [
    ("Accept", "application/vnd.github+json"),
    ("User-Agent", "mecha"),
    ("X-GitHub-Api-Version", "2022-11-28"),
    ("Content-Type", "application/json"),
];

fn run(http: &mut Recording, allowed: &TaskResult) -> Result<Receipt, RespondError> {
    write_back(http, API, &pull_request(), allowed, MARKER)
}

fn receipt_pairs(receipt: &Receipt) -> Vec<(&str, &str)> {
    receipt
        .actions
        .iter()
        .map(|action| (action.action.as_str(), action.reference.as_str()))
        .collect()
}

#[test]
fn comment_lists_then_posts_with_the_marker() {
    let mut http = Recording::new(|request| {
        Ok(match request.method {
            Method::Get => Response::new(200, "[]"),
            _ => Response::json_body(
                201,
                &serde_json::json!({"id": 1, "html_url": "https://github.test/c/1"}),
            ),
        })
    });
    let receipt = run(&mut http, &with_comment("Looks good")).unwrap();
    assert_eq!(
        receipt_pairs(&receipt),
        [("comment", "https://github.test/c/1")]
    );

    let [list, post] = &http.requests[..] else {
        panic!("expected a list and a post, got {:?}", http.requests)
    };
    assert_eq!(list.method, Method::Get);
    assert_eq!(
        list.url,
        "https://api.github.test/repos/octo-org/hello%20world/issues/42/comments?per_page=100&page=1"
    );
    assert_eq!(headers_of(list), HEADERS);
    assert!(list.body.is_empty());

    assert_eq!(post.method, Method::Post);
    assert_eq!(
        post.url,
        "https://api.github.test/repos/octo-org/hello%20world/issues/42/comments"
    );
    assert_eq!(headers_of(post), JSON_HEADERS);
    assert_eq!(
        post.body_json().unwrap(),
        serde_json::json!({"body": "Looks good\n\n<!-- mecha:task-7f3a:comment -->"})
    );
}

#[test]
fn no_request_carries_credentials() {
    let mut http = Recording::accepting();
    let allowed = TaskResult {
        labels: Some(Labels {
            add: vec!["a".into()],
            remove: vec!["b".into()],
        }),
        status: Some(Status {
            state: "success".into(),
            description: "ok".into(),
        }),
        commit: Some(Commit {
            message: "m".into(),
            diff: "+x".into(),
        }),
        ..with_comment("hi")
    };
    run(&mut http, &allowed).unwrap();
    assert_eq!(http.requests.len(), 7);
    for request in &http.requests {
        assert!(request.header_value("authorization").is_none());
        assert!(!request.url.contains("token"));
    }
}

#[test]
fn output_is_the_comment_when_there_is_none() {
    let mut http = Recording::accepting();
    let allowed = TaskResult {
        output: Some("Plain output".into()),
        ..TaskResult::empty()
    };
    run(&mut http, &allowed).unwrap();
    let body = http.requests[1].body_json().unwrap();
    assert_eq!(
        body["body"],
        "Plain output\n\n<!-- mecha:task-7f3a:comment -->"
    );

    // A comment wins over output; a blank one posts nothing.
    let mut http = Recording::accepting();
    let allowed = TaskResult {
        output: Some("Plain output".into()),
        ..with_comment("The comment")
    };
    run(&mut http, &allowed).unwrap();
    assert!(
        http.requests[1].body_json().unwrap()["body"]
            .as_str()
            .unwrap()
            .starts_with("The comment\n")
    );
    let mut http = Recording::accepting();
    let allowed = TaskResult {
        output: Some("Plain output".into()),
        ..with_comment("  ")
    };
    assert!(run(&mut http, &allowed).unwrap().actions.is_empty());
    assert!(http.requests.is_empty());
}

#[test]
fn a_marker_on_page_two_skips_the_post() {
    let mut http = Recording::new(|request| {
        let others: Vec<_> = (0..100)
            .map(|i| serde_json::json!({"id": i, "body": "<!-- mecha:other-task:comment -->"}))
            .collect();
        Ok(if request.url.ends_with("page=1") {
            Response::json_body(200, &serde_json::Value::Array(others))
        } else if request.url.ends_with("page=2") {
            Response::json_body(
                200,
                &serde_json::json!([{"id": 101, "body": "Earlier\n\n<!-- mecha:task-7f3a:comment -->"}]),
            )
        } else {
            Response::new(500, "unexpected")
        })
    });
    let receipt = run(&mut http, &with_comment("Looks good")).unwrap();
    assert_eq!(receipt_pairs(&receipt), [("comment", "already posted")]);
    assert_eq!(http.requests.len(), 2);
    assert!(http.requests.iter().all(|r| r.method == Method::Get));
}

#[test]
fn a_marker_of_another_action_does_not_skip_the_post() {
    let mut http = Recording::new(|request| {
        Ok(match request.method {
            Method::Get => Response::json_body(
                200,
                &serde_json::json!([{"body": "<!-- mecha:task-7f3a:commit -->"}]),
            ),
            _ => Response::new(201, "{}"),
        })
    });
    run(&mut http, &with_comment("Looks good")).unwrap();
    assert_eq!(http.requests.len(), 2);
    assert_eq!(http.requests[1].method, Method::Post);
}

#[test]
fn status_is_set_on_the_head_commit() {
    let mut http = Recording::accepting();
    let allowed = TaskResult {
        status: Some(Status {
            state: "failure".into(),
            description: "2 issues".into(),
        }),
        ..TaskResult::empty()
    };
    let receipt = run(&mut http, &allowed).unwrap();
    assert_eq!(receipt_pairs(&receipt), [("status", "failure")]);
    let [request] = &http.requests[..] else {
        panic!("expected one request")
    };
    assert_eq!(request.method, Method::Post);
    assert_eq!(
        request.url,
        "https://api.github.test/repos/octo-org/hello%20world/statuses/abc123"
    );
    assert_eq!(headers_of(request), JSON_HEADERS);
    assert_eq!(
        request.body_json().unwrap(),
        serde_json::json!({"state": "failure", "description": "2 issues", "context": "mecha"})
    );
}

#[test]
fn status_needs_a_valid_state_and_a_head_sha() {
    let allowed = TaskResult {
        status: Some(Status {
            state: "done".into(),
            description: String::new(),
        }),
        ..TaskResult::empty()
    };
    let mut http = Recording::accepting();
    let error = run(&mut http, &allowed).unwrap_err();
    assert!(!error.retryable);
    assert!(
        error.message.contains("status: state `done`"),
        "{}",
        error.message
    );
    assert!(http.requests.is_empty());

    let issue = StoredEvent::new(
        "github",
        event("issues.opened")
            .attr("repo_owner", "o")
            .attr("repo_name", "r")
            .attr("number", 1),
    );
    let mut http = Recording::accepting();
    let receipt = write_back(&mut http, API, &issue, &allowed, MARKER).unwrap();
    assert!(receipt.actions.is_empty());
}

#[test]
fn labels_are_added_and_removed_one_call_each() {
    let mut http = Recording::new(|request| {
        Ok(match request.method {
            Method::Delete if request.url.ends_with("/stale") => {
                Response::new(404, r#"{"message":"Label does not exist"}"#)
            }
            Method::Delete => Response::new(200, "[]"),
            _ => Response::new(200, "[]"),
        })
    });
    let allowed = TaskResult {
        labels: Some(Labels {
            add: vec!["bug".into(), "needs review/ü".into(), " ".into()],
            remove: vec!["wip".into(), "stale".into()],
        }),
        ..TaskResult::empty()
    };
    let receipt = run(&mut http, &allowed).unwrap();
    assert_eq!(
        receipt_pairs(&receipt),
        [
            ("label.add", "bug"),
            ("label.add", "needs review/ü"),
            ("label.remove", "wip"),
            ("label.remove", "stale"),
        ]
    );
    let calls: Vec<(Method, &str, Option<serde_json::Value>)> = http
        .requests
        .iter()
        .map(|r| (r.method, r.path(), r.body_json()))
        .collect();
    assert_eq!(
        calls,
        [
            (
                Method::Post,
                "/repos/octo-org/hello%20world/issues/42/labels",
                Some(serde_json::json!({"labels": ["bug"]}))
            ),
            (
                Method::Post,
                "/repos/octo-org/hello%20world/issues/42/labels",
                Some(serde_json::json!({"labels": ["needs review/ü"]}))
            ),
            (
                Method::Delete,
                "/repos/octo-org/hello%20world/issues/42/labels/wip",
                None
            ),
            (
                Method::Delete,
                "/repos/octo-org/hello%20world/issues/42/labels/stale",
                None
            ),
        ]
    );
    assert_eq!(headers_of(&http.requests[0]), JSON_HEADERS);
    assert_eq!(headers_of(&http.requests[2]), HEADERS);

    let mut http = Recording::accepting();
    let allowed = TaskResult {
        labels: Some(Labels {
            add: vec![],
            remove: vec!["needs review/ü".into()],
        }),
        ..TaskResult::empty()
    };
    run(&mut http, &allowed).unwrap();
    assert_eq!(
        http.requests[0].path(),
        "/repos/octo-org/hello%20world/issues/42/labels/needs%20review%2F%C3%BC"
    );
}

#[test]
fn commit_is_suggested_in_a_marked_comment() {
    let mut http = Recording::accepting();
    let allowed = TaskResult {
        commit: Some(Commit {
            message: "Fix typo".into(),
            diff: "--- a/x\n+++ b/x\n-teh\n+the\n".into(),
        }),
        ..TaskResult::empty()
    };
    let receipt = run(&mut http, &allowed).unwrap();
    assert_eq!(receipt.actions[0].action, "commit");
    let [list, post] = &http.requests[..] else {
        panic!("expected a list and a post")
    };
    assert_eq!(list.method, Method::Get);
    assert_eq!(
        post.path(),
        "/repos/octo-org/hello%20world/issues/42/comments"
    );
    assert_eq!(
        post.body_json().unwrap()["body"],
        "**Suggested commit:** Fix typo\n\n```diff\n--- a/x\n+++ b/x\n-teh\n+the\n```\n\n<!-- mecha:task-7f3a:commit -->"
    );
}

#[test]
fn a_long_commit_is_cut_on_a_char_boundary() {
    let mut http = Recording::accepting();
    // Two-byte characters, an odd-length prefix: a byte cut would split one.
    let diff = format!("+x{}\n", "é".repeat(40_000));
    let allowed = TaskResult {
        commit: Some(Commit {
            message: "Big".into(),
            diff: diff.clone(),
        }),
        ..TaskResult::empty()
    };
    run(&mut http, &allowed).unwrap();
    let body = http.requests[1].body_json().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let (suggestion, marker) = body.rsplit_once("\n\n").unwrap();
    assert_eq!(marker, "<!-- mecha:task-7f3a:commit -->");
    assert!(suggestion.len() <= MAX_BODY_BYTES);
    assert!(suggestion.len() > MAX_BODY_BYTES - 100);
    assert!(suggestion.starts_with("**Suggested commit:** Big\n\n```diff\n+xé"));
    assert!(suggestion.contains("\n```\n\n*(diff truncated: 80002 bytes in total)*"));
}

#[test]
fn a_long_comment_is_cut_before_the_marker() {
    let mut http = Recording::accepting();
    run(&mut http, &with_comment(&"ü".repeat(40_000))).unwrap();
    let body = http.requests[1].body_json().unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let (comment, marker) = body.rsplit_once("\n\n").unwrap();
    assert_eq!(marker, "<!-- mecha:task-7f3a:comment -->");
    assert!(comment.len() <= MAX_BODY_BYTES);
    assert!(comment.ends_with("*(truncated: 80000 bytes in total)*"));
}

/// Runs a label add answered by `response` and returns the error.
fn label_failure(response: Response) -> RespondError {
    let mut http = Recording::new(move |_| Ok(response.clone()));
    let allowed = TaskResult {
        labels: Some(Labels {
            add: vec!["bug".into()],
            remove: vec![],
        }),
        ..TaskResult::empty()
    };
    run(&mut http, &allowed).unwrap_err()
}

#[test]
fn client_errors_are_not_retryable() {
    for status in [400, 401, 403, 404, 410, 422] {
        let error = label_failure(Response::new(status, r#"{"message":"no"}"#));
        assert!(!error.retryable, "{status} must not be retryable");
        assert!(error.message.contains(&format!("returned {status}")));
    }
}

#[test]
fn rate_limits_and_server_errors_are_retryable() {
    let cases = [
        Response::new(429, "slow down"),
        Response::new(500, "oops"),
        Response::new(502, "bad gateway"),
        Response::new(403, "rate limited").with_header("x-ratelimit-remaining", "0"),
        Response::new(403, "secondary rate limit").with_header("retry-after", "60"),
    ];
    for response in cases {
        let status = response.status;
        assert!(
            label_failure(response).retryable,
            "{status} must be retryable"
        );
    }
    let mut http = Recording::new(|_| Err(HttpError::new("ConnectionRefused", true)));
    let error = run(&mut http, &with_comment("hi")).unwrap_err();
    assert!(error.retryable);
    assert!(error.message.contains("comment: GET /repos/octo-org/hello%20world/issues/42/comments?per_page=100&page=1: ConnectionRefused"), "{}", error.message);
}

#[test]
fn one_permanent_failure_makes_the_whole_call_permanent() {
    let mut http = Recording::new(|request| {
        Ok(match request.method {
            Method::Get => Response::new(503, "unavailable"),
            _ => Response::new(422, r#"{"message":"Validation Failed"}"#),
        })
    });
    let allowed = TaskResult {
        status: Some(Status {
            state: "success".into(),
            description: String::new(),
        }),
        ..with_comment("hi")
    };
    let error = run(&mut http, &allowed).unwrap_err();
    assert!(!error.retryable);
    assert!(
        error
            .message
            .starts_with("2 of 2 actions failed: comment: ")
    );
    assert!(error.message.contains("returned 503: unavailable"));
    assert!(
        error
            .message
            .contains("status: POST /repos/octo-org/hello%20world/statuses/abc123 returned 422")
    );
}

#[test]
fn errors_quote_a_short_body_and_no_header_values() {
    let body = format!("{{\"message\":\"{}\"}}", "x".repeat(2_000));
    let error = label_failure(
        Response::new(500, body)
            .with_header("x-github-request-id", "REQ-ID-SECRETISH")
            .with_header("set-cookie", "session=COOKIE-VALUE"),
    );
    assert!(!error.message.contains("REQ-ID-SECRETISH"));
    assert!(!error.message.contains("COOKIE-VALUE"));
    assert!(!error.message.contains("application/vnd.github+json"));
    assert!(!error.message.contains("2022-11-28"));
    assert!(error.message.contains("label.add: POST /repos/octo-org/hello%20world/issues/42/labels returned 500: {\"message\":\"xxx"));
    assert!(error.message.len() < 300 + 200, "{}", error.message.len());
}

#[test]
fn nothing_to_write_or_nowhere_to_write_is_an_empty_receipt() {
    let mut http = Recording::accepting();
    assert!(
        run(&mut http, &TaskResult::empty())
            .unwrap()
            .actions
            .is_empty()
    );
    // A metadata-only result proposes nothing either.
    let allowed = TaskResult {
        metadata: Some("{}".into()),
        ..TaskResult::empty()
    };
    assert!(run(&mut http, &allowed).unwrap().actions.is_empty());

    let other_provider = StoredEvent::new("slack", event("message").attr("channel", "C1"));
    let receipt = write_back(&mut http, API, &other_provider, &with_comment("hi"), MARKER).unwrap();
    assert!(receipt.actions.is_empty());
    assert!(http.requests.is_empty());

    // A push has no number: nothing to comment on.
    let push = StoredEvent::new(
        "github",
        event("push")
            .attr("repo_owner", "o")
            .attr("repo_name", "r")
            .attr("head_sha", "abc"),
    );
    let receipt = write_back(&mut http, API, &push, &with_comment("hi"), MARKER).unwrap();
    assert!(receipt.actions.is_empty());
    assert!(http.requests.is_empty());
}

#[test]
fn number_may_arrive_as_text() {
    let mut http = Recording::accepting();
    let event = StoredEvent::new(
        "github",
        event("issue_comment.created")
            .attr("repo_owner", "o")
            .attr("repo_name", "r")
            .attr("number", "17"),
    );
    write_back(&mut http, API, &event, &with_comment("hi"), MARKER).unwrap();
    assert_eq!(http.requests[1].path(), "/repos/o/r/issues/17/comments");
}
