//! Source instances through the daemon: several instances of one plugin at `/webhook/{name}`,
//! each with its own secrets and settings; instances refused at start when their secret is
//! missing; and each bundled source's authentication (401 for a bad token or signature), Slack's
//! handshake and retries.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::daemon::{
    Daemon, GITHUB_SECRET, Home, client, get_json, send_github, status_and_json,
};
use crate::support::fixtures;

const GITLAB_TOKEN: &str = "gitlab-hook-token";
const SLACK_SECRET: &str = "slack-signing-secret";
const TELEGRAM_TOKEN: &str = "telegram_secret-token";

fn all_secrets() -> String {
    format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\ngithub-b:\n  webhook_secret: other-secret\ngitlab:\n  webhook_secret: {GITLAB_TOKEN}\nslack:\n  signing_secret: {SLACK_SECRET}\ntelegram:\n  secret_token: {TELEGRAM_TOKEN}\n"
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

async fn post(
    daemon: &Daemon,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut request = client().post(daemon.url(path)).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    status_and_json(request.send().await.expect("sent")).await
}

async fn send_slack(
    daemon: &Daemon,
    body: &[u8],
    extra: &[(&str, String)],
) -> (u16, serde_json::Value) {
    let timestamp = now();
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("x-slack-request-timestamp", timestamp.to_string()),
        (
            "x-slack-signature",
            mecha::signature::slack_signature(SLACK_SECRET.as_bytes(), timestamp, body),
        ),
    ];
    headers.extend(extra.iter().cloned());
    post(daemon, "/webhook/slack", &headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_one_plugin_each_verify_with_their_own_secret() {
    let home = Home::new(
        "api_key: test-api-key\nsources:\n  github-b:\n    plugin: github\n  deploys:\n    plugin: generic\n    settings:\n      type_header: X-Deploy-Event\n  alerts:\n    plugin: generic\n",
    );
    home.write_secrets(&all_secrets());
    let daemon = Daemon::start(&home);
    let body = fixtures::read("github", "push__payload.json");
    let sign = |secret: &str| mecha::signature::github_signature(secret.as_bytes(), &body);
    let github_headers = |signature: String| {
        vec![
            ("x-github-event", "push".to_owned()),
            ("x-github-delivery", "instance-1".to_owned()),
            ("x-hub-signature-256", signature),
        ]
    };

    let (status, event) = post(
        &daemon,
        "/webhook/github-b",
        &github_headers(sign("other-secret")),
        &body,
    )
    .await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(event["source"], "github-b");
    assert_eq!(event["type"], "push");
    // The same delivery id at the other instance is another delivery.
    let (status, event) = send_github(&daemon, "push", "instance-1", &body).await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(event["source"], "github");
    // Each instance refuses the other's secret.
    for (path, secret) in [
        ("/webhook/github-b", GITHUB_SECRET),
        ("/webhook/github", "other-secret"),
    ] {
        let (status, answer) = post(&daemon, path, &github_headers(sign(secret)), &body).await;
        assert_eq!(status, 401, "{path}: {answer}");
    }

    // Two generic hooks, each with its own type header; both need the API key.
    let key = ("x-api-key", "test-api-key".to_owned());
    let (status, event) = post(
        &daemon,
        "/webhook/deploys",
        &[key.clone(), ("x-deploy-event", "deployed".to_owned())],
        br#"{"env":"prod"}"#,
    )
    .await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(
        (event["source"].as_str(), event["type"].as_str()),
        (Some("deploys"), Some("deployed"))
    );
    let (status, event) = post(
        &daemon,
        "/webhook/alerts",
        &[key.clone(), ("x-event-type", "fired".to_owned())],
        br#"{"level":"high"}"#,
    )
    .await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(event["source"], "alerts");
    let (status, _) = post(
        &daemon,
        "/webhook/alerts",
        &[("x-event-type", "fired".to_owned())],
        br#"{"level":"low"}"#,
    )
    .await;
    assert_eq!(status, 401, "no API key");
}

#[test]
fn a_declared_instance_without_its_secret_stops_the_start() {
    let home = Home::new("sources:\n  github-b:\n    plugin: github\n");
    let stderr = home.serve_refused();
    assert!(
        stderr.contains("set github-b.webhook_secret in secrets.yml"),
        "{stderr}"
    );

    // A blank secret is no secret: anyone could sign with it.
    let home = Home::new("sources:\n  github-b:\n    plugin: github\n");
    home.write_secrets("github-b:\n  webhook_secret: \"  \"\n");
    let stderr = home.serve_refused();
    assert!(
        stderr.contains("set github-b.webhook_secret in secrets.yml"),
        "{stderr}"
    );

    let home = Home::new("sources:\n  gitlab:\n    api_url: https://gitlab.example.com/api/v4\n");
    home.write_secrets("gitlab:\n  webhook_secret: t\n");
    let stderr = home.serve_refused();
    assert!(
        stderr.contains("sources.gitlab.api_url: the gitlab plugin calls no API"),
        "{stderr}"
    );

    let home = Home::new("sources:\n  github:\n    api_url: ftp://ghe.example.com\n");
    let stderr = home.serve_refused();
    assert!(stderr.contains("sources.github.api_url"), "{stderr}");

    let home = Home::new("sources:\n  elsewhere:\n    plugin: bitbucket\n");
    let stderr = home.serve_refused();
    assert!(
        stderr.contains("no source plugin named bitbucket"),
        "{stderr}"
    );

    let home = Home::new("sources:\n  Bad/Name: {}\n");
    let stderr = home.serve_refused();
    assert!(stderr.contains("sources.Bad/Name"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_source_without_its_secret_is_disabled_not_open() {
    // Only github's secret is configured.
    let home = Home::new("");
    let daemon = Daemon::start(&home);
    for (source, setting) in [
        ("gitlab", "gitlab.webhook_secret"),
        ("slack", "slack.signing_secret"),
        ("telegram", "telegram.secret_token"),
    ] {
        let (status, answer) = post(&daemon, &format!("/webhook/{source}"), &[], b"{}").await;
        assert_eq!(status, 503, "{source}: {answer}");
        assert!(answer.to_string().contains(setting), "{source}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_refuses_bad_tokens_and_signatures_with_401() {
    let home = Home::new("");
    home.write_secrets(&all_secrets());
    let daemon = Daemon::start(&home);

    let gitlab = fixtures::read("gitlab", "push.json");
    for token in [None, Some("wrong-token")] {
        let mut headers = vec![("x-gitlab-event", "Push Hook".to_owned())];
        if let Some(token) = token {
            headers.push(("x-gitlab-token", token.to_owned()));
        }
        let (status, answer) = post(&daemon, "/webhook/gitlab", &headers, &gitlab).await;
        assert_eq!(status, 401, "gitlab {token:?}: {answer}");
    }
    let (status, event) = post(
        &daemon,
        "/webhook/gitlab",
        &[
            ("x-gitlab-event", "Push Hook".to_owned()),
            ("x-gitlab-token", GITLAB_TOKEN.to_owned()),
            ("x-gitlab-event-uuid", "uuid-1".to_owned()),
        ],
        &gitlab,
    )
    .await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(event["type"], "push");

    let telegram = fixtures::read("telegram", "message.text.json");
    for token in [None, Some("wrong")] {
        let headers: Vec<(&str, String)> = token
            .map(|token| ("x-telegram-bot-api-secret-token", token.to_owned()))
            .into_iter()
            .collect();
        let (status, answer) = post(&daemon, "/webhook/telegram", &headers, &telegram).await;
        assert_eq!(status, 401, "telegram {token:?}: {answer}");
    }
    let (status, event) = post(
        &daemon,
        "/webhook/telegram",
        &[("x-telegram-bot-api-secret-token", TELEGRAM_TOKEN.to_owned())],
        &telegram,
    )
    .await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(event["type"], "message");

    let slack = fixtures::read("slack", "event_callback.app_mention.json");
    let stale = now() - 301;
    for (timestamp, signature) in [
        (now().to_string(), "v0=00".to_owned()),
        (
            stale.to_string(),
            mecha::signature::slack_signature(SLACK_SECRET.as_bytes(), stale, &slack),
        ),
        (
            now().to_string(),
            mecha::signature::slack_signature(b"another-secret", now(), &slack),
        ),
    ] {
        let headers = [
            ("x-slack-request-timestamp", timestamp),
            ("x-slack-signature", signature),
        ];
        let (status, answer) = post(&daemon, "/webhook/slack", &headers, &slack).await;
        assert_eq!(status, 401, "slack: {answer}");
    }
    let (status, answer) = post(&daemon, "/webhook/slack", &[], &slack).await;
    assert_eq!(status, 401, "slack unsigned: {answer}");
    // A wrong GitHub signature, for completeness.
    let body = fixtures::read("github", "push__payload.json");
    let (status, _) = post(
        &daemon,
        "/webhook/github",
        &[
            ("x-github-event", "push".to_owned()),
            (
                "x-hub-signature-256",
                mecha::signature::github_signature(b"wrong", &body),
            ),
        ],
        &body,
    )
    .await;
    assert_eq!(status, 401);
    let (_, events) = get_json(&daemon, "/events").await;
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(2),
        "only the good deliveries: {events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_challenge_is_answered_and_retries_are_duplicates() {
    let home = Home::new("");
    home.write_secrets(&all_secrets());
    let daemon = Daemon::start(&home);

    let challenge = fixtures::read("slack", "url_verification.json");
    let (status, answer) = send_slack(&daemon, &challenge, &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({ "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" })
    );
    let (_, events) = get_json(&daemon, "/events?source=slack").await;
    assert_eq!(
        events,
        serde_json::json!([]),
        "the handshake stores nothing"
    );

    // Slack gets an empty 200 for what is stored: it would show a body to the user.
    let mention = fixtures::read("slack", "event_callback.app_mention.json");
    let (status, first) = send_slack(&daemon, &mention, &[]).await;
    assert_eq!((status, first), (200, serde_json::json!("")));
    let (status, retry) = send_slack(
        &daemon,
        &mention,
        &[
            ("x-slack-retry-num", "1".to_owned()),
            ("x-slack-retry-reason", "http_timeout".to_owned()),
        ],
    )
    .await;
    assert_eq!((status, retry), (200, serde_json::json!("")));
    let (_, events) = get_json(&daemon, "/events?source=slack").await;
    let stored = events.as_array().expect("events");
    assert_eq!(stored.len(), 1, "the retry is a duplicate: {events}");
    assert_eq!(stored[0]["type"], "app_mention");
    let (_, logs) = get_json(&daemon, "/logs?action=event.duplicate").await;
    assert_eq!(logs.as_array().map(Vec::len), Some(1), "{logs}");
    assert_eq!(logs[0]["trace_id"], stored[0]["id"]);

    // A slash command: stored, answered with nothing for Slack to show.
    let command = fixtures::read("slack", "slash_command.form");
    let timestamp = now();
    let response = client()
        .post(daemon.url("/webhook/slack"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header(
            "x-slack-signature",
            mecha::signature::slack_signature(SLACK_SECRET.as_bytes(), timestamp, &command),
        )
        .body(command)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), "");
    let (_, events) = get_json(&daemon, "/events?source=slack").await;
    assert_eq!(events.as_array().map(Vec::len), Some(2), "{events}");
    assert_eq!(events[0]["type"], "slash_command");
}

#[test]
fn doctor_lists_the_endpoints_and_schedules_and_what_is_missing() {
    let home = Home::new(
        "sources:\n  github-b:\n    plugin: github\ntriggers:\n  nightly:\n    schedule: \"0 3 * * *\"\n    timezone: Europe/Berlin\n",
    );
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\ngithub-b:\n  webhook_secret: other\n"
    ));
    let (_, stdout, _) = home.mecha(&["doctor"]);
    for expected in [
        "[ok]   source github: /webhook/github",
        "[ok]   source github-b: /webhook/github-b",
        "[!!]   source gitlab is disabled: set gitlab.webhook_secret in secrets.yml",
        "[ok]   trigger nightly: 0 3 * * * (Europe/Berlin) (cron), next tick ",
    ] {
        assert!(stdout.contains(expected), "{expected} in:\n{stdout}");
    }

    home.write_secrets("");
    let (ok, stdout, _) = home.mecha(&["doctor"]);
    assert!(!ok);
    assert!(
        stdout.contains(
            "[FAIL] sources.github-b cannot verify its webhooks: set github-b.webhook_secret"
        ),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_send_signs_each_provider_like_the_provider() {
    let home = Home::new("");
    home.write_secrets(&all_secrets());
    let daemon = Daemon::start(&home);
    let addr = daemon.base.trim_start_matches("http://").to_owned();
    let dir = fixtures::dir("");
    for (source, file, event_type) in [
        ("gitlab", "gitlab/merge_request.json", "merge_request.open"),
        (
            "slack",
            "slack/event_callback.app_mention.json",
            "app_mention",
        ),
        ("slack", "slack/slash_command.form", "slash_command"),
        ("telegram", "telegram/message.text.json", "message"),
        (
            "github",
            "github/issues__opened.payload.json",
            "issues.opened",
        ),
    ] {
        let path = dir.join(file);
        let (ok, stdout, stderr) = home.mecha(&[
            "dev",
            "send",
            source,
            path.to_str().expect("utf-8"),
            "--addr",
            &addr,
        ]);
        assert!(ok, "{source} {file}: {stdout}{stderr}");
        if source == "slack" {
            assert!(stdout.starts_with("200"), "{stdout}");
        } else {
            assert!(stdout.starts_with("202"), "{stdout}");
            assert!(stdout.contains(&format!(" {event_type} ")), "{stdout}");
        }
    }
    let (_, events) = get_json(&daemon, "/events?source=slack").await;
    let types: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["type"].as_str())
        .collect();
    assert_eq!(types, ["slash_command", "app_mention"]);
}
