//! The bundled telegram plugin, compiled to wasm, on every Telegram fixture: the secret token
//! checked by the host, then type, actor, subject, attrs and bot commands. Called through the
//! library, as the daemon calls it.

use mecha::plugin::bindings::source::types;
use serde_json::{Value, json};

use crate::support::fixtures;
use crate::support::sources::{Source, attrs, request};

const TOKEN: &str = "telegram_test-token";

fn update(body: &[u8], token: Option<&str>) -> types::Request {
    let headers: Vec<(&str, String)> = token
        .map(|token| ("x-telegram-bot-api-secret-token", token.to_owned()))
        .into_iter()
        .collect();
    request(&headers, body)
}

#[tokio::test]
async fn every_fixture_parses_into_type_actor_subject_and_attrs() {
    let telegram = Source::bundled("telegram", &[("secret_token", TOKEN)]).await;
    // (fixture, type, actor, subject, update id, attrs that must have these values)
    let cases: Vec<(&str, &str, &str, &str, &str, Value)> = vec![
        (
            "message.text.json",
            "message",
            "Testusername",
            "1111111",
            "10000",
            json!({
                "sender": "Testusername", "from_id": 1111111, "chat_id": 1111111,
                "chat_type": "private", "text": "please summarise acme/widgets#42",
                "message_id": 1365, "update_id": "10000",
            }),
        ),
        (
            "edited_message.json",
            "edited_message",
            "Testusername",
            "1111111",
            "10002",
            json!({ "text": "please summarise acme/widgets#43", "message_id": 1365 }),
        ),
        (
            "channel_post.json",
            "channel_post",
            "Release notes",
            "-1009876543210",
            "10004",
            json!({
                "chat_id": -1009876543210i64, "chat_type": "channel",
                "chat_title": "Release notes", "text": "v2.3.0 is out",
            }),
        ),
        (
            "callback_query.json",
            "callback_query",
            "Testusername",
            "1111111",
            "10003",
            json!({
                "callback_data": "approve:task-5f2c", "callback_id": "4382bfdwdsb323b2d9",
                "chat_id": 1111111, "from_id": 1111111, "message_id": 1366,
            }),
        ),
        (
            "message.command_group.json",
            "message",
            "ana_dev",
            "-1001234567890",
            "10001",
            json!({
                "command": "review", "command_bot": "mecha_bot", "args": "acme/widgets#42",
                "chat_type": "supergroup", "chat_title": "Widgets team", "thread_id": 12,
            }),
        ),
    ];
    assert_eq!(
        cases.len(),
        fixtures::all("telegram").len(),
        "every Telegram fixture is covered"
    );
    for (file, event_type, actor, subject, update_id, expected) in cases {
        let body = fixtures::read("telegram", file);
        let event = telegram.one_event(update(&body, Some(TOKEN)), file).await;
        assert_eq!(event.event_type, event_type, "{file}");
        assert_eq!(event.actor, actor, "{file}");
        assert_eq!(event.subject, subject, "{file}");
        assert_eq!(event.delivery_id.as_deref(), Some(update_id), "{file}");
        let found = attrs(&event);
        for (name, value) in expected.as_object().expect("object") {
            assert_eq!(found.get(name), Some(value), "{file}: {name} in {found:?}");
        }
    }
}

#[tokio::test]
async fn inline_queries_carry_the_query() {
    let telegram = Source::bundled("telegram", &[("secret_token", TOKEN)]).await;
    let body = json!({
        "update_id": 10005,
        "inline_query": {
            "id": "inline-1",
            "from": { "id": 3333333, "is_bot": false, "first_name": "Kai" },
            "query": "widgets#42",
            "offset": ""
        }
    })
    .to_string();
    let event = telegram
        .one_event(update(body.as_bytes(), Some(TOKEN)), "inline")
        .await;
    assert_eq!(event.event_type, "inline_query");
    assert_eq!(event.actor, "Kai");
    let found = attrs(&event);
    assert_eq!(found["query"], "widgets#42");
    assert_eq!(found["inline_query_id"], "inline-1");
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthorized_and_never_parsed() {
    let telegram = Source::bundled("telegram", &[("secret_token", TOKEN)]).await;
    for token in [None, Some("wrong"), Some("")] {
        let (outcome, verified) = telegram.handle(update(b"not json", token)).await;
        assert!(!verified, "{token:?}");
        assert!(
            matches!(outcome, Err(types::Error::Unauthorized(_))),
            "{token:?}: {outcome:?}"
        );
    }
    let (outcome, verified) = telegram.handle(update(b"{}", Some(TOKEN))).await;
    assert!(verified);
    assert!(
        matches!(outcome, Err(types::Error::BadRequest(_))),
        "no update_id: {outcome:?}"
    );
}
