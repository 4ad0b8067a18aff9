//! The GitHub and GitLab stand-ins answer like the real APIs: authentication failures,
//! validation, pagination headers, labels, statuses, `%2F` project paths and injected faults.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::daemon::client;
use crate::support::forge::{Fault, GitHub, GitLab, Noteable};

const TOKEN: &str = "forge-standin-token";
const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

/// One answer: status, headers, body as JSON (a JSON string when it is not JSON).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }
}

async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client().request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

/// A request as mecha's GitHub write-back sends it.
async fn github(hub: &GitHub, method: &str, path: &str, body: Option<Value>) -> Answer {
    let body = body.map(|body| body.to_string());
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("accept", "application/vnd.github+json"),
        ("user-agent", "mecha-e2e"),
    ];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    send(method, &hub.url(path), &headers, body.as_deref()).await
}

/// A request as mecha's GitLab write-back sends it.
async fn gitlab(lab: &GitLab, method: &str, path: &str, body: Option<Value>) -> Answer {
    let body = body.map(|body| body.to_string());
    let mut headers = vec![("private-token", TOKEN)];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    send(method, &lab.url(path), &headers, body.as_deref()).await
}

#[tokio::test]
async fn github_refuses_requests_the_way_github_does() {
    let hub = GitHub::start(TOKEN).await;
    let url = hub.url("/repos/acme/widgets/issues/1/comments");
    let comment = Some(r#"{"body":"hi"}"#);

    let no_agent = send(
        "POST",
        &url,
        &[("authorization", "Bearer forge-standin-token")],
        comment,
    )
    .await;
    assert_eq!(no_agent.status, 403);
    assert!(
        no_agent
            .body
            .as_str()
            .unwrap_or_default()
            .contains("User-Agent header"),
        "{}",
        no_agent.body
    );

    let agent = ("user-agent", "mecha-e2e");
    let json = ("content-type", "application/json");
    let wrong = send(
        "POST",
        &url,
        &[("authorization", "Bearer not-the-token"), agent, json],
        comment,
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.body,
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
    );
    let anonymous = send("POST", &url, &[agent, json], comment).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.body["message"], "Requires authentication");

    // `token <token>` is as good as `Bearer <token>`.
    let legacy = format!("token {TOKEN}");
    let created = send(
        "POST",
        &url,
        &[("authorization", &legacy), agent, json],
        comment,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);

    let unknown = github(&hub, "GET", "/repos/acme/widgets/pulls/1/reviews", None).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["message"], "Not Found");
    assert_eq!(unknown.body["status"], "404");
    let wrong_method = github(&hub, "PATCH", "/repos/acme/widgets/issues/1/comments", None).await;
    assert_eq!(wrong_method.status, 404);

    let not_json = send(
        "POST",
        &url,
        &[
            ("authorization", &legacy),
            agent,
            ("content-type", "text/plain"),
        ],
        comment,
    )
    .await;
    assert_eq!(not_json.status, 415, "{}", not_json.body);
    let broken = send(
        "POST",
        &url,
        &[("authorization", &legacy), agent, json],
        Some("{"),
    )
    .await;
    assert_eq!(
        (broken.status, broken.body["message"].as_str()),
        (400, Some("Problems parsing JSON"))
    );

    hub.only_repos(&["acme/widgets"]);
    let elsewhere = github(&hub, "GET", "/repos/acme/gadgets/issues/1/comments", None).await;
    assert_eq!(elsewhere.status, 404);
    // Owner and repository names are case-insensitive.
    let listed = github(&hub, "GET", "/repos/ACME/Widgets/issues/1/comments", None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(listed.header("x-ratelimit-limit"), "5000");
    assert_eq!(listed.header("x-ratelimit-resource"), "core");
    assert!(!listed.header("x-github-request-id").is_empty());
    let remaining: u64 = listed
        .header("x-ratelimit-remaining")
        .parse()
        .expect("number");
    let used: u64 = listed.header("x-ratelimit-used").parse().expect("number");
    assert_eq!(remaining + used, 5000);
    assert!(used >= 2, "authenticated requests count: {used}");
    assert!(listed.header("x-ratelimit-reset").parse::<u64>().is_ok());

    let requests = hub.requests();
    assert_eq!(requests.len(), 10);
    let first = &requests[0];
    assert_eq!((first.method.as_str(), first.status), ("POST", Some(403)));
    assert_eq!(first.path, "/repos/acme/widgets/issues/1/comments");
    assert_eq!(first.body, json!({"body": "hi"}));
    assert_eq!(first.header("User-Agent"), None);
    assert_eq!(
        requests[9].headers.get("accept").map(String::as_str),
        Some("application/vnd.github+json")
    );
    assert_eq!(requests[9].query, "");
}

#[tokio::test]
async fn github_comments_are_validated_and_paginated_with_link_headers() {
    let hub = GitHub::start(TOKEN).await;
    for n in 1..=3 {
        hub.seed_comment("acme", "widgets", 7, &format!("seeded {n}"));
    }
    hub.seed_comment_as("acme", "widgets", 7, "mecha-bot", "an earlier review");

    let created = github(
        &hub,
        "POST",
        "/repos/acme/widgets/issues/7/comments",
        Some(json!({"body": "LGTM"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_u64().expect("id");
    assert_eq!(
        created.body["html_url"],
        format!("https://github.com/acme/widgets/issues/7#issuecomment-{id}")
    );
    assert_eq!(created.body["user"]["login"], "mecha-bot");
    assert_eq!(created.body["body"], "LGTM");
    assert!(
        created
            .header("location")
            .ends_with(&format!("/issues/comments/{id}"))
    );

    let blank = github(
        &hub,
        "POST",
        "/repos/acme/widgets/issues/7/comments",
        Some(json!({"body": ""})),
    )
    .await;
    assert_eq!(blank.status, 422);
    assert_eq!(blank.body["message"], "Validation Failed");
    assert_eq!(
        blank.body["errors"],
        json!([{"resource": "IssueComment", "code": "missing_field", "field": "body"}])
    );
    let missing = github(
        &hub,
        "POST",
        "/repos/acme/widgets/issues/7/comments",
        Some(json!({})),
    )
    .await;
    assert_eq!(missing.status, 422);
    let too_long = github(
        &hub,
        "POST",
        "/repos/acme/widgets/issues/7/comments",
        Some(json!({"body": "x".repeat(65_537)})),
    )
    .await;
    assert_eq!(too_long.status, 422);

    let first = github(
        &hub,
        "GET",
        "/repos/acme/widgets/issues/7/comments?per_page=2",
        None,
    )
    .await;
    assert_eq!(first.status, 200);
    let bodies = |answer: &Answer| -> Vec<String> {
        answer
            .body
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["body"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(bodies(&first), ["seeded 1", "seeded 2"]);
    let repo_id = hub.repo_id("acme", "widgets");
    let link = first.header("link").to_owned();
    let next = format!(
        "<{}/repositories/{repo_id}/issues/7/comments?per_page=2&page=2>; rel=\"next\"",
        hub.base
    );
    assert!(link.contains(&next), "{link}");
    assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    assert!(!link.contains("rel=\"prev\""), "{link}");

    // The next link (a /repositories/{id} URL, as GitHub gives) works as it is.
    let next_url = link
        .split(';')
        .next()
        .expect("url")
        .trim_matches(['<', '>', ' ']);
    let auth = format!("Bearer {TOKEN}");
    let second = send(
        "GET",
        next_url,
        &[("authorization", &auth), ("user-agent", "mecha-e2e")],
        None,
    )
    .await;
    assert_eq!(second.status, 200);
    assert_eq!(bodies(&second), ["seeded 3", "an earlier review"]);
    assert!(second.header("link").contains("rel=\"prev\""));
    assert!(second.header("link").contains("rel=\"first\""));
    let last = github(
        &hub,
        "GET",
        "/repos/acme/widgets/issues/7/comments?per_page=2&page=3",
        None,
    )
    .await;
    assert_eq!(bodies(&last), ["LGTM"]);
    assert!(!last.header("link").contains("rel=\"next\""));
    let all = github(
        &hub,
        "GET",
        "/repos/acme/widgets/issues/7/comments?per_page=500",
        None,
    )
    .await;
    assert_eq!(all.body.as_array().map(Vec::len), Some(5));
    assert_eq!(all.header("link"), "", "one page: no Link");
    assert_eq!(all.body[0]["user"]["login"], "octocat");
    assert_eq!(all.body[3]["user"]["login"], "mecha-bot");

    assert_eq!(
        hub.comments("acme", "widgets", 7),
        [
            "seeded 1",
            "seeded 2",
            "seeded 3",
            "an earlier review",
            "LGTM"
        ]
    );
    assert!(hub.comments("acme", "widgets", 8).is_empty());
}

#[tokio::test]
async fn github_labels_are_added_and_removed_with_404_for_an_absent_one() {
    let hub = GitHub::start(TOKEN).await;
    hub.seed_label("acme", "widgets", 3, "bug");
    let path = "/repos/acme/widgets/issues/3/labels";

    let added = github(
        &hub,
        "POST",
        path,
        Some(json!({"labels": ["needs review", "BUG"]})),
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let names = |answer: &Answer| -> Vec<String> {
        answer
            .body
            .as_array()
            .expect("array")
            .iter()
            .map(|l| l["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        names(&added),
        ["bug", "needs review"],
        "case-insensitive, sorted, no duplicate"
    );
    assert_eq!(added.body[1]["color"], "ededed");
    assert_eq!(added.body[1]["default"], false);
    assert!(added.body[1]["id"].is_u64());

    let bare = github(&hub, "POST", path, Some(json!(["area/api"]))).await;
    assert_eq!(names(&bare), ["area/api", "bug", "needs review"]);

    let removed = github(&hub, "DELETE", &format!("{path}/needs%20review"), None).await;
    assert_eq!(removed.status, 200);
    assert_eq!(names(&removed), ["area/api", "bug"]);
    let slash = github(&hub, "DELETE", &format!("{path}/area%2Fapi"), None).await;
    assert_eq!(names(&slash), ["bug"]);
    let absent = github(&hub, "DELETE", &format!("{path}/needs%20review"), None).await;
    assert_eq!(absent.status, 404);
    assert_eq!(absent.body["message"], "Label does not exist");
    assert!(
        absent.body["documentation_url"]
            .as_str()
            .unwrap_or_default()
            .starts_with("https://docs.github.com/")
    );

    for bad in [
        json!({"labels": "bug"}),
        json!({"names": ["bug"]}),
        json!({"labels": [7]}),
    ] {
        let refused = github(&hub, "POST", path, Some(bad.clone())).await;
        assert_eq!(refused.status, 422, "{bad}: {}", refused.body);
    }
    let listed = github(&hub, "GET", path, None).await;
    assert_eq!(names(&listed), ["bug"]);
    assert_eq!(hub.labels("acme", "widgets", 3), ["bug"]);
}

#[tokio::test]
async fn github_statuses_are_validated() {
    let hub = GitHub::start(TOKEN).await;
    let path = format!("/repos/acme/widgets/statuses/{SHA}");
    let created = github(
        &hub,
        "POST",
        &path,
        Some(json!({"state": "success", "description": "review done", "context": "mecha"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["state"], "success");
    assert_eq!(created.body["context"], "mecha");
    assert_eq!(created.body["creator"]["login"], "mecha-bot");

    let bad_state = github(&hub, "POST", &path, Some(json!({"state": "passed"}))).await;
    assert_eq!(bad_state.status, 422);
    assert!(
        bad_state.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("is not one of")
    );
    let long = github(
        &hub,
        "POST",
        &path,
        Some(json!({"state": "failure", "description": "d".repeat(141)})),
    )
    .await;
    assert_eq!(long.status, 422);
    let short_sha = github(
        &hub,
        "POST",
        "/repos/acme/widgets/statuses/6dcb09b",
        Some(json!({"state": "pending"})),
    )
    .await;
    assert_eq!(
        (short_sha.status, short_sha.body["message"].as_str()),
        (422, Some("No commit found for SHA: 6dcb09b"))
    );
    let defaulted = github(&hub, "POST", &path, Some(json!({"state": "pending"}))).await;
    assert_eq!(defaulted.body["context"], "default");

    let statuses = hub.statuses("acme", "widgets", &SHA.to_uppercase());
    let states: Vec<&str> = statuses
        .iter()
        .map(|s| s["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["success", "pending"]);
}

#[tokio::test]
async fn github_faults_are_served_in_queue_order() {
    let hub = GitHub::start(TOKEN).await;
    let comments = "/repos/acme/widgets/issues/1/comments";
    let post = Some(json!({"body": "retry me"}));
    hub.fail_next("POST", "/comments", Fault::Status(502), 1);
    hub.fail_next("POST", "/comments", Fault::RateLimited, 1);
    hub.fail_next("post", "/comments", Fault::SecondaryRateLimit, 1);
    hub.fail_next("GET", "/comments", Fault::Status(503), 1);

    let bad_gateway = github(&hub, "POST", comments, post.clone()).await;
    assert_eq!(bad_gateway.status, 502);
    assert_eq!(bad_gateway.body["message"], "Server Error");
    assert_eq!(bad_gateway.header("x-ratelimit-limit"), "5000");
    let limited = github(&hub, "POST", comments, post.clone()).await;
    assert_eq!(limited.status, 403);
    assert_eq!(limited.header("x-ratelimit-remaining"), "0");
    assert!(limited.header("x-ratelimit-reset").parse::<u64>().is_ok());
    assert!(
        limited.body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("API rate limit exceeded for")
    );
    let secondary = github(&hub, "POST", comments, post.clone()).await;
    assert_eq!(secondary.status, 429);
    assert_eq!(secondary.header("retry-after"), "1");
    assert!(
        secondary.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("secondary rate limit")
    );
    assert_eq!(
        github(&hub, "POST", comments, post.clone()).await.status,
        201
    );

    assert_eq!(github(&hub, "GET", comments, None).await.status, 503);
    assert_eq!(github(&hub, "GET", comments, None).await.status, 200);

    hub.fail_next(
        "*",
        "/statuses/",
        Fault::Hang(Duration::from_millis(300)),
        1,
    );
    hub.fail_next("*", "/labels", Fault::Status(422), 1);
    hub.fail_next("*", "/labels", Fault::Status(404), 1);
    hub.fail_next("*", "/labels", Fault::Status(401), 1);
    let started = Instant::now();
    let slow = github(
        &hub,
        "POST",
        &format!("/repos/acme/widgets/statuses/{SHA}"),
        Some(json!({"state": "pending"})),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(slow.status, 201, "a hang answers normally afterwards");
    let labels = "/repos/acme/widgets/issues/1/labels";
    let unprocessable = github(&hub, "POST", labels, Some(json!({"labels": ["x"]}))).await;
    assert_eq!(
        (unprocessable.status, unprocessable.body["message"].as_str()),
        (422, Some("Validation Failed"))
    );
    assert_eq!(
        github(&hub, "GET", labels, None).await.body["message"],
        "Not Found"
    );
    assert_eq!(
        github(&hub, "GET", labels, None).await.body["message"],
        "Bad credentials"
    );
    assert!(
        hub.labels("acme", "widgets", 1).is_empty(),
        "a faulted write changes nothing"
    );

    let posts = hub.wait_requests("POST", "/comments", 4).await;
    let statuses: Vec<Option<u16>> = posts.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(502), Some(403), Some(429), Some(201)]);
    assert_eq!(hub.comments("acme", "widgets", 1), ["retry me"]);
}

#[tokio::test]
async fn gitlab_notes_on_encoded_project_paths_with_pagination_headers() {
    let lab = GitLab::start(TOKEN).await;
    let notes = "/projects/group%2Fproject/merge_requests/7/notes";

    let anonymous = send(
        "POST",
        &lab.url(notes),
        &[("content-type", "application/json")],
        Some(r#"{"body":"x"}"#),
    )
    .await;
    assert_eq!(
        (anonymous.status, anonymous.body.clone()),
        (401, json!({"message": "401 Unauthorized"}))
    );
    let wrong = send("GET", &lab.url(notes), &[("private-token", "nope")], None).await;
    assert_eq!(wrong.status, 401);

    let created = gitlab(&lab, "POST", notes, Some(json!({"body": "LGTM"}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["noteable_type"], "MergeRequest");
    assert_eq!(created.body["noteable_iid"], 7);
    assert_eq!(created.body["author"]["username"], "mecha-bot");
    assert_eq!(created.body["body"], "LGTM");
    assert_eq!(created.body["project_id"], lab.project_id("group/project"));

    // A numeric id and a bearer token work too; issue notes are a separate thread.
    let id = lab.project_id("group/project");
    let bearer = format!("Bearer {TOKEN}");
    let on_issue = send(
        "POST",
        &lab.url(&format!("/projects/{id}/issues/7/notes")),
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
        ],
        Some(r#"{"body":"on the issue"}"#),
    )
    .await;
    assert_eq!(on_issue.status, 201, "{}", on_issue.body);
    assert_eq!(on_issue.body["noteable_type"], "Issue");
    let form = send(
        "POST",
        &lab.url("/projects/a%2Fb%2Fc/issues/1/notes"),
        &[
            ("private-token", TOKEN),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some("body=nested+groups%21"),
    )
    .await;
    assert_eq!(form.status, 201, "{}", form.body);
    assert_eq!(lab.notes("a/b/c", Noteable::Issue, 1), ["nested groups!"]);

    let unencoded = gitlab(
        &lab,
        "POST",
        "/projects/group/project/merge_requests/7/notes",
        Some(json!({"body": "x"})),
    )
    .await;
    assert_eq!(
        (unencoded.status, unencoded.body.clone()),
        (404, json!({"error": "404 Not Found"}))
    );
    let blank = gitlab(&lab, "POST", notes, Some(json!({"body": "  "}))).await;
    assert_eq!(blank.status, 400);
    assert_eq!(
        blank.body["message"],
        "400 Bad request - Note can't be blank"
    );
    let missing = gitlab(&lab, "POST", notes, Some(json!({}))).await;
    assert_eq!(
        (missing.status, missing.body.clone()),
        (400, json!({"error": "body is missing"}))
    );
    let text = send(
        "POST",
        &lab.url(notes),
        &[("private-token", TOKEN), ("content-type", "text/plain")],
        Some("hi"),
    )
    .await;
    assert_eq!(text.status, 415);
    let bad_iid = gitlab(
        &lab,
        "GET",
        "/projects/group%2Fproject/merge_requests/seven/notes",
        None,
    )
    .await;
    assert_eq!(
        (bad_iid.status, bad_iid.body.clone()),
        (400, json!({"error": "noteable_id is invalid"}))
    );
    let wrong_method = gitlab(&lab, "DELETE", notes, None).await;
    assert_eq!(wrong_method.status, 405);
    let unknown_id = gitlab(&lab, "GET", "/projects/999999/merge_requests/7/notes", None).await;
    assert_eq!(
        (unknown_id.status, unknown_id.body.clone()),
        (404, json!({"message": "404 Project Not Found"}))
    );

    for n in 2..=4 {
        lab.seed_note(
            "group/project",
            Noteable::MergeRequest,
            7,
            &format!("note {n}"),
        );
    }
    lab.seed_note_as(
        "group/project",
        Noteable::MergeRequest,
        7,
        "mecha-bot",
        "note 5",
    );
    let first = gitlab(&lab, "GET", &format!("{notes}?per_page=2"), None).await;
    assert_eq!(first.status, 200);
    let bodies = |answer: &Answer| -> Vec<String> {
        answer
            .body
            .as_array()
            .expect("array")
            .iter()
            .map(|n| n["body"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        bodies(&first),
        ["note 5", "note 4"],
        "newest first by default"
    );
    assert_eq!(
        (
            first.header("x-total"),
            first.header("x-total-pages"),
            first.header("x-page"),
            first.header("x-per-page")
        ),
        ("5", "3", "1", "2")
    );
    assert_eq!(
        (first.header("x-next-page"), first.header("x-prev-page")),
        ("2", "")
    );
    assert!(
        first
            .header("link")
            .contains("per_page=2&page=2>; rel=\"next\""),
        "{}",
        first.header("link")
    );
    let last = gitlab(&lab, "GET", &format!("{notes}?per_page=2&page=3"), None).await;
    assert_eq!(bodies(&last), ["LGTM"]);
    assert_eq!(
        (last.header("x-next-page"), last.header("x-prev-page")),
        ("", "2")
    );
    let ascending = gitlab(&lab, "GET", &format!("{notes}?sort=asc"), None).await;
    assert_eq!(
        bodies(&ascending),
        ["LGTM", "note 2", "note 3", "note 4", "note 5"]
    );
    assert_eq!(ascending.header("x-per-page"), "20");
    let invalid = gitlab(&lab, "GET", &format!("{notes}?per_page=lots"), None).await;
    assert_eq!(
        (invalid.status, invalid.body.clone()),
        (400, json!({"error": "per_page is invalid"}))
    );
    assert_eq!(
        lab.notes("group/project", Noteable::MergeRequest, 7),
        ["LGTM", "note 2", "note 3", "note 4", "note 5"]
    );
    assert_eq!(
        lab.notes("group/project", Noteable::Issue, 7),
        ["on the issue"]
    );

    lab.only_projects(&["group/project"]);
    let hidden = gitlab(
        &lab,
        "GET",
        "/projects/other%2Fproject/issues/1/notes",
        None,
    )
    .await;
    assert_eq!(hidden.body, json!({"message": "404 Project Not Found"}));
    let project = gitlab(&lab, "GET", "/projects/GROUP%2fPROJECT", None).await;
    assert_eq!(project.body["path_with_namespace"], "group/project");
}

#[tokio::test]
async fn gitlab_labels_and_statuses_follow_gitlab_rules() {
    let lab = GitLab::start(TOKEN).await;
    lab.seed_label("group/project", Noteable::MergeRequest, 4, "stale");
    let mr = "/projects/group%2Fproject/merge_requests/4";

    let updated = gitlab(
        &lab,
        "PUT",
        mr,
        Some(json!({"add_labels": "needs review, bug", "remove_labels": "stale,absent"})),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["labels"], json!(["bug", "needs review"]));
    assert_eq!(updated.body["iid"], 4);
    let nothing = gitlab(&lab, "PUT", mr, Some(json!({"bogus": 1}))).await;
    assert_eq!(nothing.status, 400);
    assert!(
        nothing.body["error"]
            .as_str()
            .unwrap_or_default()
            .ends_with("at least one parameter must be provided")
    );
    let removed = gitlab(&lab, "PUT", mr, Some(json!({"remove_labels": "bug"}))).await;
    assert_eq!(removed.body["labels"], json!(["needs review"]));
    let fetched = gitlab(&lab, "GET", mr, None).await;
    assert_eq!(fetched.body["labels"], json!(["needs review"]));
    let issue = gitlab(
        &lab,
        "PUT",
        "/projects/group%2Fproject/issues/4",
        Some(json!({"add_labels": "bug"})),
    )
    .await;
    assert_eq!(issue.body["labels"], json!(["bug"]));
    assert_eq!(
        lab.labels("group/project", Noteable::MergeRequest, 4),
        ["needs review"]
    );
    assert_eq!(lab.labels("group/project", Noteable::Issue, 4), ["bug"]);

    let path = format!("/projects/group%2Fproject/statuses/{SHA}");
    let pending = gitlab(
        &lab,
        "POST",
        &path,
        Some(json!({"state": "pending", "name": "mecha"})),
    )
    .await;
    assert_eq!(pending.status, 201, "{}", pending.body);
    assert_eq!(
        (
            pending.body["status"].as_str(),
            pending.body["name"].as_str()
        ),
        (Some("pending"), Some("mecha"))
    );
    let again = gitlab(
        &lab,
        "POST",
        &path,
        Some(json!({"state": "pending", "name": "mecha"})),
    )
    .await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.body["message"],
        "Cannot transition status via :enqueue from :pending (Reason(s): Status cannot transition via \"enqueue\")"
    );
    let done = gitlab(
        &lab,
        "POST",
        &path,
        Some(json!({"state": "success", "name": "mecha", "description": "ok"})),
    )
    .await;
    assert_eq!(done.status, 201);
    assert_eq!(
        done.body["id"], pending.body["id"],
        "the open status moves on"
    );
    let invalid = gitlab(&lab, "POST", &path, Some(json!({"state": "error"}))).await;
    assert_eq!(
        (invalid.status, invalid.body.clone()),
        (400, json!({"error": "state does not have a valid value"}))
    );
    let missing = gitlab(&lab, "POST", &path, Some(json!({"name": "mecha"}))).await;
    assert_eq!(missing.body, json!({"error": "state is missing"}));
    let bad_sha = gitlab(
        &lab,
        "POST",
        "/projects/group%2Fproject/statuses/main",
        Some(json!({"state": "failed"})),
    )
    .await;
    assert_eq!(
        (bad_sha.status, bad_sha.body.clone()),
        (404, json!({"message": "404 Commit Not Found"}))
    );
    let statuses = lab.statuses("group/project", SHA);
    assert_eq!(statuses.len(), 1);
    assert_eq!(
        (
            statuses[0]["status"].as_str(),
            statuses[0]["description"].as_str()
        ),
        (Some("success"), Some("ok"))
    );
}

#[tokio::test]
async fn gitlab_faults_are_served_in_queue_order() {
    let lab = GitLab::start(TOKEN).await;
    let notes = "/projects/group%2Fproject/merge_requests/1/notes";
    let post = Some(json!({"body": "retry me"}));
    lab.fail_next("POST", "/notes", Fault::RateLimited, 1);
    lab.fail_next("POST", "/notes", Fault::Status(502), 2);
    lab.fail_next("POST", "/notes", Fault::SecondaryRateLimit, 1);
    lab.fail_next("POST", "/notes", Fault::Hang(Duration::from_millis(200)), 1);
    lab.fail_next("*", "/statuses/", Fault::Status(404), 1);

    let limited = gitlab(&lab, "POST", notes, post.clone()).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), "1");
    assert_eq!(limited.header("ratelimit-remaining"), "0");
    assert!(!limited.header("ratelimit-resettime").is_empty());
    assert_eq!(limited.body, json!("Retry later\n"));
    for _ in 0..2 {
        let bad_gateway = gitlab(&lab, "POST", notes, post.clone()).await;
        assert_eq!(
            (bad_gateway.status, bad_gateway.body.clone()),
            (502, json!({"message": "502 Bad Gateway"}))
        );
    }
    let throttled = gitlab(&lab, "POST", notes, post.clone()).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), "1");
    assert!(throttled.body["message"]["error"].is_string());
    let started = Instant::now();
    let created = gitlab(&lab, "POST", notes, post.clone()).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(created.status, 201);
    assert_eq!(created.header("content-type"), "application/json");
    assert_eq!(created.header("ratelimit-limit"), "2000");
    assert!(!created.header("x-request-id").is_empty());
    let gone = gitlab(
        &lab,
        "POST",
        &format!("/projects/group%2Fproject/statuses/{SHA}"),
        Some(json!({"state": "running"})),
    )
    .await;
    assert_eq!(gone.body, json!({"message": "404 Not found"}));

    let posts = lab.wait_requests("POST", "/notes", 5).await;
    let statuses: Vec<Option<u16>> = posts.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(429), Some(502), Some(502), Some(429), Some(201)]
    );
    assert_eq!(
        lab.notes("group/project", Noteable::MergeRequest, 1),
        ["retry me"]
    );
    let all = lab.requests();
    assert_eq!(all.len(), 6);
    assert_eq!(
        all[0].path,
        "/api/v4/projects/group%2Fproject/merge_requests/1/notes"
    );
    assert_eq!(all[0].header("private-token"), Some(TOKEN));
}
