//! Secrets that must not get out: escaped or encoded in a worker's answer, added or rotated by a
//! reload, written into a worker's endpoint, or written wrong in a configuration file.

use std::process::Command;
use std::time::Duration;

use crate::support::daemon::{
    Daemon, GITHUB_SECRET, Home, binary, get_json, send_github, wait_tasks, wait_write_back,
};
use crate::support::fixtures;
use crate::support::forge::GitHub;
use crate::support::llm::LlmServer;
use crate::support::worker::{Answer, TestWorker};

/// Retries in milliseconds, so the tests do not wait for production delays.
const FAST: &str =
    "dispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n";

/// The GitHub token of the responder; its shape is one the redactor knows anyway.
const GITHUB_TOKEN: &str = "ghp_secretsTestToken0123456789abcdefAB";

/// A secret of no known shape, with characters that percent-encoding and JSON escape.
const CANARY: &str = "CANARY-s3cr3t/+value:9f2e";

/// The forms of [`CANARY`] a reader could turn back into it: as written, base64 (standard and
/// URL-safe, on its own) and percent-encoded.
fn canary_forms() -> Vec<String> {
    vec![
        CANARY.to_owned(),
        base64(CANARY.as_bytes(), false),
        base64(CANARY.as_bytes(), true),
        percent(CANARY),
        // The part of the canary no encoding touches: nothing of it may survive either.
        "s3cr3t".to_owned(),
    ]
}

fn base64(bytes: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (index, byte)| {
            group | (u32::from(*byte) << (16 - 8 * index))
        });
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(char::from(
                    alphabet[((group >> (18 - 6 * index)) & 0x3f) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// `CANARY` with every character written as a JSON `\u` escape.
fn json_escaped(text: &str) -> String {
    text.chars()
        .map(|character| format!("\\u{:04x}", u32::from(character)))
        .collect()
}

/// Fails the test if any of `forms` is in `text`.
fn assert_absent(what: &str, text: &str, forms: &[String]) {
    for form in forms {
        assert!(
            !text.contains(form.as_str()),
            "{what} shows {form:?}:\n{text}"
        );
    }
}

/// Runs `mecha ARGS` with this home and `env`; returns (success, stdout + stderr).
fn mecha_with_env(home: &Home, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(binary())
        .args(args)
        .env("MECHA_HOME", home.path())
        .env_remove("MECHA_DB_PATH")
        .env_remove("MECHA_API_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("mecha runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A home whose daemon writes GitHub results back to `github` with [`GITHUB_TOKEN`], and
/// whose secrets.yml also holds `extra` (YAML lines at the top level).
fn github_home(github: &GitHub, extra: &str) -> Home {
    let home = Home::new(&format!(
        "{FAST}responders:\n  github:\n    api_url: {}\n",
        github.base
    ));
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\n  token: {GITHUB_TOKEN}\n{extra}"
    ));
    home
}

/// Adds and starts a live worker for `pull_request.opened` answering every task with `body`.
async fn reviewer(home: &Home, body: String) -> TestWorker {
    let worker = TestWorker::scripted(Vec::new(), Answer::Ok(body)).await;
    home.add_worker(&format!(
        "name: reviewer\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: review\n",
        worker.endpoint
    ));
    worker
}

/// Sends the `pull_request.opened` fixture (Codertocat/Hello-World#2) as `delivery`.
async fn open_pull_request(daemon: &Daemon, delivery: &str) -> String {
    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(daemon, "pull_request", delivery, &body).await;
    assert_eq!(status, 202, "{event}");
    event["id"].as_str().expect("id").to_owned()
}

/// Waits until the daemon's log holds `count` lines containing `text`.
async fn wait_log(daemon: &Daemon, text: &str, count: usize) -> String {
    for _ in 0..1500 {
        let log = daemon.log();
        if log.matches(text).count() >= count {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the log never said {text:?} {count} times:\n{}",
        daemon.log()
    );
}

/// Everything GitHub received, as text: paths, queries and the decoded JSON bodies.
fn github_received(github: &GitHub) -> String {
    github
        .requests()
        .iter()
        .map(|request| {
            format!(
                "{} {}?{} {}\n",
                request.method, request.path, request.query, request.body
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_escaped_or_encoded_in_a_worker_answer_reaches_no_reader() {
    let github = GitHub::start(GITHUB_TOKEN).await;
    let home = github_home(
        &github,
        &format!("tokens:\n  vendor:\n    key: \"{CANARY}\"\n"),
    );
    // Written by hand: serde_json would never escape these characters. Each field hides the
    // canary another way; the labels and the status carry it too.
    let escaped = json_escaped(CANARY);
    let answer = format!(
        r#"{{"output":"done","comment":{{"body":"escaped {escaped}, base64 {b64}, url-safe {b64url}, percent {pct}"}},"labels":{{"add":["ok","{escaped}"]}},"status":{{"state":"success","description":"{escaped}"}},"metadata":{{"{escaped}":"{escaped}"}}}}"#,
        b64 = base64(CANARY.as_bytes(), false),
        b64url = base64(CANARY.as_bytes(), true),
        pct = percent(CANARY),
    );
    let _worker = reviewer(&home, answer).await;
    let daemon = Daemon::start(&home);
    let event_id = open_pull_request(&daemon, "escaped-1").await;
    let task = wait_write_back(&daemon, &event_id, "done").await;
    let id = task["id"].as_str().expect("id");

    // The comment was posted, and what GitHub got has the canary in no form.
    let comments = github.comments("Codertocat", "Hello-World", 2);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].starts_with(
            "escaped [REDACTED], base64 [REDACTED], url-safe [REDACTED], percent [REDACTED]"
        ),
        "{comments:?}"
    );
    let labels = github.labels("Codertocat", "Hello-World", 2);
    assert!(labels.contains(&"ok".to_owned()), "{labels:?}");
    assert_absent("GitHub", &github_received(&github), &canary_forms());

    // Nor does anything a user reads: the API (decoded JSON), the CLI, the audit trail, the log.
    let (status, shown) = get_json(&daemon, &format!("/task/{id}")).await;
    assert_eq!(status, 200, "{shown}");
    assert!(
        shown["result"]["comment"]["body"]
            .as_str()
            .is_some_and(|body| body.starts_with("escaped [REDACTED], base64 [REDACTED]")),
        "{shown}"
    );
    let mut outputs = vec![("GET /task/{id}".to_owned(), shown.to_string())];
    for path in [
        format!("/tasks?event={event_id}"),
        format!("/logs?trace={event_id}"),
    ] {
        let (status, body) = get_json(&daemon, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        outputs.push((path, body.to_string()));
    }
    for command in [
        vec!["tasks", "show", id],
        vec!["tasks", "ls", "--json"],
        vec!["logs", "--json"],
    ] {
        let (ok, stdout, stderr) = home.mecha(&command);
        assert!(ok, "mecha {command:?}: {stderr}");
        outputs.push((format!("mecha {}", command.join(" ")), stdout));
    }
    outputs.push(("daemon log".to_owned(), daemon.stop()));
    for (what, text) in &outputs {
        assert_absent(what, text, &canary_forms());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_hides_a_new_secret_and_writes_back_with_the_new_token() {
    const LATE_CANARY: &str = "late-canary-4c1d9e7a";
    const NEW_TOKEN: &str = "ghp_rotatedToken9876543210zyxwvuTSRQ";
    // GitHub accepts only the new token: the old one is revoked.
    let github = GitHub::start(NEW_TOKEN).await;
    let home = github_home(&github, "");
    let answer = serde_json::json!({
        "comment": { "body": format!("the vendor key is {LATE_CANARY}") },
    })
    .to_string();
    let _worker = reviewer(&home, answer).await;
    let daemon = Daemon::start(&home);

    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\n  token: {NEW_TOKEN}\ntokens:\n  vendor:\n    key: {LATE_CANARY}\n"
    ));
    daemon.hangup();
    wait_log(&daemon, "reloaded secrets.yml", 1).await;

    let event_id = open_pull_request(&daemon, "reloaded-1").await;
    let task = wait_write_back(&daemon, &event_id, "done").await;
    let comments = github.comments("Codertocat", "Hello-World", 2);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].starts_with("the vendor key is [REDACTED]"),
        "{comments:?}"
    );
    for request in github.requests() {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {NEW_TOKEN}").as_str()),
            "{} {}",
            request.method,
            request.path
        );
    }
    let (_, shown) = get_json(
        &daemon,
        &format!("/task/{}", task["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(
        shown["result"]["comment"]["body"],
        "the vendor key is [REDACTED]"
    );
    let forms = [LATE_CANARY.to_owned(), NEW_TOKEN.to_owned()];
    assert_absent("GitHub", &github_received(&github), &forms[..1]);
    assert_absent("GET /task/{id}", &shown.to_string(), &forms);
    assert_absent("daemon log", &daemon.stop(), &forms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_restarts_an_adapter_with_its_new_upstream_key() {
    const OLD_KEY: &str = "sk-oldUpstreamKey0123456789abcdefgh";
    const NEW_KEY: &str = "sk-newUpstreamKey9876543210zyxwvuts";
    // The upstream accepts only the new key.
    let openai = LlmServer::openai("reviewed with the new key", NEW_KEY).await;
    let home = Home::new(FAST);
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\ntokens:\n  openai:\n    main: {OLD_KEY}\n"
    ));
    let path = home.path().join("gpt.yaml");
    std::fs::write(
        &path,
        format!(
            "name: gpt\nadapter:\n  type: openai\n  upstream: {}\n  model: gpt-test\n  token: openai.main\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: review\n",
            openai.url
        ),
    )
    .expect("worker file");
    let (ok, _, stderr) = home.mecha(&["worker", "add", path.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let daemon = Daemon::start(&home);

    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\ntokens:\n  openai:\n    main: {NEW_KEY}\n"
    ));
    daemon.hangup();
    wait_log(&daemon, "reloaded secrets.yml", 1).await;

    let event_id = open_pull_request(&daemon, "adapter-reload-1").await;
    let tasks = wait_tasks(&daemon, &format!("event={event_id}&state=completed"), 1).await;
    assert_eq!(
        tasks[0]["result"]["output"], "reviewed with the new key",
        "{tasks:?}"
    );
    assert_eq!(
        openai.authorizations(),
        [Some(format!("Bearer {NEW_KEY}"))],
        "the one chat call carried the new key"
    );
    let forms = [OLD_KEY.to_owned(), NEW_KEY.to_owned()];
    assert_absent("daemon log", &daemon.stop(), &forms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_a_worker_endpoint_are_never_shown() {
    const PASSWORD: &str = "endpoint-pass-77c3b1";
    const LITERAL_PASSWORD: &str = "written-pass-5e2f08";
    let env = [("MECHA_TEST_ENDPOINT_PASS", PASSWORD)];
    let home = Home::new(FAST);
    let mut outputs = Vec::new();

    // A definition whose URL is wrong: the error quotes it, without the password.
    let bad = home.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\nendpoint: http://agent:${MECHA_TEST_ENDPOINT_PASS}@127.0.0.1:notaport\n",
    )
    .expect("worker file");
    let (ok, output) = mecha_with_env(
        &home,
        &["worker", "add", bad.to_str().expect("utf-8")],
        &env,
    );
    assert!(!ok, "{output}");
    assert!(output.contains("port that is not a number"), "{output}");
    outputs.push(("worker add (bad URL)".to_owned(), output));

    // Two workers nobody answers for, so that their errors name their endpoints: one with its
    // password from the environment, one with it written in the file.
    for (name, password) in [
        ("interpolated", "${MECHA_TEST_ENDPOINT_PASS}"),
        ("written", LITERAL_PASSWORD),
    ] {
        let file = home.path().join(format!("{name}.yaml"));
        std::fs::write(
            &file,
            format!(
                "name: {name}\nendpoint: http://agent:{password}@127.0.0.1:{}\n",
                crate::support::daemon::free_port()
            ),
        )
        .expect("worker file");
        let (ok, output) = mecha_with_env(
            &home,
            &["worker", "add", file.to_str().expect("utf-8")],
            &env,
        );
        assert!(ok, "{output}");
        let (ok, output) = mecha_with_env(&home, &["worker", "start", name], &env);
        assert!(ok && output.contains("health check failed"), "{output}");
        outputs.push((format!("worker start {name}"), output));
    }

    let daemon = Daemon::start_with_env(&home, &env);
    let (status, workers) = get_json(&daemon, "/workers").await;
    assert_eq!(status, 200, "{workers}");
    let all = workers.as_array().expect("workers");
    assert_eq!(all.len(), 2, "{workers}");
    for worker in all {
        assert_eq!(worker["state"], "error", "{worker}");
        let error = worker["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("[REDACTED]@127.0.0.1"),
            "the error names the endpoint, its user part hidden: {error}"
        );
        assert!(
            worker["endpoint"]
                .as_str()
                .is_some_and(|endpoint| endpoint.starts_with("http://[REDACTED]@127.0.0.1:")),
            "{worker}"
        );
    }
    outputs.push(("GET /workers".to_owned(), workers.to_string()));
    for args in [
        vec!["worker", "ls"],
        vec!["worker", "ls", "--json"],
        vec!["config"],
        vec!["doctor"],
    ] {
        let (_, output) = mecha_with_env(&home, &args, &env);
        outputs.push((format!("mecha {}", args.join(" ")), output));
    }
    outputs.push(("daemon log".to_owned(), daemon.stop()));
    let forms = [PASSWORD.to_owned(), LITERAL_PASSWORD.to_owned()];
    for (what, text) in &outputs {
        assert_absent(what, text, &forms);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_written_wrong_is_not_quoted_at_start_or_after_a_reload() {
    const NUMBER: &str = "918273645012345";
    const ENV_VALUE: &str = "env-secret-value-31c8";
    let home = Home::new(FAST);
    // A secret one level too high: where the github section should start.
    home.write_secrets(&format!("github: {NUMBER}\n"));
    let refused = home.serve_refused();
    assert!(
        refused.contains("line 1")
            && refused.contains("github: invalid type")
            && refused.contains("expected a map"),
        "the error names the place and the expected type: {refused}"
    );
    assert_absent("mecha serve", &refused, &[NUMBER.to_owned()]);

    // A worker's environment written as one value instead of a map of them.
    let file = home.path().join("boxed.yaml");
    std::fs::write(
        &file,
        format!("name: boxed\ndocker:\n  image: mecha/worker:test\n  env: {ENV_VALUE}\n"),
    )
    .expect("worker file");
    let (ok, _, stderr) = home.mecha(&["worker", "add", file.to_str().expect("utf-8")]);
    assert!(!ok && stderr.contains("docker.env"), "{stderr}");
    assert_absent("mecha worker add", &stderr, &[ENV_VALUE.to_owned()]);

    // A reload that meets a mistake keeps the current secrets and says why, without the value.
    home.write_secrets(&format!("github:\n  webhook_secret: {GITHUB_SECRET}\n"));
    let daemon = Daemon::start(&home);
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\ntokens:\n  vendor: {NUMBER}\n"
    ));
    daemon.hangup();
    let log = wait_log(&daemon, "could not reload secrets.yml", 1).await;
    assert!(log.contains("tokens.vendor: invalid type"), "{log}");
    assert_absent("daemon log", &log, &[NUMBER.to_owned()]);
    // The github source still checks signatures with the secret it had.
    let event_id = open_pull_request(&daemon, "after-a-bad-reload").await;
    assert!(!event_id.is_empty());
    assert_absent("daemon log", &daemon.stop(), &[NUMBER.to_owned()]);
}
