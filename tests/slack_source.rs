//! The bundled slack plugin, compiled to wasm, called through the library as the daemon calls
//! it: Slack's published signature vector with the plugin's clock set to the vector's time, the
//! 300-second replay window both ways, the handshake, and every fixture's type, actor, subject
//! and attrs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mecha::plugin::bindings::source::{Outcome, types};
use serde_json::json;

use crate::support::fixtures;
use crate::support::sources::{Source, attrs, request};

const SECRET: &str = "slack-test-secret";

/// Slack's published vector (its request-signing documentation).
const VECTOR_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const VECTOR_TIMESTAMP: u64 = 1_531_420_618;
const VECTOR_SIGNATURE: &str =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

fn at(seconds: u64) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

fn signed(body: &[u8], content_type: &str, secret: &str, timestamp: u64) -> types::Request {
    request(
        &[
            ("content-type", content_type.to_owned()),
            ("x-slack-request-timestamp", timestamp.to_string()),
            (
                "x-slack-signature",
                mecha::signature::slack_signature(secret.as_bytes(), timestamp as i64, body),
            ),
        ],
        body,
    )
}

#[tokio::test]
async fn the_published_vector_verifies_at_its_time_and_not_outside_the_window() {
    let mut slack = Source::bundled("slack", &[("signing_secret", VECTOR_SECRET)]).await;
    let body = fixtures::read("slack", "signature_vector.form");
    let vector = request(
        &[
            (
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("x-slack-request-timestamp", VECTOR_TIMESTAMP.to_string()),
            ("x-slack-signature", VECTOR_SIGNATURE.to_owned()),
        ],
        &body,
    );
    for (offset, accepted) in [
        (0i64, true),
        (300, true),
        (-300, true),
        (301, false),
        (-301, false),
    ] {
        slack.call.clock = at(VECTOR_TIMESTAMP.saturating_add_signed(offset));
        let (outcome, verified) = slack.handle(vector.clone()).await;
        if accepted {
            assert!(verified, "{offset}: {outcome:?}");
            let Ok(Outcome::Events(events)) = outcome else {
                panic!("{offset}: {outcome:?}");
            };
            assert_eq!(events[0].event_type, "slash_command");
            assert_eq!(attrs(&events[0])["command"], "/webhook-collect");
        } else {
            assert!(!verified, "{offset}");
            assert!(
                matches!(outcome, Err(types::Error::Unauthorized(_))),
                "{offset}: {outcome:?}"
            );
        }
    }
    // One changed byte, at the vector's time.
    slack.call.clock = at(VECTOR_TIMESTAMP);
    let mut tampered = vector.clone();
    tampered.body[0] = b'T';
    let (outcome, verified) = slack.handle(tampered).await;
    assert!(!verified);
    assert!(
        matches!(outcome, Err(types::Error::Unauthorized(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_handshake_is_answered_only_when_signed() {
    let mut slack = Source::bundled("slack", &[("signing_secret", SECRET)]).await;
    let now = 1_700_000_000;
    slack.call.clock = at(now);
    let body = fixtures::read("slack", "url_verification.json");
    let (outcome, verified) = slack
        .handle(signed(&body, "application/json", SECRET, now))
        .await;
    assert!(verified);
    let Ok(Outcome::Reply(reply)) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(reply.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(
        body,
        json!({ "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" })
    );
    assert!(
        reply
            .headers
            .iter()
            .any(|header| header.name == "content-type" && header.value == "application/json")
    );
    let (outcome, _) = slack
        .handle(signed(
            &fixtures::read("slack", "url_verification.json"),
            "application/json",
            "wrong",
            now,
        ))
        .await;
    assert!(
        matches!(outcome, Err(types::Error::Unauthorized(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn every_fixture_parses_into_type_actor_subject_and_attrs() {
    let mut slack = Source::bundled("slack", &[("signing_secret", SECRET)]).await;
    let now = 1_700_000_000;
    slack.call.clock = at(now);
    let event = |name: &'static str, content_type: &'static str| {
        let slack = &slack;
        async move {
            let body = fixtures::read("slack", name);
            slack
                .one_event(signed(&body, content_type, SECRET, now), name)
                .await
        }
    };

    let mention = event("event_callback.app_mention.json", "application/json").await;
    assert_eq!(mention.event_type, "app_mention");
    assert_eq!(mention.actor, "U061F7AUR");
    assert_eq!(mention.subject, "C0LAN2Q65");
    assert_eq!(mention.delivery_id.as_deref(), Some("Ev0LAN670R"));
    let found = attrs(&mention);
    assert_eq!(found["sender"], "U061F7AUR");
    assert_eq!(found["channel"], "C0LAN2Q65");
    assert_eq!(
        found["text"],
        "<@U0LAN0Z89> please review https://github.com/acme/widgets/pull/42"
    );
    assert_eq!(found["ts"], "1515449522.000016");
    assert_eq!(found["team_id"], "T061EG9R6");
    assert!(
        !found.contains_key("token"),
        "Slack's verification token is never kept"
    );

    let edited = event("event_callback.message_changed.json", "application/json").await;
    assert_eq!(edited.event_type, "message.message_changed");
    assert_eq!(edited.actor, "U2147483697");
    assert_eq!(edited.subject, "C2147483705");
    assert_eq!(attrs(&edited)["text"], "Hello, world!");

    let reply = event("event_callback.message_thread.json", "application/json").await;
    assert_eq!(reply.event_type, "message");
    assert_eq!(reply.actor, "U2147483697");
    let found = attrs(&reply);
    assert_eq!(found["thread_ts"], "1355517523.000005");
    assert_eq!(found["ts"], "1355517536.000001");
    assert_eq!(found["is_thread_reply"], true);
    assert_eq!(found["text"], "Can you also update the changelog?");

    let command = event("slash_command.form", "application/x-www-form-urlencoded").await;
    assert_eq!(command.event_type, "slash_command");
    assert_eq!(command.actor, "Steve");
    assert_eq!(command.subject, "C2147483705");
    assert_eq!(
        command.delivery_id.as_deref(),
        Some("13345224609.738474920.8088930838d88f008e0")
    );
    let found = attrs(&command);
    assert_eq!(found["command"], "/mecha");
    assert_eq!(found["text"], "review acme/widgets#42");
    assert_eq!(
        found["response_url"],
        "https://hooks.slack.com/commands/1234/5678"
    );
    assert!(!found.contains_key("token"));
}

#[tokio::test]
async fn interactive_payloads_are_parsed_from_their_form() {
    let mut slack = Source::bundled("slack", &[("signing_secret", SECRET)]).await;
    let now = 1_700_000_000;
    slack.call.clock = at(now);
    let payload = json!({
        "type": "block_actions",
        "user": { "id": "U123", "username": "ana", "team_id": "T1" },
        "team": { "id": "T1", "domain": "acme" },
        "channel": { "id": "C9", "name": "reviews" },
        "trigger_id": "123.456.abc",
        "response_url": "https://hooks.slack.com/actions/T1/1/abc",
        "actions": [{ "action_id": "approve", "block_id": "b", "value": "pr-42", "type": "button" }]
    });
    let body = format!("payload={}", percent(&payload.to_string()));
    let event = slack
        .one_event(
            signed(
                body.as_bytes(),
                "application/x-www-form-urlencoded",
                SECRET,
                now,
            ),
            "block_actions",
        )
        .await;
    assert_eq!(event.event_type, "interactive.block_actions");
    assert_eq!(event.actor, "ana");
    assert_eq!(event.subject, "C9");
    let found = attrs(&event);
    assert_eq!(found["action_id"], "approve");
    assert_eq!(found["value"], "pr-42");
    assert_eq!(event.delivery_id.as_deref(), Some("123.456.abc"));
}

/// Form encoding, as Slack sends it.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
