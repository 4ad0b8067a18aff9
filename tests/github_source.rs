//! The bundled github plugin, compiled to wasm, on every GitHub fixture: type, actor, subject
//! and the attrs of each event kind. Called through the library, as the daemon calls it.

use mecha::plugin::bindings::source::types;
use serde_json::Value;

use crate::support::sources::{Source, attrs, request};
use crate::support::{daemon::GITHUB_SECRET, fixtures};

fn signed(event: &str, body: &[u8], secret: &str) -> types::Request {
    request(
        &[
            ("x-github-event", event.to_owned()),
            ("x-github-delivery", "d-1".to_owned()),
            (
                "x-hub-signature-256",
                mecha::signature::github_signature(secret.as_bytes(), body),
            ),
        ],
        body,
    )
}

#[tokio::test]
async fn every_fixture_parses_into_type_actor_and_subject() {
    let github = Source::bundled("github", &[("webhook_secret", GITHUB_SECRET)]).await;
    let all = fixtures::all("github");
    assert_eq!(all.len(), 15, "all GitHub fixtures are present");
    for (name, body) in all {
        let event_name = fixtures::github_event(&name);
        let event = &github
            .one_event(signed(event_name, &body, GITHUB_SECRET), &name)
            .await;
        let payload: Value = serde_json::from_slice(&body).expect("fixture is JSON");
        let expected_type = match payload["action"].as_str() {
            Some(action) => format!("{event_name}.{action}"),
            None => event_name.to_owned(),
        };
        assert_eq!(event.event_type, expected_type, "{name}");
        assert_eq!(
            event.actor,
            payload["sender"]["login"].as_str().unwrap_or(""),
            "{name}"
        );
        assert_eq!(
            event.subject,
            payload["repository"]["full_name"].as_str().unwrap_or(""),
            "{name}"
        );
        assert_eq!(event.delivery_id.as_deref(), Some("d-1"), "{name}");
        let attrs = attrs(event);
        let (owner, repo) = event.subject.split_once('/').expect("owner/name");
        assert_eq!(attrs["repo_owner"], owner, "{name}");
        assert_eq!(attrs["repo_name"], repo, "{name}");
        assert_eq!(attrs["sender"], event.actor.as_str(), "{name}");
    }
}

#[tokio::test]
async fn event_kinds_carry_their_attrs() {
    let github = Source::bundled("github", &[("webhook_secret", GITHUB_SECRET)]).await;
    let parse = |name: &'static str| {
        let github = &github;
        async move {
            let body = fixtures::read("github", name);
            let request = signed(fixtures::github_event(name), &body, GITHUB_SECRET);
            let event = github.one_event(request, name).await;
            let payload: Value = serde_json::from_slice(&body).expect("json");
            (attrs(&event), payload)
        }
    };

    let (pr, payload) = parse("pull_request__opened.payload.json").await;
    let head = &payload["pull_request"]["head"];
    assert_eq!(pr["number"], payload["number"]);
    assert_eq!(pr["title"], payload["pull_request"]["title"]);
    assert_eq!(pr["head_sha"], head["sha"]);
    assert_eq!(pr["ref"], head["sha"]);
    assert_eq!(pr["head_branch"], head["ref"]);
    assert_eq!(pr["base_branch"], payload["pull_request"]["base"]["ref"]);
    assert_eq!(pr["base_sha"], payload["pull_request"]["base"]["sha"]);

    let (labeled, payload) = parse("pull_request__labeled.payload.json").await;
    let names: Vec<&str> = payload["pull_request"]["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|label| label["name"].as_str().expect("name"))
        .collect();
    assert_eq!(labeled["labels"], names.join(", "));
    assert_eq!(labeled["label"], payload["label"]["name"]);

    let (push, payload) = parse("push__payload.json").await;
    assert_eq!(push["ref"], payload["ref"]);
    assert_eq!(push["head_sha"], payload["after"]);
    assert_eq!(push["compare_url"], payload["compare"]);
    // This delivery (a branch creation) has no commits; the parser's unit tests cover lines.
    assert_eq!(payload["commits"], serde_json::json!([]));
    assert_eq!(push["commits"], "");

    let (comment, payload) = parse("issue_comment__created.payload.json").await;
    assert_eq!(comment["number"], payload["issue"]["number"]);
    assert_eq!(comment["title"], payload["issue"]["title"]);
    assert_eq!(comment["comment"], payload["comment"]["body"]);

    let (issue, payload) = parse("issues__opened.payload.json").await;
    assert_eq!(issue["number"], payload["issue"]["number"]);
    assert_eq!(issue["body"], payload["issue"]["body"]);

    let (review, payload) = parse("pull_request_review__submitted.payload.json").await;
    assert_eq!(review["number"], payload["pull_request"]["number"]);
    assert_eq!(review["review_state"], payload["review"]["state"]);

    let (release, payload) = parse("release__published.payload.json").await;
    assert_eq!(release["tag"], payload["release"]["tag_name"]);

    let (run, payload) = parse("workflow_run__completed.payload.json").await;
    assert_eq!(run["conclusion"], payload["workflow_run"]["conclusion"]);
    assert_eq!(run["head_sha"], payload["workflow_run"]["head_sha"]);

    let (check, payload) = parse("check_run__completed.payload.json").await;
    assert_eq!(check["check_name"], payload["check_run"]["name"]);
}

/// GitHub's published vector: the right signature passes the host's check (the body then fails
/// to parse, a 400, not a 401), and one changed byte fails it.
#[tokio::test]
async fn github_signature_vector_through_the_plugin() {
    let secret = "It's a Secret to Everybody";
    let github = Source::bundled("github", &[("webhook_secret", secret)]).await;
    let vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let send = |body: &'static [u8]| {
        github.handle(request(
            &[
                ("x-github-event", "push".to_owned()),
                ("x-hub-signature-256", vector.to_owned()),
            ],
            body,
        ))
    };
    let (outcome, verified) = send(b"Hello, World!").await;
    assert!(verified);
    assert!(
        matches!(outcome, Err(types::Error::BadRequest(_))),
        "{outcome:?}"
    );
    let (outcome, verified) = send(b"Hello, World?").await;
    assert!(!verified);
    assert!(
        matches!(outcome, Err(types::Error::Unauthorized(_))),
        "{outcome:?}"
    );
}
