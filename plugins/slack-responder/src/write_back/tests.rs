//! The Slack calls, checked against a recording fake: where an answer goes (thread, new thread,
//! response URL), the metadata that prevents double posts, reactions, and failures.

use super::*;
use mecha_plugin_sdk::responder::{
    Comment, Labels, event,
    http::{Recording, Response},
};

const API: &str = "https://slack.test/api";
const MARKER: &str = "task-7f3a";

fn mention(thread_ts: Option<&str>) -> StoredEvent {
    let mut event = event("app_mention")
        .attr("channel", "C0LAN2Q65")
        .attr("ts", "1515449522.000016")
        .attr("text", "<@U0LAN0Z89> why did the deploy fail?");
    if let Some(thread_ts) = thread_ts {
        event = event.attr("thread_ts", thread_ts);
    }
    StoredEvent::new("slack", event)
}

fn answer(body: &str) -> TaskResult {
    TaskResult {
        comment: Some(Comment { body: body.into() }),
        ..TaskResult::empty()
    }
}

/// Slack answering: an empty thread to `conversations.replies` (or `thread`), `ok` with a new
/// `ts` to everything else.
fn slack(thread: Json) -> Recording {
    let mut next = 0;
    Recording::new(move |request| {
        next += 1;
        let body = if request.url.contains("/conversations.replies?") {
            json!({ "ok": true, "messages": thread.clone(), "has_more": false })
        } else {
            json!({ "ok": true, "ts": format!("1515449600.00000{next}") })
        };
        Ok(Response::json_body(200, &body))
    })
}

fn run(http: &mut Recording, event: &StoredEvent, allowed: &TaskResult) -> Receipt {
    write_back(http, API, ResponseType::Ephemeral, event, allowed, MARKER).expect("written back")
}

#[test]
fn a_mention_in_a_thread_is_answered_in_that_thread_with_the_marker() {
    let mut http = slack(json!([]));
    let receipt = run(
        &mut http,
        &mention(Some("1515449000.000001")),
        &answer("**Because** of x"),
    );
    assert_eq!(receipt.actions.len(), 1);
    assert_eq!(receipt.actions[0].action, "comment");
    let [lookup, post] = &http.requests[..] else {
        panic!("{:?}", http.requests);
    };
    assert_eq!(lookup.method, Method::Get);
    assert_eq!(
        lookup.url,
        "https://slack.test/api/conversations.replies?channel=C0LAN2Q65&ts=1515449000.000001&include_all_metadata=true&limit=200"
    );
    assert_eq!(post.url, "https://slack.test/api/chat.postMessage");
    assert_eq!(
        post.body_json().expect("json"),
        json!({
            "channel": "C0LAN2Q65",
            "thread_ts": "1515449000.000001",
            "text": "*Because* of x",
            "metadata": {
                "event_type": "mecha_task",
                "event_payload": { "task": MARKER, "part": 1, "parts": 1 },
            },
        })
    );
    assert_eq!(post.header_value("authorization"), None, "the host adds it");
}

#[test]
fn a_mention_outside_a_thread_starts_one_under_the_message() {
    let mut http = slack(json!([]));
    run(&mut http, &mention(None), &answer("hi"));
    let post = http.requests[1].body_json().expect("json");
    assert_eq!(post["thread_ts"], "1515449522.000016");
}

#[test]
fn parts_already_in_the_thread_are_not_posted_again() {
    let long: String = (0..600)
        .map(|n| format!("line {n} of a long answer\n"))
        .collect();
    let parts = mrkdwn::messages(&long).len();
    assert!(parts >= 3, "{parts}");
    let earlier = |part: usize, task: &str| {
        json!({ "ts": format!("1.{part}"), "text": "…", "metadata": {
            "event_type": "mecha_task",
            "event_payload": { "task": task, "part": part, "parts": parts },
        }})
    };
    // Part 1 of this task was posted before a crash; another task's part 2 does not count.
    let mut http = slack(
        json!([{ "ts": "1515449522.000016", "text": "question" }, earlier(1, MARKER), earlier(2, "task-other")]),
    );
    let receipt = run(&mut http, &mention(None), &answer(&long));
    let posted: Vec<u64> = http.requests[1..]
        .iter()
        .map(|request| {
            request.body_json().expect("json")["metadata"]["event_payload"]["part"]
                .as_u64()
                .expect("part")
        })
        .collect();
    assert_eq!(posted, (2..=parts as u64).collect::<Vec<_>>());
    assert_eq!(receipt.actions[0].reference.split(',').count(), parts - 1);

    // Everything there: nothing is posted.
    let all: Vec<Json> = (1..=parts).map(|part| earlier(part, MARKER)).collect();
    let mut http = slack(Json::Array(all));
    let receipt = run(&mut http, &mention(None), &answer(&long));
    assert_eq!(http.requests.len(), 1);
    assert_eq!(receipt.actions[0].reference, "already posted");
}

#[test]
fn the_thread_is_searched_page_by_page() {
    let mut pages = 0;
    let mut http = Recording::new(move |request| {
        if request.url.contains("/conversations.replies?") {
            pages += 1;
            let more = pages < 3;
            return Ok(Response::json_body(
                200,
                &json!({
                    "ok": true, "messages": [], "has_more": more,
                    "response_metadata": { "next_cursor": if more { format!("c{pages}=") } else { String::new() } },
                }),
            ));
        }
        Ok(Response::json_body(
            200,
            &json!({ "ok": true, "ts": "1.1" }),
        ))
    });
    run(&mut http, &mention(None), &answer("hi"));
    let urls: Vec<&str> = http
        .requests
        .iter()
        .map(|request| request.url.as_str())
        .collect();
    assert_eq!(urls.len(), 4, "{urls:?}");
    assert!(urls[1].ends_with("&cursor=c1%3D"), "{}", urls[1]);
    assert!(urls[2].ends_with("&cursor=c2%3D"), "{}", urls[2]);
}

#[test]
fn slash_commands_are_answered_at_their_response_url() {
    let event = StoredEvent::new(
        "slack",
        event("slash_command").attr("channel", "C2147483705").attr(
            "response_url",
            "https://hooks.slack.test/commands/1234/5678",
        ),
    );
    let mut http = Recording::accepting();
    let allowed = TaskResult {
        output: Some("Deployed & <done>".into()),
        labels: Some(Labels {
            add: vec!["eyes".into()],
            remove: Vec::new(),
        }),
        ..TaskResult::empty()
    };
    let receipt = write_back(
        &mut http,
        API,
        ResponseType::InChannel,
        &event,
        &allowed,
        MARKER,
    )
    .expect("answered");
    assert_eq!(
        http.requests.len(),
        1,
        "no reaction without a message: {:?}",
        http.requests
    );
    let request = &http.requests[0];
    assert_eq!(request.url, "https://hooks.slack.test/commands/1234/5678");
    assert_eq!(
        request.body_json().expect("json"),
        json!({ "text": "Deployed &amp; &lt;done&gt;", "response_type": "in_channel", "replace_original": false })
    );
    assert_eq!(
        receipt.actions[0].reference,
        "1 message(s) at the response_url"
    );
}

#[test]
fn labels_become_reactions_on_the_asking_message() {
    let mut http = Recording::new(|request| {
        let error = if request.url.ends_with("/reactions.add") {
            "already_reacted"
        } else {
            "no_reaction"
        };
        Ok(Response::json_body(
            200,
            &json!({ "ok": false, "error": error }),
        ))
    });
    let allowed = TaskResult {
        labels: Some(Labels {
            add: vec![":Eyes:".into(), " ".into()],
            remove: vec!["hourglass".into()],
        }),
        ..TaskResult::empty()
    };
    let receipt = run(&mut http, &mention(Some("1.0")), &allowed);
    let calls: Vec<(String, Json)> = http
        .requests
        .iter()
        .map(|request| (request.url.clone(), request.body_json().expect("json")))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "https://slack.test/api/reactions.add".to_owned(),
                json!({"channel": "C0LAN2Q65", "timestamp": "1515449522.000016", "name": "eyes"})
            ),
            (
                "https://slack.test/api/reactions.remove".to_owned(),
                json!({"channel": "C0LAN2Q65", "timestamp": "1515449522.000016", "name": "hourglass"})
            ),
        ]
    );
    let actions: Vec<&str> = receipt
        .actions
        .iter()
        .map(|action| action.action.as_str())
        .collect();
    assert_eq!(actions, ["reaction.add", "reaction.remove"]);
}

#[test]
fn failures_say_what_slack_answered_and_whether_to_retry() {
    let mut http = Recording::new(|request| {
        Ok(if request.url.contains("/conversations.replies?") {
            Response::json_body(200, &json!({ "ok": true, "messages": [] }))
        } else {
            Response::json_body(200, &json!({ "ok": false, "error": "not_in_channel" }))
        })
    });
    let error = write_back(
        &mut http,
        API,
        ResponseType::Ephemeral,
        &mention(None),
        &answer("hi"),
        MARKER,
    )
    .unwrap_err();
    assert!(!error.retryable);
    assert!(
        error
            .message
            .contains("Slack chat.postMessage answered not_in_channel"),
        "{}",
        error.message
    );

    let mut http = Recording::new(|_| Ok(Response::new(429, "").with_header("retry-after", "30")));
    let error = write_back(
        &mut http,
        API,
        ResponseType::Ephemeral,
        &mention(None),
        &answer("hi"),
        MARKER,
    )
    .unwrap_err();
    assert!(error.retryable);
    assert!(
        error.message.contains("retry after 30 s"),
        "{}",
        error.message
    );
}

#[test]
fn events_with_nowhere_to_answer_write_nothing() {
    let mut http = Recording::accepting();
    let event = StoredEvent::new("slack", event("team_join").attr("sender", "U1"));
    assert!(run(&mut http, &event, &answer("hi")).actions.is_empty());
    assert!(http.requests.is_empty());
}
