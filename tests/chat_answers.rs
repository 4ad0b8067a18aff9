//! Answers where the question was asked: Slack mentions answered in their thread, slash
//! commands at their `response_url`, Telegram messages with a reply, through the bundled
//! `slack` and `telegram` responders and local stand-ins of Slack's Web API and Telegram's Bot
//! API; retries, dead letters, a crash between posting and recording, and tokens that never show.

use std::time::Duration;

use crate::support::chat_apps::{Slack, Telegram};
use crate::support::daemon::{
    Daemon, Home, client, get_json, send_slack, status_and_json, wait_write_back,
};
use crate::support::fixtures;
use crate::support::stand_in::Fault;
use crate::support::worker::{Answer, TestWorker};

/// Retries in milliseconds, so the tests do not wait for production delays.
const FAST: &str =
    "dispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n";

const SLACK_SIGNING_SECRET: &str = "slack-signing-secret-for-tests";
/// The bot token: a canary that must never show anywhere but the stand-in's `Authorization`.
const SLACK_TOKEN: &str = "xoxb-canary-slack-token-0123456789";

const TELEGRAM_SECRET_TOKEN: &str = "telegram-webhook-secret-token";
/// The bot token: a canary that must never show anywhere but the stand-in's request path.
const TELEGRAM_TOKEN: &str = "7000123456:AAcanaryTelegramToken_0123456789xyz";

/// The channel and messages of the app_mention fixture, asked in a thread.
const CHANNEL: &str = "C0LAN2Q65";
const THREAD: &str = "1515449000.000001";
const MENTION_TS: &str = "1515449522.000016";

/// An answer with the Markdown agents write, and a label.
fn answer() -> String {
    serde_json::json!({
        "comment": { "body": "## Why\nThe **migration** timed out: see [the log](https://ci.test/1?a=1&b=2).\n```\n$ deploy <prod>\n```" },
        "labels": { "add": ["eyes"] },
    })
    .to_string()
}

/// Adds and starts a live worker answering every task on `source` events of `on` with `result`.
async fn worker(home: &Home, source: &str, on: &str, result: String) -> TestWorker {
    let worker = TestWorker::scripted(Vec::new(), Answer::Ok(result)).await;
    let yaml = format!(
        "name: answers\nendpoint: {}\nevents:\n  - source: {source}\n    on: [{on}]\n    prompt: answer\n",
        worker.endpoint
    );
    home.add_worker(&yaml);
    worker
}

fn slack_home(slack: &Slack) -> Home {
    let home = Home::new(&format!(
        "{FAST}responders:\n  slack:\n    api_url: {}\n    response_origins: [{}]\n",
        slack.api, slack.hooks
    ));
    home.write_secrets(&format!(
        "slack:\n  signing_secret: {SLACK_SIGNING_SECRET}\n  token: {SLACK_TOKEN}\n"
    ));
    home
}

fn telegram_home(telegram: &Telegram) -> Home {
    let home = Home::new(&format!(
        "{FAST}responders:\n  telegram:\n    api_url: {}\n",
        telegram.base
    ));
    home.write_secrets(&format!(
        "telegram:\n  secret_token: {TELEGRAM_SECRET_TOKEN}\n  token: {TELEGRAM_TOKEN}\n"
    ));
    home
}

/// Sends the app_mention fixture as a reply in [`THREAD`], its event id made `event_id`.
async fn mention_in_thread(daemon: &Daemon, event_id: &str) -> String {
    let mut json: serde_json::Value =
        serde_json::from_slice(&fixtures::read("slack", "event_callback.app_mention.json"))
            .expect("json");
    json["event_id"] = event_id.into();
    json["event"]["thread_ts"] = THREAD.into();
    let body = serde_json::to_vec(&json).expect("encoded");
    let (status, answer) =
        send_slack(daemon, SLACK_SIGNING_SECRET, "application/json", &body).await;
    assert_eq!(status, 200, "{answer}");
    stored_event(daemon, "slack", 1).await
}

/// The id of the newest stored event of `source`, once `count` are stored.
async fn stored_event(daemon: &Daemon, source: &str, count: usize) -> String {
    for _ in 0..500 {
        let (_, events) = get_json(daemon, &format!("/events?source={source}")).await;
        if let Some(events) = events.as_array()
            && events.len() >= count
        {
            return events[0]["id"].as_str().expect("id").to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {source} event stored:\n{}", daemon.log());
}

/// The write-back of `event_id` failed once on a rate limit and was put off by at least the
/// provider's 1 s, not the test config's 50 ms backoff; the `writeback.failed` records.
async fn assert_retried_after_a_second(daemon: &Daemon, event_id: &str) -> serde_json::Value {
    let (_, failed) = get_json(
        daemon,
        &format!("/logs?trace={event_id}&action=writeback.failed"),
    )
    .await;
    assert_eq!(failed[0]["outcome"], "retry", "{failed}");
    assert!(
        failed[0]["detail"]["retry_in_ms"]
            .as_u64()
            .is_some_and(|wait| wait >= 1000),
        "{failed}"
    );
    failed
}

/// Waits until the event `event_id` is in `state`: it gets there just after its task's
/// write-back is recorded.
async fn wait_event(daemon: &Daemon, event_id: &str, state: &str) {
    let mut event = serde_json::Value::Null;
    for _ in 0..500 {
        event = get_json(daemon, &format!("/event/{event_id}")).await.1;
        if event["state"] == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the event never reached {state}: {event}");
}

/// Fails the test if `token` shows in the daemon's log, audit trail, API answers or CLI.
async fn assert_never_shown(home: &Home, daemon: &Daemon, event_id: &str, token: &str) {
    let (_, logs) = get_json(daemon, &format!("/logs?trace={event_id}")).await;
    let (_, tasks) = get_json(daemon, &format!("/tasks?event={event_id}")).await;
    let (_, event) = get_json(daemon, &format!("/event/{event_id}")).await;
    let (ok, cli_logs, stderr) = home.mecha(&["logs", "--trace", event_id, "--json"]);
    assert!(ok && !cli_logs.is_empty(), "{stderr}");
    let (ok, cli_tasks, stderr) = home.mecha(&["tasks", "ls"]);
    assert!(ok, "{stderr}");
    // The token's parts too: a `:` percent-encoded or an echoed path cut differently.
    let secret_part = token.rsplit(':').next().unwrap_or(token);
    for (what, text) in [
        ("log", daemon.log()),
        ("audit", logs.to_string()),
        ("tasks", tasks.to_string()),
        ("event", event.to_string()),
        ("mecha logs", cli_logs),
        ("mecha tasks", cli_tasks),
    ] {
        assert!(
            !text.contains(secret_part),
            "the token shows in the {what}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_mention_in_a_thread_is_answered_in_that_thread() {
    let slack = Slack::start(SLACK_TOKEN).await;
    slack.seed_message(CHANNEL, THREAD, None, "the deploy failed");
    slack.seed_message(CHANNEL, MENTION_TS, Some(THREAD), "<@U0LAN0Z89> why?");
    let home = slack_home(&slack);
    let _worker = worker(&home, "slack", "app_mention", answer()).await;
    let daemon = Daemon::start(&home);
    let event_id = mention_in_thread(&daemon, "Ev-thread-1").await;
    let task = wait_write_back(&daemon, &event_id, "done").await;

    let replies = slack.replies(CHANNEL, THREAD);
    assert_eq!(replies.len(), 1, "one answer, in the thread: {replies:?}");
    assert_eq!(
        replies[0].text,
        "*Why*\nThe *migration* timed out: see <https://ci.test/1?a=1&amp;b=2|the log>.\n```\n$ deploy &lt;prod&gt;\n```"
    );
    let metadata = replies[0].metadata.as_ref().expect("metadata");
    assert_eq!(metadata["event_type"], "mecha_task");
    assert_eq!(metadata["event_payload"]["task"], task["id"]);
    assert_eq!(slack.reactions(CHANNEL, MENTION_TS), ["eyes"]);

    // The thread was read before posting; every Web API call carried the host's Bearer token.
    let calls: Vec<(String, String)> = slack
        .requests()
        .into_iter()
        .map(|request| {
            assert_eq!(
                request.header("authorization"),
                Some(format!("Bearer {SLACK_TOKEN}").as_str()),
                "{} {}",
                request.method,
                request.path
            );
            assert_eq!(request.status, Some(200));
            (request.method, request.path)
        })
        .collect();
    let calls: Vec<(&str, &str)> = calls
        .iter()
        .map(|(m, p)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("GET", "/api/conversations.replies"),
            ("POST", "/api/chat.postMessage"),
            ("POST", "/api/reactions.add"),
        ]
    );
    wait_event(&daemon, &event_id, "completed").await;
    assert_never_shown(&home, &daemon, &event_id, SLACK_TOKEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slash_command_is_answered_at_its_response_url_without_the_token() {
    let slack = Slack::start(SLACK_TOKEN).await;
    let home = slack_home(&slack);
    let result = serde_json::json!({ "output": "Deployed **acme/widgets#42** & done" }).to_string();
    let _worker = worker(&home, "slack", "slash_command", result).await;
    let daemon = Daemon::start(&home);
    let hooks = format!("{}/commands/1234/5678", slack.hooks);
    send_slash_command(&daemon, &hooks, "13345224609.1").await;
    let event_id = stored_event(&daemon, "slack", 1).await;
    wait_write_back(&daemon, &event_id, "done").await;

    let responses = slack.responses("/commands/1234/5678");
    assert_eq!(
        responses,
        [serde_json::json!({
            "text": "Deployed *acme/widgets#42* &amp; done",
            "response_type": "ephemeral",
            "replace_original": false,
        })]
    );
    let requests = slack.requests();
    assert_eq!(requests.len(), 1, "nothing but the response: {requests:?}");
    assert_eq!(
        requests[0].header("authorization"),
        None,
        "the token stays with the Web API"
    );
    assert!(slack.bot_messages().is_empty());
    assert_never_shown(&home, &daemon, &event_id, SLACK_TOKEN).await;

    // A response URL on any other origin is refused by the host, and nothing reaches it.
    let elsewhere = Slack::start(SLACK_TOKEN).await;
    let url = format!("{}/commands/1234/5678", elsewhere.hooks);
    send_slash_command(&daemon, &url, "13345224609.2").await;
    let event_id = stored_event(&daemon, "slack", 2).await;
    let task = wait_write_back(&daemon, &event_id, "failed").await;
    assert!(
        task["write_back_error"]
            .as_str()
            .is_some_and(|error| error.contains("the host denied the request")),
        "{task}"
    );
    assert!(elsewhere.requests().is_empty());
}

/// Posts the slash command fixture with its `response_url` and `trigger_id` (its delivery id)
/// replaced.
async fn send_slash_command(daemon: &Daemon, response_url: &str, trigger_id: &str) {
    let form = String::from_utf8(fixtures::read("slack", "slash_command.form")).expect("utf-8");
    let encoded = response_url.replace(':', "%3A").replace('/', "%2F");
    let form = form
        .replace(
            "response_url=https://hooks.slack.com/commands/1234/5678",
            &format!("response_url={encoded}"),
        )
        .replace(
            "trigger_id=13345224609.738474920.8088930838d88f008e0",
            &format!("trigger_id={trigger_id}"),
        );
    let (status, answer) = send_slack(
        daemon,
        SLACK_SIGNING_SECRET,
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_rate_limits_are_retried_and_a_dead_letter_is_retried_by_hand() {
    let slack = Slack::start(SLACK_TOKEN).await;
    slack.seed_message(CHANNEL, THREAD, None, "the deploy failed");
    let home = slack_home(&slack);
    let result = serde_json::json!({ "comment": { "body": "answer" } }).to_string();
    let _worker = worker(&home, "slack", "app_mention", result).await;
    slack.fail_next("POST", "/chat.postMessage", Fault::RateLimited, 1);
    let daemon = Daemon::start(&home);
    let event_id = mention_in_thread(&daemon, "Ev-retry-1").await;
    wait_write_back(&daemon, &event_id, "done").await;
    assert_eq!(slack.replies(CHANNEL, THREAD).len(), 1);
    // Slack's Retry-After (1 s) wins over the 50 ms backoff.
    let failed = assert_retried_after_a_second(&daemon, &event_id).await;
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("429") && e.contains("retry after 1 s")),
        "{failed}"
    );

    // Slack down for every try: dead-lettered once the tries are used up, then retried by hand.
    slack.fail_next("POST", "/chat.postMessage", Fault::Status(503), 5);
    let mut json: serde_json::Value =
        serde_json::from_slice(&fixtures::read("slack", "event_callback.app_mention.json"))
            .expect("json");
    json["event_id"] = "Ev-retry-2".into();
    json["event"]["ts"] = "1515449600.000001".into();
    json["event"]["thread_ts"] = THREAD.into();
    let body = serde_json::to_vec(&json).expect("encoded");
    let (status, _) = send_slack(&daemon, SLACK_SIGNING_SECRET, "application/json", &body).await;
    assert_eq!(status, 200);
    let event_id = stored_event(&daemon, "slack", 2).await;
    let task = wait_write_back(&daemon, &event_id, "failed").await;
    assert!(
        task["write_back_error"]
            .as_str()
            .is_some_and(|error| error.contains("retries exhausted after 5 attempts")
                && error.contains("503")),
        "{task}"
    );
    wait_event(&daemon, &event_id, "write_back_failed").await;
    let (ok, _, stderr) = home.mecha(&["tasks", "retry", task["id"].as_str().expect("id")]);
    assert!(ok, "{stderr}");
    wait_write_back(&daemon, &event_id, "done").await;
    assert_eq!(
        slack.replies(CHANNEL, THREAD).len(),
        2,
        "one answer per question"
    );
    assert_never_shown(&home, &daemon, &event_id, SLACK_TOKEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_slack_post_and_its_record_posts_once() {
    let slack = Slack::start(SLACK_TOKEN).await;
    slack.seed_message(CHANNEL, THREAD, None, "the deploy failed");
    let home = slack_home(&slack);
    let result = serde_json::json!({ "comment": { "body": "only once" } }).to_string();
    let _worker = worker(&home, "slack", "app_mention", result).await;
    // Slack posts the message, then holds its answer: the daemon dies before it hears of it.
    slack.fail_next(
        "POST",
        "/chat.postMessage",
        Fault::Held(Duration::from_secs(60)),
        1,
    );
    let daemon = Daemon::start(&home);
    let event_id = mention_in_thread(&daemon, "Ev-crash-1").await;
    for _ in 0..1000 {
        if !slack.bot_messages().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        slack.replies(CHANNEL, THREAD).len(),
        1,
        "posted before the crash"
    );
    let (_, tasks) = get_json(&daemon, &format!("/tasks?event={event_id}")).await;
    assert_eq!(
        tasks["tasks"][0]["write_back"], "pending",
        "not yet recorded: {tasks}"
    );
    daemon.kill();

    let daemon = Daemon::start(&home);
    wait_write_back(&daemon, &event_id, "done").await;
    let replies = slack.replies(CHANNEL, THREAD);
    assert_eq!(
        replies.len(),
        1,
        "the answer is not posted again: {replies:?}"
    );
    assert_eq!(replies[0].text, "only once");
    let (_, done) = get_json(
        &daemon,
        &format!("/logs?trace={event_id}&action=writeback.done"),
    )
    .await;
    assert_eq!(
        done[0]["detail"]["actions"][0]["reference"], "already posted",
        "{done}"
    );
}

/// Posts the Telegram `message.text` fixture as update `update_id`.
async fn send_telegram(daemon: &Daemon, update_id: i64) -> String {
    let mut json: serde_json::Value =
        serde_json::from_slice(&fixtures::read("telegram", "message.text.json")).expect("json");
    json["update_id"] = update_id.into();
    let response = client()
        .post(daemon.url("/webhook/telegram"))
        .header("content-type", "application/json")
        .header("x-telegram-bot-api-secret-token", TELEGRAM_SECRET_TOKEN)
        .body(json.to_string())
        .send()
        .await
        .expect("sent");
    let (status, event) = status_and_json(response).await;
    assert_eq!(status, 202, "{event}");
    event["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_message_is_answered_with_a_reply_and_the_token_only_in_the_path() {
    let telegram = Telegram::start(TELEGRAM_TOKEN).await;
    telegram.seed_message(1111111, 1365);
    let home = telegram_home(&telegram);
    let _worker = worker(&home, "telegram", "message", answer()).await;
    // A flood limit first: retried after a backoff, then sent once.
    telegram.fail_next("POST", "/sendMessage", Fault::RateLimited, 1);
    let daemon = Daemon::start(&home);
    let event_id = send_telegram(&daemon, 10001).await;
    wait_write_back(&daemon, &event_id, "done").await;

    let sent = telegram.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].chat_id, 1111111);
    assert_eq!(sent[0].reply_to, Some(1365));
    assert_eq!(
        sent[0].html,
        "<b>Why</b>\nThe <b>migration</b> timed out: see <a href=\"https://ci.test/1?a=1&amp;b=2\">the log</a>.\n<pre>$ deploy &lt;prod&gt;</pre>"
    );
    let requests = telegram.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/bot{TELEGRAM_TOKEN}/sendMessage"));
        assert_eq!(request.body["parse_mode"], "HTML");
    }
    assert!(telegram.token_elsewhere().is_empty(), "only in the path");
    // Telegram's `parameters.retry_after` (1 s) wins over the 50 ms backoff.
    assert_retried_after_a_second(&daemon, &event_id).await;
    assert_never_shown(&home, &daemon, &event_id, TELEGRAM_TOKEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_error_echoing_the_url_never_shows_the_token() {
    let telegram = Telegram::start(TELEGRAM_TOKEN).await;
    let home = telegram_home(&telegram);
    let result = serde_json::json!({ "output": "hello" }).to_string();
    let _worker = worker(&home, "telegram", "message", result).await;
    // Telegram refuses the call and echoes the URL it was sent to, token included.
    telegram.fail_next("POST", "/sendMessage", Fault::Status(400), 1);
    let daemon = Daemon::start(&home);
    let event_id = send_telegram(&daemon, 10002).await;
    let task = wait_write_back(&daemon, &event_id, "failed").await;
    let error = task["write_back_error"].as_str().expect("error");
    assert!(
        error.contains("Telegram sendMessage answered 400: Bad Request: can't process https://api.telegram.org/bot[REDACTED]/sendMessage"),
        "{error}"
    );
    assert_eq!(
        task["write_back_attempts"], 1,
        "a 400 is not retried: {task}"
    );
    assert_never_shown(&home, &daemon, &event_id, TELEGRAM_TOKEN).await;
}
