use super::*;

const MERGE_REQUEST: &[u8] = include_bytes!("../../../../tests/fixtures/gitlab/merge_request.json");
const PUSH: &[u8] = include_bytes!("../../../../tests/fixtures/gitlab/push.json");
const TAG_PUSH: &[u8] = include_bytes!("../../../../tests/fixtures/gitlab/tag_push.json");
const NOTE_MERGE_REQUEST: &[u8] =
    include_bytes!("../../../../tests/fixtures/gitlab/note_merge_request.json");
const NOTE_ISSUE: &[u8] = include_bytes!("../../../../tests/fixtures/gitlab/note_issue.json");
const ISSUE: &[u8] = include_bytes!("../../../../tests/fixtures/gitlab/issue.json");
const PIPELINE: &[u8] = include_bytes!("../../../../tests/fixtures/gitlab/pipeline.json");

/// Every fixture with the `X-Gitlab-Event` GitLab sends it with.
const FIXTURES: [(&str, &[u8]); 7] = [
    ("Merge Request Hook", MERGE_REQUEST),
    ("Push Hook", PUSH),
    ("Tag Push Hook", TAG_PUSH),
    ("Note Hook", NOTE_MERGE_REQUEST),
    ("Note Hook", NOTE_ISSUE),
    ("Issue Hook", ISSUE),
    ("Pipeline Hook", PIPELINE),
];

fn delivery(headers: &[(&str, &str)], body: &[u8]) -> Request {
    Request::post(headers, body)
}

/// The one event of a delivery of the hook `hook`, which must parse.
fn parse(hook: &str, body: &[u8]) -> Event {
    let events = request(&delivery(&[(EVENT_HEADER, hook)], body))
        .unwrap_or_else(|err| panic!("{hook}: {err:?}"));
    assert_eq!(events.len(), 1);
    events.into_iter().next().expect("one event")
}

fn bad_request(hook: &str, body: &[u8]) -> String {
    match request(&delivery(&[(EVENT_HEADER, hook)], body)) {
        Err(Error::BadRequest(message)) => message,
        other => panic!("expected a bad request, got {other:?}"),
    }
}

fn absent(event: &Event, name: &str) {
    assert!(event.get_attr(name).is_none(), "{name} should be absent");
}

#[test]
fn merge_request_hook() {
    let event = parse("Merge Request Hook", MERGE_REQUEST);
    assert_eq!(event.event_type, "merge_request.open");
    assert_eq!(event.actor, "user1");
    assert_eq!(event.subject, "gitlabhq/gitlab-test");
    assert_eq!(event.text_attr("sender"), Some("user1"));
    assert_eq!(event.text_attr("repo_owner"), Some("gitlabhq"));
    assert_eq!(event.text_attr("repo_name"), Some("gitlab-test"));
    assert_eq!(event.integer_attr("project_id"), Some(1));
    assert_eq!(event.integer_attr("number"), Some(1));
    assert_eq!(event.text_attr("title"), Some("MS-Viewport"));
    assert_eq!(event.text_attr("body"), Some(""));
    assert_eq!(event.text_attr("head_branch"), Some("ms-viewport"));
    assert_eq!(event.text_attr("base_branch"), Some("master"));
    let sha = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    assert_eq!(event.text_attr("head_sha"), Some(sha));
    assert_eq!(event.text_attr("ref"), Some(sha));
    assert_eq!(event.text_attr("state"), Some("opened"));
    assert_eq!(event.text_attr("action"), Some("open"));
    assert_eq!(event.text_attr("labels"), Some("API"));
    assert_eq!(
        event.text_attr("url"),
        Some("http://example.com/diaspora/merge_requests/1")
    );
    assert_eq!(event.boolean_attr("work_in_progress"), Some(false));
    absent(&event, "draft");
    absent(&event, "confidential");
}

#[test]
fn merge_request_without_action_is_bare_and_draft_is_kept() {
    let body = br#"{"object_attributes":{"iid":3,"draft":true,"action":""}}"#;
    let event = parse("Merge Request Hook", body);
    assert_eq!(event.event_type, "merge_request");
    assert_eq!(event.boolean_attr("draft"), Some(true));
    assert_eq!(
        parse("Merge Request Hook", b"{}").event_type,
        "merge_request"
    );
}

#[test]
fn push_hook() {
    let event = parse("Push Hook", PUSH);
    assert_eq!(event.event_type, "push");
    assert_eq!(event.actor, "jsmith");
    assert_eq!(event.subject, "mike/diaspora");
    assert_eq!(event.text_attr("sender"), Some("jsmith"));
    assert_eq!(event.text_attr("repo_owner"), Some("mike"));
    assert_eq!(event.text_attr("repo_name"), Some("diaspora"));
    assert_eq!(event.integer_attr("project_id"), Some(15));
    assert_eq!(event.text_attr("ref"), Some("refs/heads/master"));
    assert_eq!(event.text_attr("branch"), Some("master"));
    absent(&event, "tag");
    let (before, after) = (
        "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    );
    assert_eq!(event.text_attr("head_sha"), Some(after));
    assert_eq!(event.text_attr("before"), Some(before));
    assert_eq!(
        event.text_attr("compare_url"),
        Some(format!("http://example.com/mike/diaspora/-/compare/{before}...{after}").as_str())
    );
    assert_eq!(
        event.text_attr("commits"),
        Some("b6568db1 Merge branch 'some-feature' into 'master'\nda156088 fixed readme")
    );
    assert_eq!(event.integer_attr("total_commits_count"), Some(4));
}

#[test]
fn tag_push_hook() {
    let event = parse("Tag Push Hook", TAG_PUSH);
    assert_eq!(event.event_type, "tag_push");
    assert_eq!(event.actor, "jsmith");
    assert_eq!(event.subject, "jsmith/example");
    assert_eq!(event.integer_attr("project_id"), Some(1));
    assert_eq!(event.text_attr("ref"), Some("refs/tags/v1.0.0"));
    assert_eq!(event.text_attr("tag"), Some("v1.0.0"));
    absent(&event, "branch");
    assert_eq!(
        event.text_attr("head_sha"),
        Some("82b3d5ae55f7080f1e6022629cdb57bfae7cccc7")
    );
    assert_eq!(
        event.text_attr("before"),
        Some("0000000000000000000000000000000000000000")
    );
    // A new tag has no `before` commit to compare with.
    absent(&event, "compare_url");
    assert_eq!(
        event.text_attr("commits"),
        Some("82b3d5ae Merge branch 'some-feature' into 'master'")
    );
    assert_eq!(event.integer_attr("total_commits_count"), Some(1));
}

#[test]
fn push_commit_lines_cut_ids_at_characters_not_bytes() {
    let body = r#"{"user_name":"Zoë","commits":[
        {"id":"ééééééééé","message":"first\r\nsecond"},
        {"id":"ab","message":""},
        {}
    ]}"#;
    let event = parse("Push Hook", body.as_bytes());
    assert_eq!(event.actor, "Zoë");
    assert_eq!(event.text_attr("commits"), Some("éééééééé first\nab \n "));
    absent(&event, "compare_url");
}

#[test]
fn note_on_a_merge_request() {
    let event = parse("Note Hook", NOTE_MERGE_REQUEST);
    assert_eq!(event.event_type, "note");
    assert_eq!(event.actor, "root");
    assert_eq!(event.subject, "gitlab-org/gitlab-test");
    assert_eq!(event.integer_attr("project_id"), Some(5));
    assert_eq!(event.text_attr("comment"), Some("This MR needs work."));
    assert_eq!(event.text_attr("noteable_type"), Some("MergeRequest"));
    assert_eq!(event.integer_attr("number"), Some(1));
    assert_eq!(
        event.text_attr("title"),
        Some("Tempora et eos debitis quae laborum et.")
    );
    assert_eq!(event.text_attr("head_branch"), Some("master"));
    assert_eq!(event.text_attr("base_branch"), Some("markdown"));
    assert_eq!(
        event.text_attr("head_sha"),
        Some("562e173be03b8ff2efb05345d12df18815438a4b")
    );
    assert_eq!(
        event.text_attr("url"),
        Some("http://example.com/gitlab-org/gitlab-test/merge_requests/1#note_1244")
    );
    // The merge request's own description and state are not the note's.
    absent(&event, "body");
    absent(&event, "state");
    absent(&event, "commit_id");
}

#[test]
fn note_on_an_issue() {
    let event = parse("Note Hook", NOTE_ISSUE);
    assert_eq!(event.event_type, "note");
    assert_eq!(event.actor, "user1");
    assert_eq!(event.subject, "gitlab-org/gitlab-test");
    assert_eq!(event.text_attr("comment"), Some("Hello world"));
    assert_eq!(event.text_attr("noteable_type"), Some("Issue"));
    assert_eq!(event.integer_attr("number"), Some(17));
    assert_eq!(event.text_attr("title"), Some("test_issue"));
    assert_eq!(
        event.text_attr("url"),
        Some("http://example.com/gitlab-org/gitlab-test/issues/17#note_1241")
    );
    absent(&event, "head_sha");
}

#[test]
fn notes_on_commits_and_snippets() {
    let body = br#"{"object_attributes":{"note":"nit","noteable_type":"Commit","commit_id":"cafe"},
        "commit":{"id":"cafef00d","message":"m"}}"#;
    let event = parse("Note Hook", body);
    assert_eq!(event.text_attr("commit_id"), Some("cafef00d"));
    let body =
        br#"{"object_attributes":{"note":"nit","noteable_type":"Commit","commit_id":"cafe"}}"#;
    assert_eq!(
        parse("Note Hook", body).text_attr("commit_id"),
        Some("cafe")
    );

    let body = br#"{"object_attributes":{"note":"x","noteable_type":"Snippet","commit_id":""},
        "snippet":{"id":53,"title":"test"}}"#;
    let event = parse("Note Hook", body);
    assert_eq!(event.text_attr("noteable_type"), Some("Snippet"));
    assert_eq!(event.integer_attr("snippet_id"), Some(53));
    assert_eq!(event.text_attr("title"), Some("test"));
    absent(&event, "commit_id");
}

#[test]
fn issue_hook() {
    let event = parse("Issue Hook", ISSUE);
    assert_eq!(event.event_type, "issue.open");
    assert_eq!(event.actor, "root");
    assert_eq!(event.subject, "gitlabhq/gitlab-test");
    assert_eq!(event.integer_attr("project_id"), Some(1));
    assert_eq!(event.integer_attr("number"), Some(23));
    assert_eq!(
        event.text_attr("title"),
        Some("New API: create/update/delete file")
    );
    assert_eq!(
        event.text_attr("body"),
        Some("Create new API for manipulations with repository")
    );
    assert_eq!(event.text_attr("state"), Some("opened"));
    assert_eq!(event.text_attr("action"), Some("open"));
    assert_eq!(event.text_attr("labels"), Some("API"));
    assert_eq!(
        event.text_attr("url"),
        Some("http://example.com/diaspora/issues/23")
    );
    absent(&event, "confidential");
}

#[test]
fn confidential_hooks_are_issues_and_notes_marked_confidential() {
    let event = parse("Confidential Issue Hook", ISSUE);
    assert_eq!(event.event_type, "issue.open");
    assert_eq!(event.integer_attr("number"), Some(23));
    assert_eq!(event.boolean_attr("confidential"), Some(true));

    let event = parse("Confidential Note Hook", NOTE_ISSUE);
    assert_eq!(event.event_type, "note");
    assert_eq!(event.text_attr("comment"), Some("Hello world"));
    assert_eq!(event.boolean_attr("confidential"), Some(true));
}

#[test]
fn pipeline_hook() {
    let event = parse("Pipeline Hook", PIPELINE);
    assert_eq!(event.event_type, "pipeline");
    assert_eq!(event.actor, "user1");
    assert_eq!(event.subject, "gitlab-org/gitlab-test");
    assert_eq!(event.integer_attr("project_id"), Some(1));
    assert_eq!(event.integer_attr("pipeline_id"), Some(31));
    assert_eq!(event.text_attr("status"), Some("success"));
    assert_eq!(event.text_attr("ref"), Some("master"));
    assert_eq!(
        event.text_attr("head_sha"),
        Some("bcbb5ec396a2c0f828686f14fac9b80b780504f2")
    );
    assert_eq!(event.text_attr("source"), Some("merge_request_event"));
    assert_eq!(event.integer_attr("number"), Some(1));
}

#[test]
fn job_hook() {
    let body = br#"{"object_kind":"build","ref":"main","tag":false,"sha":"95d49d1e",
        "build_id":1977,"build_name":"test","build_stage":"verify","build_status":"failed",
        "pipeline_id":2366,"project_id":380,"user":{"id":3,"username":"ana"},
        "commit":{"id":2366,"sha":"95d49d1e"},
        "project":{"id":380,"path_with_namespace":"gitlab-org/gitlab-test"}}"#;
    let event = parse("Job Hook", body);
    assert_eq!(event.event_type, "job");
    assert_eq!(event.actor, "ana");
    assert_eq!(event.subject, "gitlab-org/gitlab-test");
    assert_eq!(event.integer_attr("project_id"), Some(380));
    assert_eq!(event.integer_attr("job_id"), Some(1977));
    assert_eq!(event.text_attr("job_name"), Some("test"));
    assert_eq!(event.text_attr("stage"), Some("verify"));
    assert_eq!(event.text_attr("status"), Some("failed"));
    assert_eq!(event.text_attr("ref"), Some("main"));
    assert_eq!(event.text_attr("head_sha"), Some("95d49d1e"));
    assert_eq!(event.integer_attr("pipeline_id"), Some(2366));
}

#[test]
fn release_hook_in_a_nested_group() {
    let body = br#"{"object_kind":"release","action":"create","tag":"v1.1","name":"Release 1.1",
        "description":"Notes","url":"https://gitlab.example.com/group/sub/project/-/releases/v1.1",
        "project":{"id":2,"path_with_namespace":"group/sub/project"}}"#;
    let event = parse("Release Hook", body);
    assert_eq!(event.event_type, "release.create");
    assert_eq!(event.actor, "");
    absent(&event, "sender");
    assert_eq!(event.subject, "group/sub/project");
    assert_eq!(event.text_attr("repo_owner"), Some("group"));
    assert_eq!(event.text_attr("repo_name"), Some("sub/project"));
    assert_eq!(event.integer_attr("project_id"), Some(2));
    assert_eq!(event.text_attr("tag"), Some("v1.1"));
    assert_eq!(event.text_attr("title"), Some("Release 1.1"));
    assert_eq!(event.text_attr("body"), Some("Notes"));
    assert_eq!(event.text_attr("action"), Some("create"));
    assert_eq!(
        event.text_attr("url"),
        Some("https://gitlab.example.com/group/sub/project/-/releases/v1.1")
    );
}

#[test]
fn other_hooks_are_named_after_their_header() {
    let body = br#"{"user":{"username":"a"},"object_attributes":{"action":"create","url":"u"}}"#;
    let event = parse("Wiki Page Hook", body);
    assert_eq!(event.event_type, "wiki_page.create");
    assert_eq!(event.text_attr("action"), Some("create"));
    assert_eq!(event.text_attr("url"), Some("u"));
    assert_eq!(event.actor, "a");
    assert_eq!(parse("Deployment Hook", b"{}").event_type, "deployment");
    assert_eq!(
        parse("  Feature  Flag\tHook ", b"{}").event_type,
        "feature_flag"
    );
    assert_eq!(type_name("Hook"), "hook");
    assert_eq!(type_name("System Hook"), "system");
    assert_eq!(type_name("Emoji"), "emoji");
    assert_eq!(type_name("Ünïcode Hook"), "ünïcode");
}

#[test]
fn actor_falls_back_from_user_username_to_user_then_user_name() {
    let body = br#"{"user_username":"","user":{"username":"nested"},"user_name":"Name"}"#;
    assert_eq!(parse("Push Hook", body).actor, "nested");
    let body = br#"{"user":{"username":null},"user_name":"Name"}"#;
    assert_eq!(parse("Push Hook", body).actor, "Name");
    let body = br#"{"project":{"id":9,"path_with_namespace":"solo"}}"#;
    let event = parse("Push Hook", body);
    assert_eq!(event.subject, "solo");
    assert_eq!(event.integer_attr("project_id"), Some(9));
    absent(&event, "repo_owner");
}

#[test]
fn event_header_must_be_present_and_not_blank() {
    let missing = request(&delivery(&[], PUSH));
    assert!(matches!(missing, Err(Error::BadRequest(message)) if message.contains(EVENT_HEADER)));
    assert!(bad_request(" ", PUSH).contains(EVENT_HEADER));
    let lower_case = request(&delivery(&[("x-gitlab-event", "Push Hook")], PUSH));
    assert!(lower_case.is_ok());
}

#[test]
fn bodies_that_are_not_json_objects_are_bad_requests() {
    for body in [
        &b""[..],
        b"   ",
        b"not json",
        b"null",
        b"5",
        b"\"push\"",
        b"[]",
        b"[null,null,null,null,null,null]",
        &[0xff, 0xfe, 0x00][..],
    ] {
        for (hook, _) in FIXTURES {
            bad_request(hook, body);
        }
        bad_request("Job Hook", body);
        bad_request("Release Hook", body);
        bad_request("Wiki Page Hook", body);
    }
    assert!(bad_request("Push Hook", b"[]").contains("JSON object"));
}

#[test]
fn fields_of_the_wrong_type_are_bad_requests() {
    for (hook, body) in [
        ("Push Hook", &br#"{"user":5}"#[..]),
        ("Push Hook", br#"{"commits":{"id":"a"}}"#),
        ("Push Hook", br#"{"total_commits_count":"4"}"#),
        (
            "Merge Request Hook",
            br#"{"object_attributes":{"iid":1e30}}"#,
        ),
        ("Merge Request Hook", br#"{"object_attributes":[]}"#),
        ("Note Hook", br#"{"merge_request":{"labels":[1]}}"#),
        ("Issue Hook", br#"{"project":{"id":-1.5}}"#),
    ] {
        let message = bad_request(hook, body);
        assert!(message.contains("not a valid GitLab hook"), "{message}");
    }
}

#[test]
fn deep_nesting_neither_recurses_nor_fails_where_it_is_skipped() {
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    // serde skips an unused field without recursing, however deep it is.
    let skipped = format!("{{\"unused\":{nested}}}");
    assert_eq!(parse("Push Hook", skipped.as_bytes()).event_type, "push");
    let read = format!("{{\"object_attributes\":{{\"labels\":[{{\"title\":{nested}}}]}}}}");
    bad_request("Issue Hook", read.as_bytes());
}

#[test]
fn every_prefix_of_every_fixture_is_an_event_or_a_bad_request() {
    for (hook, fixture) in FIXTURES {
        for end in 0..fixture.len() {
            let result = request(&delivery(&[(EVENT_HEADER, hook)], &fixture[..end]));
            assert!(
                matches!(result, Ok(_) | Err(Error::BadRequest(_))),
                "{hook}, {end} bytes: {result:?}"
            );
        }
    }
}

#[test]
fn delivery_id_is_the_uuid_else_instance_and_request_id() {
    let id = |headers: &[(&str, &str)]| {
        let mut headers = headers.to_vec();
        headers.push((EVENT_HEADER, "Push Hook"));
        let events = request(&delivery(&headers, PUSH)).expect("valid push");
        events
            .into_iter()
            .next()
            .and_then(|event| event.delivery_id)
    };
    let uuid = "9cb8b5a9-6f1c-4c6d-9f1a-2f7b1d3c8e11";
    assert_eq!(
        id(&[
            ("X-Gitlab-Event-UUID", uuid),
            ("X-Gitlab-Instance", "https://gitlab.com"),
            ("X-Request-Id", "01HX"),
        ])
        .as_deref(),
        Some(uuid)
    );
    assert_eq!(
        id(&[
            ("X-Gitlab-Event-UUID", " "),
            ("X-Gitlab-Instance", "https://gitlab.com"),
            ("X-Request-Id", "01HX"),
        ])
        .as_deref(),
        Some("https://gitlab.com/01HX")
    );
    // The instance alone would make every delivery of that GitLab the same one.
    assert_eq!(id(&[("X-Gitlab-Instance", "https://gitlab.com")]), None);
    assert_eq!(id(&[("X-Request-Id", "01HX")]).as_deref(), Some("/01HX"));
    assert_eq!(id(&[("X-Gitlab-Instance", ""), ("X-Request-Id", "")]), None);
    assert_eq!(id(&[]), None);
}
