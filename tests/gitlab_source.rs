//! The bundled gitlab plugin, compiled to wasm, on every GitLab fixture: the token checked by the
//! host, then type, actor, subject and the attrs of each hook. Called through the library, as
//! the daemon calls it.

use mecha::plugin::bindings::source::types;
use serde_json::{Value, json};

use crate::support::fixtures;
use crate::support::sources::{Source, attrs, request};

const TOKEN: &str = "gitlab-test-token";

fn delivery(hook: &str, body: &[u8], token: Option<&str>) -> types::Request {
    let mut headers = vec![
        ("x-gitlab-event", hook.to_owned()),
        ("x-gitlab-event-uuid", format!("uuid-{hook}")),
    ];
    if let Some(token) = token {
        headers.push(("x-gitlab-token", token.to_owned()));
    }
    request(&headers, body)
}

/// (fixture, X-Gitlab-Event, type, actor, subject, attrs that must have these values)
fn cases() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Value,
)> {
    vec![
        (
            "merge_request.json",
            "Merge Request Hook",
            "merge_request.open",
            "user1",
            "gitlabhq/gitlab-test",
            json!({
                "number": 1, "title": "MS-Viewport", "head_branch": "ms-viewport",
                "base_branch": "master", "state": "opened", "action": "open",
                "head_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                "ref": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                "repo_owner": "gitlabhq", "repo_name": "gitlab-test", "sender": "user1",
            }),
        ),
        (
            "note_issue.json",
            "Note Hook",
            "note",
            "user1",
            "gitlab-org/gitlab-test",
            json!({
                "comment": "Hello world", "noteable_type": "Issue", "number": 17,
                "title": "test_issue", "repo_owner": "gitlab-org",
            }),
        ),
        (
            "note_merge_request.json",
            "Note Hook",
            "note",
            "root",
            "gitlab-org/gitlab-test",
            json!({
                "comment": "This MR needs work.", "noteable_type": "MergeRequest", "number": 1,
                "title": "Tempora et eos debitis quae laborum et.",
            }),
        ),
        (
            "issue.json",
            "Issue Hook",
            "issue.open",
            "root",
            "gitlabhq/gitlab-test",
            json!({ "number": 23, "title": "New API: create/update/delete file", "state": "opened" }),
        ),
        (
            "pipeline.json",
            "Pipeline Hook",
            "pipeline",
            "user1",
            "gitlab-org/gitlab-test",
            json!({
                "pipeline_id": 31, "status": "success", "ref": "master",
                "head_sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2", "number": 1,
            }),
        ),
        (
            "push.json",
            "Push Hook",
            "push",
            "jsmith",
            "mike/diaspora",
            json!({
                "ref": "refs/heads/master", "branch": "master",
                "head_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
                "total_commits_count": 4, "repo_owner": "mike", "repo_name": "diaspora",
            }),
        ),
        (
            "tag_push.json",
            "Tag Push Hook",
            "tag_push",
            "jsmith",
            "jsmith/example",
            json!({
                "ref": "refs/tags/v1.0.0", "tag": "v1.0.0",
                "head_sha": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
            }),
        ),
    ]
}

#[tokio::test]
async fn every_fixture_parses_into_type_actor_subject_and_attrs() {
    let gitlab = Source::bundled("gitlab", &[("webhook_secret", TOKEN)]).await;
    let cases = cases();
    assert_eq!(
        cases.len(),
        fixtures::all("gitlab").len(),
        "every GitLab fixture is covered"
    );
    for (file, hook, event_type, actor, subject, expected) in cases {
        let body = fixtures::read("gitlab", file);
        let event = gitlab
            .one_event(delivery(hook, &body, Some(TOKEN)), file)
            .await;
        assert_eq!(event.event_type, event_type, "{file}");
        assert_eq!(event.actor, actor, "{file}");
        assert_eq!(event.subject, subject, "{file}");
        assert_eq!(
            event.delivery_id.as_deref(),
            Some(format!("uuid-{hook}").as_str())
        );
        let found = attrs(&event);
        for (name, value) in expected.as_object().expect("object") {
            assert_eq!(found.get(name), Some(value), "{file}: {name} in {found:?}");
        }
    }
}

#[tokio::test]
async fn push_commits_are_listed_one_per_line() {
    let gitlab = Source::bundled("gitlab", &[("webhook_secret", TOKEN)]).await;
    let body = fixtures::read("gitlab", "push.json");
    let event = gitlab
        .one_event(delivery("Push Hook", &body, Some(TOKEN)), "push")
        .await;
    let found = attrs(&event);
    assert_eq!(
        found["commits"],
        "b6568db1 Merge branch 'some-feature' into 'master'\nda156088 fixed readme"
    );
    assert_eq!(
        found["compare_url"],
        "http://example.com/mike/diaspora/-/compare/95790bf891e76fee5e1747ab589903a6a1f80f22...da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthorized_and_never_parsed() {
    let gitlab = Source::bundled("gitlab", &[("webhook_secret", TOKEN)]).await;
    for token in [None, Some("wrong"), Some("")] {
        // Not even JSON: an unverified body is never looked at.
        let (outcome, verified) = gitlab
            .handle(delivery("Push Hook", b"not json", token))
            .await;
        assert!(!verified, "{token:?}");
        assert!(
            matches!(outcome, Err(types::Error::Unauthorized(_))),
            "{token:?}: {outcome:?}"
        );
    }
    let (outcome, verified) = gitlab
        .handle(delivery("Push Hook", b"not json", Some(TOKEN)))
        .await;
    assert!(verified);
    assert!(
        matches!(outcome, Err(types::Error::BadRequest(_))),
        "{outcome:?}"
    );
}
