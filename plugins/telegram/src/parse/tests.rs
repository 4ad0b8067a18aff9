use super::*;

const MESSAGE_TEXT: &[u8] = include_bytes!("../../../../tests/fixtures/telegram/message.text.json");
const MESSAGE_COMMAND: &[u8] =
    include_bytes!("../../../../tests/fixtures/telegram/message.command_group.json");
const EDITED_MESSAGE: &[u8] =
    include_bytes!("../../../../tests/fixtures/telegram/edited_message.json");
const CALLBACK_QUERY: &[u8] =
    include_bytes!("../../../../tests/fixtures/telegram/callback_query.json");
const CHANNEL_POST: &[u8] = include_bytes!("../../../../tests/fixtures/telegram/channel_post.json");

const FIXTURES: [&[u8]; 5] = [
    MESSAGE_TEXT,
    MESSAGE_COMMAND,
    EDITED_MESSAGE,
    CALLBACK_QUERY,
    CHANNEL_POST,
];

fn update(body: &[u8]) -> Request {
    Request::post(&[("Content-Type", "application/json")], body)
}

/// The one event of an update, which must parse.
fn parse(body: &[u8]) -> Event {
    let events = request(&update(body)).unwrap_or_else(|err| panic!("{err:?}"));
    assert_eq!(events.len(), 1);
    events.into_iter().next().expect("one event")
}

fn bad_request(body: &[u8]) -> String {
    match request(&update(body)) {
        Err(Error::BadRequest(message)) => message,
        other => panic!("expected a bad request, got {other:?}"),
    }
}

fn absent(event: &Event, name: &str) {
    assert!(event.get_attr(name).is_none(), "{name} should be absent");
}

#[test]
fn private_text_message() {
    let event = parse(MESSAGE_TEXT);
    assert_eq!(event.event_type, "message");
    assert_eq!(event.delivery_id.as_deref(), Some("10000"));
    assert_eq!(event.text_attr("update_id"), Some("10000"));
    assert_eq!(event.actor, "Testusername");
    assert_eq!(event.subject, "1111111");
    assert_eq!(event.text_attr("sender"), Some("Testusername"));
    assert_eq!(event.integer_attr("from_id"), Some(1111111));
    assert_eq!(event.integer_attr("chat_id"), Some(1111111));
    assert_eq!(event.text_attr("chat_type"), Some("private"));
    absent(&event, "chat_title");
    assert_eq!(
        event.text_attr("text"),
        Some("please summarise acme/widgets#42")
    );
    assert_eq!(event.integer_attr("message_id"), Some(1365));
    absent(&event, "thread_id");
    absent(&event, "reply_to_message_id");
    absent(&event, "command");
    absent(&event, "args");
}

#[test]
fn command_in_a_group_topic() {
    let event = parse(MESSAGE_COMMAND);
    assert_eq!(event.event_type, "message");
    assert_eq!(event.delivery_id.as_deref(), Some("10001"));
    assert_eq!(event.text_attr("update_id"), Some("10001"));
    assert_eq!(event.actor, "ana_dev");
    assert_eq!(event.subject, "-1001234567890");
    assert_eq!(event.text_attr("sender"), Some("ana_dev"));
    assert_eq!(event.integer_attr("from_id"), Some(2222222));
    assert_eq!(event.integer_attr("chat_id"), Some(-1001234567890));
    assert_eq!(event.text_attr("chat_type"), Some("supergroup"));
    assert_eq!(event.text_attr("chat_title"), Some("Widgets team"));
    assert_eq!(
        event.text_attr("text"),
        Some("/review@mecha_bot acme/widgets#42")
    );
    assert_eq!(event.integer_attr("message_id"), Some(77));
    assert_eq!(event.integer_attr("thread_id"), Some(12));
    assert_eq!(event.text_attr("command"), Some("review"));
    assert_eq!(event.text_attr("command_bot"), Some("mecha_bot"));
    assert_eq!(event.text_attr("args"), Some("acme/widgets#42"));
}

#[test]
fn edited_message() {
    let event = parse(EDITED_MESSAGE);
    assert_eq!(event.event_type, "edited_message");
    assert_eq!(event.delivery_id.as_deref(), Some("10002"));
    assert_eq!(event.text_attr("update_id"), Some("10002"));
    assert_eq!(event.actor, "Testusername");
    assert_eq!(event.subject, "1111111");
    assert_eq!(event.integer_attr("from_id"), Some(1111111));
    assert_eq!(event.text_attr("chat_type"), Some("private"));
    assert_eq!(
        event.text_attr("text"),
        Some("please summarise acme/widgets#43")
    );
    assert_eq!(event.integer_attr("message_id"), Some(1365));
}

#[test]
fn callback_query() {
    let event = parse(CALLBACK_QUERY);
    assert_eq!(event.event_type, "callback_query");
    assert_eq!(event.delivery_id.as_deref(), Some("10003"));
    assert_eq!(event.text_attr("update_id"), Some("10003"));
    assert_eq!(event.actor, "Testusername");
    assert_eq!(event.subject, "1111111");
    assert_eq!(event.text_attr("sender"), Some("Testusername"));
    assert_eq!(event.integer_attr("from_id"), Some(1111111));
    assert_eq!(event.text_attr("callback_data"), Some("approve:task-5f2c"));
    assert_eq!(event.text_attr("callback_id"), Some("4382bfdwdsb323b2d9"));
    assert_eq!(event.integer_attr("chat_id"), Some(1111111));
    assert_eq!(event.integer_attr("message_id"), Some(1366));
    // The text of the bot's own message is not what the user sent.
    absent(&event, "text");
}

#[test]
fn channel_post_is_signed_by_its_channel() {
    let event = parse(CHANNEL_POST);
    assert_eq!(event.event_type, "channel_post");
    assert_eq!(event.delivery_id.as_deref(), Some("10004"));
    assert_eq!(event.text_attr("update_id"), Some("10004"));
    assert_eq!(event.actor, "Release notes");
    assert_eq!(event.text_attr("sender"), Some("Release notes"));
    assert_eq!(event.subject, "-1009876543210");
    assert_eq!(event.integer_attr("chat_id"), Some(-1009876543210));
    assert_eq!(event.text_attr("chat_type"), Some("channel"));
    assert_eq!(event.text_attr("chat_title"), Some("Release notes"));
    assert_eq!(event.text_attr("text"), Some("v2.3.0 is out"));
    assert_eq!(event.integer_attr("message_id"), Some(5));
    absent(&event, "from_id");

    let body = br#"{"update_id":3,"edited_channel_post":{"message_id":6,
        "sender_chat":{"id":-100,"title":"Signer"},"chat":{"id":-100,"title":"Chat"}}}"#;
    let event = parse(body);
    assert_eq!(event.event_type, "edited_channel_post");
    assert_eq!(event.actor, "Signer");
    // Outside channels a chat's title is no author.
    let body = br#"{"update_id":4,"message":{"chat":{"id":-5,"title":"Group"}}}"#;
    let event = parse(body);
    assert_eq!(event.actor, "");
    absent(&event, "sender");
}

#[test]
fn inline_query_falls_back_to_the_first_name() {
    let body = br#"{"update_id":5,"inline_query":{"id":"q1","from":{"id":7,"first_name":"Ana",
        "username":""},"query":"widgets","offset":""}}"#;
    let event = parse(body);
    assert_eq!(event.event_type, "inline_query");
    assert_eq!(event.actor, "Ana");
    assert_eq!(event.text_attr("sender"), Some("Ana"));
    assert_eq!(event.integer_attr("from_id"), Some(7));
    assert_eq!(event.text_attr("query"), Some("widgets"));
    assert_eq!(event.text_attr("inline_query_id"), Some("q1"));
    assert_eq!(event.subject, "");
}

#[test]
fn other_updates_are_typed_by_their_first_field() {
    let body = br#"{"update_id":6,"my_chat_member":{"chat":{"id":1}}}"#;
    assert_eq!(parse(body).event_type, "my_chat_member");
    // Document order, not alphabetical order, and `update_id` may come anywhere.
    let body = br#"{"zz_top":1,"update_id":7,"aa":2}"#;
    let event = parse(body);
    assert_eq!(event.event_type, "zz_top");
    assert_eq!(event.delivery_id.as_deref(), Some("7"));
    assert_eq!(parse(br#"{"update_id":8}"#).event_type, "unknown");
    for key in ["", "Weird Key", "emoji_🦀", "a\\nb"] {
        let body = format!(r#"{{"update_id":9,"{key}":1}}"#);
        assert_eq!(parse(body.as_bytes()).event_type, "unknown", "{key}");
    }
    let long = "a".repeat(MAX_TYPE_LEN + 1);
    let body = format!(r#"{{"update_id":9,"{long}":1}}"#);
    assert_eq!(parse(body.as_bytes()).event_type, "unknown");
    // The first known field wins over later ones.
    let body = br#"{"update_id":10,"inline_query":{"id":"a"},"message":{"chat":{"id":3}}}"#;
    assert_eq!(parse(body).event_type, "inline_query");
}

#[test]
fn captions_replies_and_negative_ids() {
    let body = r#"{"update_id":-11,"message":{"message_id":2,"chat":{"id":1,"type":"private"},
        "caption":"/review now","caption_entities":[{"type":"bot_command","offset":0,"length":7}],
        "reply_to_message":{"message_id":1,"text":"earlier","reply_to_message":{"message_id":0}}}}"#;
    let event = parse(body.as_bytes());
    assert_eq!(event.delivery_id.as_deref(), Some("-11"));
    assert_eq!(event.text_attr("text"), Some("/review now"));
    assert_eq!(event.text_attr("command"), Some("review"));
    absent(&event, "command_bot");
    assert_eq!(event.text_attr("args"), Some("now"));
    assert_eq!(event.integer_attr("reply_to_message_id"), Some(1));
}

#[test]
fn command_offsets_count_utf16_units() {
    // `🦀` takes two UTF-16 units: `/revi🦀ew@b` is 11 units long, 13 bytes.
    let body = r#"{"update_id":12,"message":{"chat":{"id":1},"text":"/revi🦀ew@b 🦀 args",
        "entities":[{"type":"bot_command","offset":0,"length":11}]}}"#;
    let event = parse(body.as_bytes());
    assert_eq!(event.text_attr("command"), Some("revi🦀ew"));
    assert_eq!(event.text_attr("command_bot"), Some("b"));
    assert_eq!(event.text_attr("args"), Some("🦀 args"));
    // Emoji before the command: it is not at the start, so it is no command.
    let body = r#"{"update_id":13,"message":{"chat":{"id":1},"text":"🦀🦀 /review x",
        "entities":[{"type":"bot_command","offset":5,"length":7}]}}"#;
    absent(&parse(body.as_bytes()), "command");
}

#[test]
fn hostile_entities_never_panic() {
    for (offset, length) in [
        ("0", "-1"),
        ("0", "0"),
        ("0", "2"),
        ("0", "1000000"),
        ("0", "9223372036854775807"),
        ("0", "-9223372036854775808"),
        ("-1", "4"),
        ("9223372036854775807", "1"),
    ] {
        let body = format!(
            r#"{{"update_id":14,"message":{{"chat":{{"id":1}},"text":"/🦀 é",
            "entities":[{{"type":"bot_command","offset":{offset},"length":{length}}}]}}}}"#
        );
        let event = parse(body.as_bytes());
        absent(&event, "command");
        assert_eq!(event.text_attr("text"), Some("/🦀 é"));
    }
    for (offset, length) in [
        ("0", "1e300"),
        ("0", "99999999999999999999"),
        ("\"0\"", "3"),
        ("0.5", "3"),
    ] {
        let body = format!(
            r#"{{"update_id":15,"message":{{"text":"/go",
            "entities":[{{"type":"bot_command","offset":{offset},"length":{length}}}]}}}}"#
        );
        bad_request(body.as_bytes());
    }
}

#[test]
fn update_id_must_be_an_integer() {
    let missing = bad_request(br#"{"message":{"chat":{"id":1}}}"#);
    assert!(missing.contains("update_id"), "{missing}");
    for body in [
        &br#"{"update_id":"10000"}"#[..],
        br#"{"update_id":1.5}"#,
        br#"{"update_id":null}"#,
        br#"{"update_id":18446744073709551615}"#,
        br#"{"update_id":1,"update_id":2}"#,
    ] {
        bad_request(body);
    }
}

#[test]
fn bodies_that_are_not_updates_are_bad_requests() {
    for body in [
        &b""[..],
        b"not json",
        b"null",
        b"5",
        b"[]",
        b"[10000]",
        b"\"update\"",
        &[0xff, 0xfe, 0x00][..],
        br#"{"update_id":1,"message":null}"#,
        br#"{"update_id":1,"message":{"chat":{"id":"one"}}}"#,
        br#"{"update_id":1,"callback_query":[]}"#,
    ] {
        bad_request(body);
    }
    let deep = format!(
        r#"{{"update_id":1,"message":{{"entities":[{}{}]}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    bad_request(deep.as_bytes());
}

#[test]
fn every_prefix_of_every_fixture_is_an_event_or_a_bad_request() {
    for fixture in FIXTURES {
        for end in 0..fixture.len() {
            let result = request(&update(&fixture[..end]));
            assert!(
                matches!(result, Ok(_) | Err(Error::BadRequest(_))),
                "{end} bytes: {result:?}"
            );
        }
    }
}
