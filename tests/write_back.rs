//! From a worker's result to the provider: the worker's policies (the bundled `rules` plugin,
//! chained with others), the decision stored with the task and audited, and the allowed actions
//! written back by the responder plugins to stand-ins for the GitHub and GitLab APIs.

use std::time::Duration;

use crate::support::daemon::{
    Daemon, GITHUB_SECRET, Home, get_json, send_github, status_and_json, wait_write_back,
};
use crate::support::fixtures;
use crate::support::forge::{Fault, GitHub, GitLab, Noteable};
use crate::support::plugins;
use crate::support::worker::{Answer, TestWorker};

/// Retries in milliseconds, so the tests do not wait for production delays.
pub(crate) const FAST: &str =
    "dispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n";

/// A result with every action, as an agent might propose it.
pub(crate) fn full_result() -> String {
    serde_json::json!({
        "output": "reviewed",
        "comment": { "body": "Looks good overall, but the error handling in the parser needs work." },
        "labels": { "add": ["bug", "WontFix"], "remove": ["triage"] },
        "status": { "state": "success", "description": "review passed" },
        "commit": { "message": "Fix typo", "diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-teh\n+the\n" },
        "metadata": { "model": "test", "input_tokens": 12 }
    })
    .to_string()
}

/// Adds and starts a live worker answering every task with `result`, under `policy` (YAML
/// lines indented for the worker's top level, or empty).
pub(crate) async fn worker_with_policy(
    home: &Home,
    name: &str,
    result: String,
    policy: &str,
) -> TestWorker {
    let worker = TestWorker::scripted(Vec::new(), Answer::Ok(result)).await;
    let yaml = format!(
        "name: {name}\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: review\n{policy}",
        worker.endpoint
    );
    home.add_worker(&yaml);
    worker
}

fn reasons(decision: &serde_json::Value, side: &str) -> Vec<String> {
    decision[side]
        .as_array()
        .map(|verdicts| {
            verdicts
                .iter()
                .filter_map(|verdict| verdict["reason"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_policy_filters_a_result_and_its_decision_is_stored_and_audited() {
    let home = Home::new(FAST);
    let _worker = worker_with_policy(
        &home,
        "reviewer",
        full_result(),
        "policy:\n  comment: {allow: true, max_length: 40}\n  labels: {allow: true, blocked: [wontfix]}\n  commit: {allow: false}\n  metadata: {allow: false}\n",
    )
    .await;
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&daemon, "pull_request", "policy-1", &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id");

    let task = wait_write_back(&daemon, event_id, "done").await;
    let decision = &task["decision"];
    assert_eq!(decision["policies"], serde_json::json!(["rules"]));
    assert_eq!(
        reasons(decision, "allowed"),
        ["comment (truncated)", "labels", "status: no rule"],
        "{decision}"
    );
    assert_eq!(
        reasons(decision, "denied"),
        [
            "label add \"WontFix\": blocked by policy",
            "commit: blocked by policy",
            "metadata: redacted by policy"
        ],
        "{decision}"
    );
    let (_, logs) = get_json(
        &daemon,
        &format!("/logs?trace={event_id}&action=policy.applied"),
    )
    .await;
    let records = logs.as_array().expect("records");
    assert_eq!(records.len(), 1, "{logs}");
    assert_eq!(records[0]["outcome"], "deny");
    assert_eq!(records[0]["detail"]["denied"], decision["denied"]);
    // Nothing to write back to (no GitHub token configured), so the event is complete.
    let (_, event) = get_json(&daemon, &format!("/event/{event_id}")).await;
    assert_eq!(event["state"], "completed", "{event}");
}

/// A misspelt policy plugin is refused when the worker is added; one removed after that denies
/// every action at write-back and says why (a policy fails closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_naming_a_missing_policy_is_refused_at_add_and_denies_everything_at_run() {
    let home = Home::new(FAST);
    let typo = home.path().join("typo.yaml");
    std::fs::write(
        &typo,
        "name: typo\nendpoint: http://127.0.0.1:9/\npolicy:\n  - plugin: rulez\n",
    )
    .expect("written");
    let (ok, _, stderr) = home.mecha(&["worker", "add", typo.to_str().expect("utf-8")]);
    assert!(!ok, "a misspelt policy was accepted");
    assert!(
        stderr.contains("policy plugin rulez is not installed (policy plugins here: rules)"),
        "{stderr}"
    );
    let shape = home.path().join("shape.yaml");
    std::fs::write(
        &shape,
        "name: shape\nendpoint: http://127.0.0.1:9/\npolicy:\n  - plugin: rules\n    conifg: {}\n",
    )
    .expect("written");
    let (ok, _, stderr) = home.mecha(&["worker", "add", shape.to_str().expect("utf-8")]);
    assert!(!ok, "a malformed policy was accepted");
    assert!(stderr.contains("unknown key `conifg`"), "{stderr}");

    let guard = plugins::path("greedy");
    let (ok, _, stderr) =
        home.mecha(&["plugin", "install", "--yes", guard.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let _worker = worker_with_policy(
        &home,
        "guarded",
        full_result(),
        "policy:\n  - plugin: rules\n    config: {}\n  - plugin: greedy\n",
    )
    .await;
    let (ok, _, stderr) = home.mecha(&["plugin", "rm", "greedy"]);
    assert!(ok, "{stderr}");
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&daemon, "pull_request", "policy-2", &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id");
    let task = wait_write_back(&daemon, event_id, "done").await;
    let decision = &task["decision"];
    assert_eq!(decision["policies"], serde_json::json!(["rules", "greedy"]));
    assert!(reasons(decision, "allowed").is_empty(), "{decision}");
    let denied = reasons(decision, "denied");
    assert_eq!(denied.len(), 5, "every action is denied: {denied:?}");
    assert!(
        denied
            .iter()
            .all(|reason| reason.contains("policy plugin greedy is not installed")),
        "{denied:?}"
    );
}

/// The GitHub token the tests configure: a canary that must never show anywhere.
pub(crate) const GITHUB_TOKEN: &str = "ghp_canaryTokenNeverShown0123456789abcd";

/// A home whose daemon writes GitHub results back to `github` (the stand-in) with
/// [`GITHUB_TOKEN`].
pub(crate) fn github_home(github: &GitHub) -> Home {
    github_home_with(github, "")
}

/// [`github_home`] with more of `config.yml` (top-level keys, one per line).
pub(crate) fn github_home_with(github: &GitHub, more: &str) -> Home {
    let home = Home::new(&format!(
        "{FAST}responders:\n  github:\n    api_url: {}\n{more}",
        github.base
    ));
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\n  token: {GITHUB_TOKEN}\n"
    ));
    home
}

/// The `pull_request.opened` fixture (Codertocat/Hello-World#2), its body marked with
/// `delivery`: the same signed body again would be answered as a replay.
pub(crate) fn pull_request_body(delivery: &str) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(&fixtures::read(
        "github",
        "pull_request__opened.payload.json",
    ))
    .expect("json");
    json["test_delivery"] = delivery.into();
    serde_json::to_vec(&json).expect("encoded")
}

/// Sends [`pull_request_body`] as `delivery`; the stored event's id.
pub(crate) async fn open_pull_request(daemon: &Daemon, delivery: &str) -> String {
    let body = pull_request_body(delivery);
    let (status, event) = send_github(daemon, "pull_request", delivery, &body).await;
    assert_eq!(status, 202, "{event}");
    event["id"].as_str().expect("id").to_owned()
}

/// Fails the test if [`GITHUB_TOKEN`] shows in the daemon's log, audit trail or API answers.
async fn assert_token_never_shown(daemon: &Daemon, event_id: &str) {
    let (_, logs) = get_json(daemon, &format!("/logs?trace={event_id}")).await;
    let (_, tasks) = get_json(daemon, &format!("/tasks?event={event_id}")).await;
    let (_, workers) = get_json(daemon, "/workers").await;
    let (_, event) = get_json(daemon, &format!("/event/{event_id}")).await;
    for (what, text) in [
        ("log", daemon.log()),
        ("audit", logs.to_string()),
        ("tasks", tasks.to_string()),
        ("workers", workers.to_string()),
        ("event", event.to_string()),
    ] {
        assert!(
            !text.contains(GITHUB_TOKEN),
            "the token shows in the {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_actions_reach_github_with_the_token_added_by_the_host() {
    let github = GitHub::start(GITHUB_TOKEN).await;
    github.seed_label("Codertocat", "Hello-World", 2, "triage");
    let home = github_home(&github);
    let _worker = worker_with_policy(
        &home,
        "reviewer",
        full_result(),
        "policy:\n  labels: {allow: true, blocked: [wontfix]}\n  metadata: {allow: false}\n",
    )
    .await;
    let daemon = Daemon::start(&home);
    let event_id = open_pull_request(&daemon, "write-back-1").await;
    let task = wait_write_back(&daemon, &event_id, "done").await;

    let comments = github.comments("Codertocat", "Hello-World", 2);
    assert_eq!(
        comments.len(),
        2,
        "the comment and the suggested commit: {comments:?}"
    );
    assert!(
        comments[0].starts_with("Looks good overall")
            && comments[0].contains(&format!(
                "<!-- mecha:{}:comment -->",
                task["id"].as_str().expect("id")
            )),
        "{comments:?}"
    );
    assert!(
        comments[1].starts_with("**Suggested commit:** Fix typo\n\n```diff\n"),
        "{comments:?}"
    );
    assert_eq!(github.labels("Codertocat", "Hello-World", 2), ["bug"]);
    let sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    let statuses = github.statuses("Codertocat", "Hello-World", sha);
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0]["state"], "success");
    assert_eq!(statuses[0]["context"], "mecha");

    // Every request carried the host's credential and GitHub's headers; none was refused.
    let requests = github.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {GITHUB_TOKEN}").as_str()),
            "{} {}",
            request.method,
            request.path
        );
        assert!(request.header("user-agent").is_some());
        assert!(
            request
                .status
                .is_some_and(|status| status < 400 || request.method == "DELETE"),
            "{} {} → {:?}",
            request.method,
            request.path,
            request.status
        );
    }
    let (_, done) = get_json(
        &daemon,
        &format!("/logs?trace={event_id}&action=writeback.done"),
    )
    .await;
    assert_eq!(done.as_array().map(Vec::len), Some(1), "{done}");
    let (_, event) = get_json(&daemon, &format!("/event/{event_id}")).await;
    assert_eq!(event["state"], "completed");
    assert_token_never_shown(&daemon, &event_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_errors_are_retried_and_a_dead_letter_can_be_retried_by_hand() {
    let github = GitHub::start(GITHUB_TOKEN).await;
    let home = github_home(&github);
    let result = serde_json::json!({ "comment": { "body": "hello" } }).to_string();
    let _worker = worker_with_policy(&home, "commenter", result, "").await;
    // A 502, then a rate limit: both retried, and the comment is posted once.
    github.fail_next("POST", "/comments", Fault::Status(502), 1);
    github.fail_next("POST", "/comments", Fault::RateLimited, 1);
    let daemon = Daemon::start(&home);
    let event_id = open_pull_request(&daemon, "write-back-2").await;
    wait_write_back(&daemon, &event_id, "done").await;
    assert_eq!(github.comments("Codertocat", "Hello-World", 2).len(), 1);
    let (_, retries) = get_json(
        &daemon,
        &format!("/logs?trace={event_id}&action=writeback.failed"),
    )
    .await;
    let outcomes: Vec<&str> = retries
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|record| record["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["retry", "retry"], "{retries}");

    // A 404 cannot be fixed by retrying: dead-lettered at once, the event says so.
    github.fail_next("POST", "/comments", Fault::Status(404), 1);
    let event_id = open_pull_request(&daemon, "write-back-3").await;
    let task = wait_write_back(&daemon, &event_id, "failed").await;
    assert!(
        task["write_back_error"]
            .as_str()
            .is_some_and(|error| error.contains("404")),
        "{task}"
    );
    let (_, event) = get_json(&daemon, &format!("/event/{event_id}")).await;
    assert_eq!(event["state"], "write_back_failed");
    // Listed among the write-backs that gave up, the others not.
    let (_, given_up) = get_json(&daemon, "/tasks?write_back=failed").await;
    let given_up: Vec<&str> = given_up["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|task| task["id"].as_str())
        .collect();
    assert_eq!(given_up, [task["id"].as_str().expect("id")]);

    // The operator retries it from the CLI; the daemon writes it back and the event completes.
    let id = task["id"].as_str().expect("id");
    let (ok, stdout, stderr) = home.mecha(&["tasks", "retry", id]);
    assert!(ok, "{stderr}");
    assert!(!stdout.is_empty());
    wait_write_back(&daemon, &event_id, "done").await;
    for _ in 0..100 {
        let (_, event) = get_json(&daemon, &format!("/event/{event_id}")).await;
        if event["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, event) = get_json(&daemon, &format!("/event/{event_id}")).await;
    assert_eq!(event["state"], "completed");
    assert_eq!(github.comments("Codertocat", "Hello-World", 2).len(), 2);
    assert_token_never_shown(&daemon, &event_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_write_back_never_posts_a_comment_twice() {
    let github = GitHub::start(GITHUB_TOKEN).await;
    let home = github_home(&github);
    let result = serde_json::json!({
        "comment": { "body": "only once" },
        "labels": { "add": ["reviewed"] }
    })
    .to_string();
    let _worker = worker_with_policy(&home, "once", result, "").await;
    // The comment goes through; the labels call then hangs, and the daemon dies meanwhile.
    github.fail_next("POST", "/labels", Fault::Hang(Duration::from_secs(30)), 1);
    let daemon = Daemon::start(&home);
    let event_id = open_pull_request(&daemon, "write-back-4").await;
    for _ in 0..500 {
        if github
            .requests()
            .iter()
            .any(|request| request.method == "POST" && request.path.ends_with("/labels"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(github.comments("Codertocat", "Hello-World", 2).len(), 1);
    daemon.kill();

    let daemon = Daemon::start(&home);
    wait_write_back(&daemon, &event_id, "done").await;
    let comments = github.comments("Codertocat", "Hello-World", 2);
    assert_eq!(
        comments.len(),
        1,
        "the comment is not posted again: {comments:?}"
    );
    assert!(comments[0].starts_with("only once"), "{comments:?}");
    assert_eq!(github.labels("Codertocat", "Hello-World", 2), ["reviewed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_reaches_only_its_granted_api_and_never_gets_the_token() {
    let github = GitHub::start(GITHUB_TOKEN).await;
    let elsewhere = GitHub::start("unused").await;
    let home = Home::new(&format!(
        "{FAST}responders:\n  snoop:\n    api_url: {}\n    sources: [github]\n    settings:\n      elsewhere: {}\n",
        github.base, elsewhere.base
    ));
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\nsnoop:\n  token: {GITHUB_TOKEN}\n"
    ));
    let snoop = plugins::path("snoop");
    let (ok, _, stderr) =
        home.mecha(&["plugin", "install", "--yes", snoop.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let _worker = worker_with_policy(&home, "any", full_result(), "").await;
    let daemon = Daemon::start(&home);
    let event_id = open_pull_request(&daemon, "snoop-1").await;
    wait_write_back(&daemon, &event_id, "done").await;

    let (_, done) = get_json(
        &daemon,
        &format!("/logs?trace={event_id}&action=writeback.done"),
    )
    .await;
    let actions = &done[0]["detail"]["actions"];
    let probe = |name: &str| -> String {
        actions
            .as_array()
            .and_then(|all| all.iter().find(|action| action["action"] == name))
            .and_then(|action| action["reference"].as_str())
            .unwrap_or_else(|| panic!("no {name} probe in {actions}"))
            .to_owned()
    };
    assert!(probe("elsewhere").starts_with("refused"), "{actions}");
    assert!(
        elsewhere.requests().is_empty(),
        "the other host got nothing"
    );
    assert!(probe("own-credentials").starts_with("refused"), "{actions}");
    assert_eq!(probe("granted"), "answered 200", "{actions}");
    assert_eq!(probe("token-setting"), "none");
    assert_eq!(probe("environment"), "0 variables");
    // The one request that went out carried the host's credential, not one the plugin chose.
    let sent = github.requests();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {GITHUB_TOKEN}").as_str())
    );
    assert!(
        daemon
            .log()
            .contains("refused an outgoing request to an origin the plugin was not granted"),
        "the refusal is logged"
    );
    assert_token_never_shown(&daemon, &event_id).await;
}

/// The GitLab token the tests configure.
const GITLAB_TOKEN: &str = "glpat-canaryGitLabToken0123456789";
/// The token GitLab sends with its hooks (`X-Gitlab-Token`).
const GITLAB_HOOK_TOKEN: &str = "gitlab-hook-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_request_results_reach_gitlab_as_a_note_labels_and_a_status() {
    let gitlab = GitLab::start(GITLAB_TOKEN).await;
    let home = Home::new(&format!(
        "{FAST}responders:\n  gitlab:\n    api_url: {}\n",
        gitlab.base
    ));
    home.write_secrets(&format!(
        "gitlab:\n  token: {GITLAB_TOKEN}\n  webhook_secret: {GITLAB_HOOK_TOKEN}\n"
    ));
    let result = serde_json::json!({
        "output": "LGTM once the tests pass",
        "labels": { "add": ["reviewed"] },
        "status": { "state": "failure", "description": "tests fail" }
    })
    .to_string();
    let worker = TestWorker::scripted(Vec::new(), Answer::Ok(result)).await;
    let yaml = format!(
        "name: gl\nendpoint: {}\nevents:\n  - source: gitlab\n    on: [\"merge_request.*\"]\n    prompt: review\n",
        worker.endpoint
    );
    home.add_worker(&yaml);
    let daemon = Daemon::start(&home);
    // GitLab's own merge request hook, through the gitlab source, as merge request 7 or 8.
    let sha = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    let fixture: serde_json::Value =
        serde_json::from_slice(&fixtures::read("gitlab", "merge_request.json")).expect("json");
    let send = |number: u64| {
        let mut payload = fixture.clone();
        payload["object_attributes"]["iid"] = number.into();
        crate::support::daemon::client()
            .post(daemon.url("/webhook/gitlab"))
            .header("X-Gitlab-Event", "Merge Request Hook")
            .header("X-Gitlab-Token", GITLAB_HOOK_TOKEN)
            .header("X-Gitlab-Event-UUID", format!("mr-{number}"))
            .body(payload.to_string())
            .send()
    };
    let (status, event) = status_and_json(send(7).await.expect("sent")).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id").to_owned();
    wait_write_back(&daemon, &event_id, "done").await;

    let notes = gitlab.notes("gitlabhq/gitlab-test", Noteable::MergeRequest, 7);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("LGTM once the tests pass"),
        "output is the note: {notes:?}"
    );
    assert_eq!(
        gitlab.labels("gitlabhq/gitlab-test", Noteable::MergeRequest, 7),
        ["reviewed"]
    );
    let statuses = gitlab.statuses("gitlabhq/gitlab-test", sha);
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(
        statuses[0]["status"]
            .as_str()
            .or(statuses[0]["state"].as_str()),
        Some("failed")
    );
    for request in gitlab.requests() {
        assert_eq!(request.header("private-token"), Some(GITLAB_TOKEN));
        assert_eq!(request.header("authorization"), None);
        assert!(
            request
                .path
                .starts_with("/api/v4/projects/gitlabhq%2Fgitlab-test/"),
            "{}",
            request.path
        );
    }

    // A 401 (a revoked token) is not worth retrying: the write-back fails at once and says why.
    gitlab.fail_next("*", "/notes", Fault::Status(401), 1);
    let (status, event) = status_and_json(send(8).await.expect("sent")).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id").to_owned();
    let task = wait_write_back(&daemon, &event_id, "failed").await;
    assert_eq!(task["write_back_attempts"], 1, "{task}");
    assert!(
        task["write_back_error"]
            .as_str()
            .is_some_and(|error| error.contains("401")),
        "{task}"
    );
    assert!(!daemon.log().contains(GITLAB_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_never_decides_is_stopped_and_denies_everything() {
    let home = Home::new(FAST);
    let greedy = plugins::path("greedy");
    let (ok, _, stderr) = home.mecha(&[
        "plugin",
        "install",
        "--yes",
        greedy.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stderr}");
    let _worker = worker_with_policy(
        &home,
        "stalled",
        full_result(),
        "policy:\n  - plugin: greedy\n",
    )
    .await;
    let daemon = Daemon::start(&home);
    let event_id = open_pull_request(&daemon, "greedy-1").await;
    let task = wait_write_back(&daemon, &event_id, "done").await;
    let decision = &task["decision"];
    assert!(reasons(decision, "allowed").is_empty(), "{decision}");
    let denied = reasons(decision, "denied");
    assert_eq!(denied.len(), 5, "{denied:?}");
    assert!(
        denied
            .iter()
            .all(|reason| reason.contains("plugin greedy used up its fuel")),
        "{denied:?}"
    );
}
