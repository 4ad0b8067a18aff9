//! Events API payloads: the `url_verification` handshake, `event_callback` deliveries and
//! `app_rate_limited` notices. The mapping is listed in [`crate::parse`].

use mecha_plugin_sdk::source::{self, Error, Event, Header, Outcome, Reply, Request};
use serde_json::{Value as Json, json};

use crate::parse::{id, set_scalar, set_text, string};

/// Sent by Slack on a redelivery: how many times it has retried. The retry carries the same
/// `event_id`, so the host's deduplication by delivery id already recognises it; the count is only
/// recorded.
const RETRY_NUM_HEADER: &str = "X-Slack-Retry-Num";

/// Sent with [`RETRY_NUM_HEADER`]: why Slack retried, e.g. `http_timeout`.
const RETRY_REASON_HEADER: &str = "X-Slack-Retry-Reason";

/// The outcome of one Events API payload (a JSON object).
pub fn outcome(payload: &Json, request: &Request) -> Result<Outcome, Error> {
    let kind = string(payload, "type")
        .ok_or_else(|| Error::BadRequest("the Slack payload has no type".into()))?;
    match kind {
        "url_verification" => challenge_reply(payload).map(Outcome::Reply),
        "event_callback" => Ok(Outcome::Events(vec![event_callback(payload, request)?])),
        "app_rate_limited" => Ok(Outcome::Events(Vec::new())),
        other => Err(Error::BadRequest(format!(
            "unsupported Slack payload type {other:?}; this source handles url_verification, \
             event_callback and app_rate_limited"
        ))),
    }
}

/// The handshake Slack sends when the request URL is set: echo the challenge.
fn challenge_reply(payload: &Json) -> Result<Reply, Error> {
    let challenge = string(payload, "challenge")
        .filter(|challenge| !challenge.is_empty())
        .ok_or_else(|| Error::BadRequest("url_verification payload has no challenge".into()))?;
    Ok(Reply {
        status: 200,
        headers: vec![Header {
            name: "content-type".into(),
            value: "application/json".into(),
        }],
        body: json!({ "challenge": challenge }).to_string().into_bytes(),
    })
}

fn event_callback(payload: &Json, request: &Request) -> Result<Event, Error> {
    let inner = payload
        .get("event")
        .filter(|inner| inner.is_object())
        .ok_or_else(|| Error::BadRequest("event_callback payload has no event object".into()))?;
    let base_type = string(inner, "type")
        .filter(|kind| !kind.is_empty())
        .ok_or_else(|| {
            Error::BadRequest("the event object of event_callback has no type".into())
        })?;
    let event_type = match string(inner, "subtype").filter(|subtype| !subtype.is_empty()) {
        Some(subtype) => format!("{base_type}.{subtype}"),
        None => base_type.to_owned(),
    };
    // `message_changed` and similar subtypes carry the message itself one level down.
    let message = inner.get("message");
    let actor = id(inner, "user")
        .or_else(|| message.and_then(|message| id(message, "user")))
        .or_else(|| id(inner, "bot_id"));
    let channel = id(inner, "channel");

    let mut event = source::event(event_type)
        .actor(actor.unwrap_or_default())
        .subject(channel.unwrap_or_default());
    if let Some(event_id) = string(payload, "event_id").filter(|event_id| !event_id.is_empty()) {
        event = event.delivery_id(event_id).attr("event_id", event_id);
    }
    set_text(&mut event, "sender", actor);
    set_text(&mut event, "channel", channel);
    let text = inner
        .get("text")
        .or_else(|| message.and_then(|message| message.get("text")));
    set_scalar(&mut event, "text", text);
    set_scalar(&mut event, "ts", inner.get("ts"));
    set_scalar(&mut event, "event_ts", inner.get("event_ts"));
    set_text(
        &mut event,
        "team_id",
        id(payload, "team_id").or_else(|| id(inner, "team")),
    );
    set_scalar(&mut event, "api_app_id", payload.get("api_app_id"));
    set_scalar(&mut event, "channel_type", inner.get("channel_type"));
    set_scalar(&mut event, "bot_id", inner.get("bot_id"));
    add_thread(&mut event, inner, message);
    add_retry(&mut event, request)?;
    Ok(event)
}

/// `thread_ts` and `is_thread_reply`. Both timestamps come from the same message (the event, or
/// the edited message one level down), so an edit of a thread reply is still a reply. A thread's
/// parent has `thread_ts == ts` and is not a reply.
fn add_thread(event: &mut Event, inner: &Json, message: Option<&Json>) {
    let own = Some(inner)
        .filter(|inner| string(inner, "thread_ts").is_some())
        .or(message);
    let thread_ts = own.and_then(|own| string(own, "thread_ts"));
    let ts = own.and_then(|own| string(own, "ts"));
    set_text(event, "thread_ts", thread_ts);
    event.set_attr(
        "is_thread_reply",
        thread_ts.is_some_and(|thread_ts| Some(thread_ts) != ts),
    );
}

/// `retry_num` and `retry_reason` from Slack's retry headers; neither touches the delivery id.
fn add_retry(event: &mut Event, request: &Request) -> Result<(), Error> {
    if let Some(retry_num) = request.header(RETRY_NUM_HEADER) {
        let retry_num: i64 = retry_num
            .trim()
            .parse()
            .map_err(|_| Error::BadRequest(format!("{RETRY_NUM_HEADER} must be an integer")))?;
        event.set_attr("retry_num", retry_num);
    }
    set_text(event, "retry_reason", request.header(RETRY_REASON_HEADER));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::parse::request;
    use crate::parse::tests::{bad_request, one_event, post};
    use mecha_plugin_sdk::source::{Error, Outcome, Value};

    const MESSAGE_THREAD: &[u8] =
        include_bytes!("../../../tests/fixtures/slack/event_callback.message_thread.json");

    fn callback(event: &str) -> Vec<u8> {
        format!(r#"{{"type":"event_callback","event_id":"Ev1","team_id":"T1","event":{event}}}"#)
            .into_bytes()
    }

    #[test]
    fn retries_add_attrs_but_keep_the_delivery_id() {
        let first = one_event(request(&post(None, &[], MESSAGE_THREAD)));
        let retry = one_event(request(&post(
            None,
            &[
                ("X-Slack-Retry-Num", "2"),
                ("X-Slack-Retry-Reason", "http_timeout"),
            ],
            MESSAGE_THREAD,
        )));
        assert_eq!(first.delivery_id, retry.delivery_id);
        assert!(first.get_attr("retry_num").is_none());
        assert!(matches!(
            retry.get_attr("retry_num"),
            Some(Value::Integer(2))
        ));
        assert_eq!(retry.text_attr("retry_reason"), Some("http_timeout"));
        let message = bad_request(request(&post(
            None,
            &[("X-Slack-Retry-Num", "two")],
            MESSAGE_THREAD,
        )));
        assert!(message.contains("X-Slack-Retry-Num"), "{message}");
    }

    #[test]
    fn channel_and_user_objects_give_their_ids() {
        let body = callback(
            r#"{"type":"channel_created","channel":{"id":"C9","name":"new"},"user":{"id":"U9"}}"#,
        );
        let event = one_event(request(&post(None, &[], &body)));
        assert_eq!(event.event_type, "channel_created");
        assert_eq!(event.subject, "C9");
        assert_eq!(event.actor, "U9");
        assert_eq!(event.text_attr("channel"), Some("C9"));
    }

    #[test]
    fn bots_are_actors_and_the_team_can_come_from_the_event() {
        let body = format!(
            r#"{{"type":"event_callback","event":{}}}"#,
            r#"{"type":"message","subtype":"bot_message","bot_id":"B1","channel":"C1","team":"T7","ts":"1.0","thread_ts":"1.0"}"#
        );
        let event = one_event(request(&post(None, &[], body.as_bytes())));
        assert_eq!(event.event_type, "message.bot_message");
        assert_eq!(event.actor, "B1");
        assert_eq!(event.text_attr("bot_id"), Some("B1"));
        assert_eq!(event.text_attr("team_id"), Some("T7"));
        assert_eq!(event.delivery_id, None);
        // The parent of a thread is not a reply.
        assert_eq!(event.text_attr("thread_ts"), Some("1.0"));
        assert_eq!(event.boolean_attr("is_thread_reply"), Some(false));
    }

    #[test]
    fn an_edited_thread_reply_is_still_a_reply() {
        let body = callback(
            r#"{"type":"message","subtype":"message_changed","channel":"C1","ts":"9.0",
                "message":{"user":"U1","text":"fixed","ts":"2.0","thread_ts":"1.0"}}"#,
        );
        let event = one_event(request(&post(None, &[], &body)));
        assert_eq!(event.text_attr("thread_ts"), Some("1.0"));
        assert_eq!(event.boolean_attr("is_thread_reply"), Some(true));
        assert_eq!(event.text_attr("text"), Some("fixed"));
    }

    #[test]
    fn rate_limit_notices_store_nothing() {
        let body = br#"{"token":"x","type":"app_rate_limited","team_id":"T1","minute_rate_limited":1518467820,"api_app_id":"A1"}"#;
        assert!(matches!(
            request(&post(None, &[], body)),
            Ok(Outcome::Events(events)) if events.is_empty()
        ));
    }

    #[test]
    fn malformed_payloads_name_what_is_missing() {
        for (body, expected) in [
            (
                &br#"{"type":"block_suggestion"}"#[..],
                "\"block_suggestion\"",
            ),
            (br#"{"challenge":"c"}"#, "no type"),
            (br#"{"type":"url_verification"}"#, "challenge"),
            (br#"{"type":"url_verification","challenge":7}"#, "challenge"),
            (br#"{"type":"event_callback"}"#, "event object"),
            (br#"{"type":"event_callback","event":"x"}"#, "event object"),
            (
                br#"{"type":"event_callback","event":{"user":"U1"}}"#,
                "no type",
            ),
        ] {
            let message = bad_request(request(&post(None, &[], body)));
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn odd_field_types_are_skipped_not_fatal() {
        let body = callback(r#"{"type":"message","user":5,"channel":["C1"],"text":null,"ts":1}"#);
        let event = one_event(request(&post(None, &[], &body)));
        assert_eq!(event.actor, "");
        assert_eq!(event.subject, "");
        assert!(event.get_attr("sender").is_none());
        assert!(event.get_attr("text").is_none());
        assert!(matches!(event.get_attr("ts"), Some(Value::Integer(1))));
        assert!(matches!(
            request(&post(None, &[], b"{\"type\":null}")),
            Err(Error::BadRequest(_))
        ));
    }
}
