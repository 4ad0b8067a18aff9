//! The GitLab calls, checked against a recording fake: merge request or issue routing, the
//! encoded project path, status mapping, labels in one call, the marker that prevents double
//! posts, and how failures are classified.

use super::*;
use mecha_plugin_sdk::responder::{
    Comment, Commit, Event, Labels, Status, event,
    http::{HttpError, Recording, Response},
};

const API: &str = "https://gitlab.test/api/v4";
const MARKER: &str = "task-42ab";

/// The encoded path of `group/sub` + `my project`.
const PROJECT: &str = "/api/v4/projects/group%2Fsub%2Fmy%20project";

fn in_project(event: Event) -> StoredEvent {
    StoredEvent::new(
        "gitlab",
        event
            .attr("repo_owner", "group/sub")
            .attr("repo_name", "my project")
            .attr("number", 5)
            .attr("head_sha", "deadbeef"),
    )
}

fn merge_request() -> StoredEvent {
    in_project(event("merge_request.open"))
}

fn issue() -> StoredEvent {
    in_project(event("issue.open"))
}

fn with_comment(body: &str) -> TaskResult {
    TaskResult {
        comment: Some(Comment { body: body.into() }),
        ..TaskResult::empty()
    }
}

fn with_status(state: &str) -> TaskResult {
    TaskResult {
        status: Some(Status {
            state: state.into(),
            description: "checked".into(),
        }),
        ..TaskResult::empty()
    }
}

fn with_labels(add: &[&str], remove: &[&str]) -> TaskResult {
    TaskResult {
        labels: Some(Labels {
            add: add.iter().map(|l| l.to_string()).collect(),
            remove: remove.iter().map(|l| l.to_string()).collect(),
        }),
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

const JSON_HEADERS: [(&str, &str); 2] = [
    ("User-Agent", "mecha"),
    ("Content-Type", "application/json"),
];

fn receipt_pairs(receipt: &Receipt) -> Vec<(&str, &str)> {
    receipt
        .actions
        .iter()
        .map(|action| (action.action.as_str(), action.reference.as_str()))
        .collect()
}

#[test]
fn merge_request_note_lists_then_posts_with_the_marker() {
    let mut http = Recording::new(|request| {
        Ok(match request.method {
            Method::Get => Response::new(200, "[]"),
            _ => Response::json_body(201, &serde_json::json!({"id": 991, "body": "…"})),
        })
    });
    let receipt = write_back(
        &mut http,
        API,
        &merge_request(),
        &with_comment("LGTM"),
        MARKER,
    )
    .unwrap();
    assert_eq!(receipt_pairs(&receipt), [("comment", "991")]);
    let [list, post] = &http.requests[..] else {
        panic!("expected a list and a post, got {:?}", http.requests)
    };
    assert_eq!(list.method, Method::Get);
    assert_eq!(
        list.url,
        format!("https://gitlab.test{PROJECT}/merge_requests/5/notes?per_page=100&page=1")
    );
    assert_eq!(headers_of(list), HEADERS);
    assert_eq!(post.method, Method::Post);
    assert_eq!(post.path(), format!("{PROJECT}/merge_requests/5/notes"));
    assert_eq!(headers_of(post), JSON_HEADERS);
    assert_eq!(
        post.body_json().unwrap(),
        serde_json::json!({"body": "LGTM\n\n<!-- mecha:task-42ab:comment -->"})
    );
    assert!(
        http.requests
            .iter()
            .all(|r| r.header_value("private-token").is_none())
    );
}

#[test]
fn notes_go_to_the_issue_or_merge_request_the_event_is_about() {
    let cases = [
        (issue(), "issues"),
        (merge_request(), "merge_requests"),
        (in_project(event("merge_request")), "merge_requests"),
        (
            in_project(event("note").attr("noteable_type", "MergeRequest")),
            "merge_requests",
        ),
        (
            in_project(event("note").attr("noteable_type", "Issue")),
            "issues",
        ),
        (in_project(event("note")), "issues"),
        (in_project(event("pipeline")), "merge_requests"),
    ];
    for (event, kind) in cases {
        let mut http = Recording::accepting();
        write_back(&mut http, API, &event, &with_comment("hi"), MARKER).unwrap();
        assert_eq!(
            http.requests[1].path(),
            format!("{PROJECT}/{kind}/5/notes"),
            "{}",
            event.event.event_type
        );
    }
}

#[test]
fn output_is_the_note_when_there_is_no_comment() {
    let mut http = Recording::accepting();
    let allowed = TaskResult {
        output: Some("Summary".into()),
        ..TaskResult::empty()
    };
    write_back(&mut http, API, &issue(), &allowed, MARKER).unwrap();
    assert_eq!(
        http.requests[1].body_json().unwrap()["body"],
        "Summary\n\n<!-- mecha:task-42ab:comment -->"
    );
}

#[test]
fn a_marker_on_page_two_skips_the_note() {
    let mut http = Recording::new(|request| {
        let others: Vec<_> = (0..100)
            .map(|i| serde_json::json!({"id": i, "body": "hello"}))
            .collect();
        Ok(
            match request.url.rsplit_once("page=").map(|(_, page)| page) {
                Some("1") => Response::json_body(200, &serde_json::Value::Array(others)),
                Some("2") => Response::json_body(
                    200,
                    &serde_json::json!([{"id": 7, "body": "old\n\n<!-- mecha:task-42ab:comment -->"}]),
                ),
                _ => Response::new(500, "unexpected"),
            },
        )
    });
    let receipt = write_back(
        &mut http,
        API,
        &merge_request(),
        &with_comment("LGTM"),
        MARKER,
    )
    .unwrap();
    assert_eq!(receipt_pairs(&receipt), [("comment", "already posted")]);
    assert_eq!(http.requests.len(), 2);
    assert!(http.requests.iter().all(|r| r.method == Method::Get));
}

#[test]
fn status_states_map_to_gitlab_states() {
    for (state, mapped) in [
        ("error", "failed"),
        ("failure", "failed"),
        ("pending", "pending"),
        ("success", "success"),
    ] {
        let mut http = Recording::accepting();
        let receipt = write_back(
            &mut http,
            API,
            &merge_request(),
            &with_status(state),
            MARKER,
        )
        .unwrap();
        assert_eq!(receipt_pairs(&receipt), [("status", mapped)]);
        let [request] = &http.requests[..] else {
            panic!("expected one request")
        };
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.path(), format!("{PROJECT}/statuses/deadbeef"));
        assert_eq!(headers_of(request), JSON_HEADERS);
        assert_eq!(
            request.body_json().unwrap(),
            serde_json::json!({"state": mapped, "description": "checked", "name": "mecha"})
        );
    }
    let mut http = Recording::accepting();
    let error = write_back(
        &mut http,
        API,
        &merge_request(),
        &with_status("done"),
        MARKER,
    )
    .unwrap_err();
    assert!(!error.retryable);
    assert!(http.requests.is_empty());
}

#[test]
fn a_status_already_in_the_state_counts_as_set() {
    let mut http = Recording::new(|_| {
        Ok(Response::new(
            400,
            r#"{"message":"Cannot transition status via :enqueue from :pending (Reason(s): Status cannot transition via \"enqueue\".)"}"#,
        ))
    });
    let receipt = write_back(
        &mut http,
        API,
        &merge_request(),
        &with_status("pending"),
        MARKER,
    )
    .unwrap();
    assert_eq!(receipt_pairs(&receipt), [("status", "pending")]);

    // From another state it is a real refusal.
    let error = write_back(
        &mut http,
        API,
        &merge_request(),
        &with_status("success"),
        MARKER,
    )
    .unwrap_err();
    assert!(!error.retryable);
    assert!(error.message.contains("returned 400"));
}

#[test]
fn labels_are_changed_in_one_put() {
    let mut http = Recording::accepting();
    let allowed = with_labels(&["bug", "needs review", " "], &["wip"]);
    let receipt = write_back(&mut http, API, &issue(), &allowed, MARKER).unwrap();
    assert_eq!(
        receipt_pairs(&receipt),
        [
            ("label.add", "bug"),
            ("label.add", "needs review"),
            ("label.remove", "wip")
        ]
    );
    let [request] = &http.requests[..] else {
        panic!("expected one request")
    };
    assert_eq!(request.method, Method::Put);
    assert_eq!(request.path(), format!("{PROJECT}/issues/5"));
    assert_eq!(headers_of(request), JSON_HEADERS);
    assert_eq!(
        request.body_json().unwrap(),
        serde_json::json!({"add_labels": "bug,needs review", "remove_labels": "wip"})
    );

    let mut http = Recording::accepting();
    write_back(
        &mut http,
        API,
        &merge_request(),
        &with_labels(&[], &["wip"]),
        MARKER,
    )
    .unwrap();
    assert_eq!(
        http.requests[0].path(),
        format!("{PROJECT}/merge_requests/5")
    );
    assert_eq!(
        http.requests[0].body_json().unwrap(),
        serde_json::json!({"remove_labels": "wip"})
    );
}

#[test]
fn a_label_with_a_comma_is_refused_before_sending() {
    let mut http = Recording::accepting();
    let error = write_back(
        &mut http,
        API,
        &issue(),
        &with_labels(&["a,b"], &[]),
        MARKER,
    )
    .unwrap_err();
    assert!(!error.retryable);
    assert!(
        error
            .message
            .contains("labels: GitLab label names cannot contain commas")
    );
    assert!(http.requests.is_empty());
}

#[test]
fn commit_is_suggested_in_a_marked_note() {
    let mut http = Recording::accepting();
    let allowed = TaskResult {
        commit: Some(Commit {
            message: "Fix typo".into(),
            diff: "-teh\n+the\n".into(),
        }),
        ..TaskResult::empty()
    };
    let receipt = write_back(&mut http, API, &merge_request(), &allowed, MARKER).unwrap();
    assert_eq!(receipt.actions[0].action, "commit");
    assert_eq!(
        http.requests[1].path(),
        format!("{PROJECT}/merge_requests/5/notes")
    );
    assert_eq!(
        http.requests[1].body_json().unwrap()["body"],
        "**Suggested commit:** Fix typo\n\n```diff\n-teh\n+the\n```\n\n<!-- mecha:task-42ab:commit -->"
    );
}

fn label_failure(response: Response) -> RespondError {
    let mut http = Recording::new(move |_| Ok(response.clone()));
    write_back(
        &mut http,
        API,
        &issue(),
        &with_labels(&["bug"], &[]),
        MARKER,
    )
    .unwrap_err()
}

#[test]
fn failures_are_classified_by_status() {
    for status in [302, 400, 401, 403, 404, 422] {
        let error = label_failure(Response::new(status, r#"{"message":"no"}"#));
        assert!(!error.retryable, "{status} must not be retryable");
        assert!(error.message.contains(&format!("returned {status}")));
    }
    for status in [429, 500, 502, 503] {
        assert!(
            label_failure(Response::new(status, "busy")).retryable,
            "{status}"
        );
    }
    let error = label_failure(
        Response::new(500, "x".repeat(1_000)).with_header("x-request-id", "REQUEST-ID-VALUE"),
    );
    assert!(!error.message.contains("REQUEST-ID-VALUE"));
    assert!(
        error
            .message
            .contains(&format!("labels: PUT {PROJECT}/issues/5 returned 500: "))
    );
    assert!(error.message.len() < 300 + 150);

    let mut http = Recording::new(|_| Err(HttpError::new("the host denied the request", false)));
    let error = write_back(&mut http, API, &issue(), &with_comment("hi"), MARKER).unwrap_err();
    assert!(!error.retryable);
}

#[test]
fn mixed_failures_are_not_retryable() {
    let mut http = Recording::new(|request| {
        Ok(match request.method {
            Method::Put => Response::new(502, "bad gateway"),
            _ => Response::new(404, r#"{"message":"404 Project Not Found"}"#),
        })
    });
    let allowed = TaskResult {
        labels: with_labels(&["bug"], &[]).labels,
        ..with_status("success")
    };
    let error = write_back(&mut http, API, &issue(), &allowed, MARKER).unwrap_err();
    assert!(!error.retryable);
    assert!(error.message.starts_with("2 of 2 actions failed: status: "));
}

#[test]
fn nothing_to_write_or_nowhere_to_write_is_an_empty_receipt() {
    let mut http = Recording::accepting();
    assert!(
        write_back(&mut http, API, &issue(), &TaskResult::empty(), MARKER)
            .unwrap()
            .actions
            .is_empty()
    );
    let elsewhere = StoredEvent::new("github", event("push").attr("ref", "main"));
    assert!(
        write_back(&mut http, API, &elsewhere, &with_comment("hi"), MARKER)
            .unwrap()
            .actions
            .is_empty()
    );
    assert!(http.requests.is_empty());
}

#[test]
fn a_bare_instance_url_gets_the_rest_api_path() {
    assert_eq!(rest_api("https://gitlab.com"), "https://gitlab.com/api/v4");
    assert_eq!(rest_api("https://gitlab.com/"), "https://gitlab.com/api/v4");
    assert_eq!(
        rest_api("https://gitlab.example.com/api/v4"),
        "https://gitlab.example.com/api/v4"
    );
    assert_eq!(
        rest_api("http://127.0.0.1:8080/gitlab/api/v4/"),
        "http://127.0.0.1:8080/gitlab/api/v4"
    );
}
