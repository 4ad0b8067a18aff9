//! Everything after the signature check: a verified Slack request to an [`Outcome`].
//!
//! Slack posts three kinds of body to the same URL; this module tells them apart and hands each to
//! its own module:
//!
//! | body | recognised by | module | outcome |
//! |---|---|---|---|
//! | Events API JSON | `Content-Type: application/json`, else a body starting with `{` | `events` | see below |
//! | slash command | a form with a `command` field | `slash_command` | one `slash_command` event |
//! | interactive payload | a form with a `payload` field holding JSON | `interactive` | one `interactive.<type>` event |
//!
//! A form is `application/x-www-form-urlencoded`, or any body that is not JSON by the rule above.
//! A form with both fields is taken as interactive, since Slack never sends `command` there.
//!
//! Events API payloads, by their top-level `type`:
//! - `url_verification`: a 200 reply `{"challenge":"<challenge>"}`; nothing is stored.
//! - `event_callback`: one event. Type `<event.type>[.<event.subtype>]`, delivery id `event_id`,
//!   actor `event.user`, else `event.message.user` (edits), else `event.bot_id`; subject
//!   `event.channel` (or its `id` when it is an object). Attrs `sender`, `channel`, `text`,
//!   `thread_ts`, `is_thread_reply`, `ts`, `event_ts`, `event_id`, `team_id`, `api_app_id`,
//!   `channel_type`, `bot_id`, and `retry_num`/`retry_reason` from Slack's retry headers.
//! - `app_rate_limited`: no events. Slack only tells the app it is dropping events and wants a 200.
//! - anything else: `bad-request` naming the type, so a new kind of payload is noticed rather
//!   than silently stored as something it is not.
//!
//! Slash commands: actor `user_name` (else `user_id`), subject `channel_id`, delivery id
//! `trigger_id`; attrs `command`, `text`, `sender`, `user_id`, `channel`, `channel_name`,
//! `team_id`, `team_domain`, `response_url`, `trigger_id`. Slack's deprecated verification
//! `token` is never copied: the signature has already authenticated the request.
//!
//! Interactive payloads: actor `user.username`, else `user.name`, else `user.id`; subject
//! `channel.id`; delivery id `trigger_id`; attrs `sender`, `user_id`, `channel`, `team_id`,
//! `trigger_id`, `callback_id`, `response_url`, and for `block_actions` the first action's
//! `action_id` and `value`.
//!
//! Everything here is pure and total: any input gives an outcome or a `bad-request`, never a
//! panic, so it can be fuzzed natively.

use mecha_plugin_sdk::source::{self, Error, Event, Outcome, Request, Value};
use serde_json::Value as Json;

use crate::events;
use crate::form::Form;
use crate::interactive;
use crate::slash_command;

/// The outcome of one verified Slack request.
pub fn request(request: &Request) -> Result<Outcome, Error> {
    if request.body.trim_ascii().is_empty() {
        return Err(Error::BadRequest("the body is empty".into()));
    }
    if is_json(request) {
        let payload = Json::Object(source::json_object(&request.body)?);
        return events::outcome(&payload, request);
    }
    let form = Form::decode(&request.body)?;
    let event = if let Some(payload) = form.get("payload") {
        interactive::event(payload)?
    } else if form.get("command").is_some() {
        slash_command::event(&form)?
    } else {
        return Err(Error::BadRequest(
            "the form has neither a command nor a payload field, so it is not a Slack slash \
             command or interactive payload"
                .into(),
        ));
    };
    Ok(Outcome::Events(vec![event]))
}

/// Whether the body is Events API JSON: by its declared media type when it is JSON or a form,
/// otherwise (no or another content type) by whether it starts with `{`.
fn is_json(request: &Request) -> bool {
    let media_type = request.header("content-type").map(|value| {
        value
            .split_once(';')
            .map_or(value, |(media_type, _)| media_type)
            .trim()
    });
    match media_type {
        Some(media_type) if media_type.eq_ignore_ascii_case("application/json") => true,
        Some(media_type)
            if media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") =>
        {
            false
        }
        _ => request.body.trim_ascii_start().first() == Some(&b'{'),
    }
}

/// The string field `key` of `value`; `None` when `value` is not an object or the field is
/// missing or not a string.
pub(crate) fn string<'a>(value: &'a Json, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str()
}

/// A non-empty Slack id at `key`. Slack sends some references (`channel`, `user`, `team`) as the
/// id itself in some payloads and as an object with an `id` in others; both are accepted.
pub(crate) fn id<'a>(value: &'a Json, key: &str) -> Option<&'a str> {
    let id = match value.get(key)? {
        Json::Object(object) => object.get("id")?.as_str(),
        other => other.as_str(),
    }?;
    Some(id).filter(|id| !id.is_empty())
}

/// Sets the attr `name` to a JSON scalar, when there is one.
pub(crate) fn set_scalar(event: &mut Event, name: &str, json: Option<&Json>) {
    if let Some(value) = json.and_then(Value::from_json) {
        event.set_attr(name, value);
    }
}

/// Sets the attr `name` to `text`, when there is one.
pub(crate) fn set_text(event: &mut Event, name: &str, text: Option<&str>) {
    if let Some(text) = text {
        event.set_attr(name, text);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mecha_plugin_sdk::source::Header;

    const APP_MENTION: &[u8] =
        include_bytes!("../../../tests/fixtures/slack/event_callback.app_mention.json");
    const MESSAGE_CHANGED: &[u8] =
        include_bytes!("../../../tests/fixtures/slack/event_callback.message_changed.json");
    const MESSAGE_THREAD: &[u8] =
        include_bytes!("../../../tests/fixtures/slack/event_callback.message_thread.json");
    const URL_VERIFICATION: &[u8] =
        include_bytes!("../../../tests/fixtures/slack/url_verification.json");
    const SLASH_COMMAND: &[u8] = include_bytes!("../../../tests/fixtures/slack/slash_command.form");
    const SIGNATURE_VECTOR: &[u8] =
        include_bytes!("../../../tests/fixtures/slack/signature_vector.form");

    const JSON: &str = "application/json";
    const FORM: &str = "application/x-www-form-urlencoded";

    pub(crate) fn post(content_type: Option<&str>, extra: &[(&str, &str)], body: &[u8]) -> Request {
        let headers = content_type
            .map(|value| ("Content-Type", value))
            .into_iter()
            .chain(extra.iter().copied())
            .map(|(name, value)| Header {
                name: name.to_owned(),
                value: value.to_owned(),
            })
            .collect();
        Request {
            method: "POST".into(),
            query: String::new(),
            headers,
            body: body.to_vec(),
        }
    }

    pub(crate) fn one_event(result: Result<Outcome, Error>) -> Event {
        match result {
            Ok(Outcome::Events(mut events)) if events.len() == 1 => events.remove(0),
            other => panic!("expected one event, got {other:?}"),
        }
    }

    pub(crate) fn bad_request(result: Result<Outcome, Error>) -> String {
        match result {
            Err(Error::BadRequest(message)) => message,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn app_mention() {
        let event = one_event(request(&post(Some(JSON), &[], APP_MENTION)));
        assert_eq!(event.event_type, "app_mention");
        assert_eq!(event.actor, "U061F7AUR");
        assert_eq!(event.subject, "C0LAN2Q65");
        assert_eq!(event.delivery_id.as_deref(), Some("Ev0LAN670R"));
        assert_eq!(event.text_attr("sender"), Some("U061F7AUR"));
        assert_eq!(event.text_attr("channel"), Some("C0LAN2Q65"));
        assert_eq!(
            event.text_attr("text"),
            Some("<@U0LAN0Z89> please review https://github.com/acme/widgets/pull/42")
        );
        assert_eq!(event.text_attr("ts"), Some("1515449522.000016"));
        assert_eq!(event.text_attr("event_ts"), Some("1515449522000016"));
        assert_eq!(event.text_attr("event_id"), Some("Ev0LAN670R"));
        assert_eq!(event.text_attr("team_id"), Some("T061EG9R6"));
        assert_eq!(event.text_attr("api_app_id"), Some("A0MDYCDME"));
        assert_eq!(event.boolean_attr("is_thread_reply"), Some(false));
        for absent in ["thread_ts", "channel_type", "bot_id", "retry_num", "token"] {
            assert!(event.get_attr(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn message_changed_takes_the_edited_message() {
        let event = one_event(request(&post(Some(JSON), &[], MESSAGE_CHANGED)));
        assert_eq!(event.event_type, "message.message_changed");
        assert_eq!(event.actor, "U2147483697");
        assert_eq!(event.subject, "C2147483705");
        assert_eq!(event.delivery_id.as_deref(), Some("Ev0PV52K25"));
        assert_eq!(event.text_attr("sender"), Some("U2147483697"));
        assert_eq!(event.text_attr("text").expect("text"), "Hello, world!");
        assert_eq!(event.text_attr("ts"), Some("1358878755.000001"));
        assert_eq!(event.text_attr("event_ts"), Some("1358878755.000001"));
        assert_eq!(event.text_attr("team_id"), Some("T061EG9R6"));
        assert!(event.get_attr("thread_ts").is_none());
        assert_eq!(event.boolean_attr("is_thread_reply"), Some(false));
    }

    #[test]
    fn a_reply_in_a_thread() {
        let event = one_event(request(&post(Some(JSON), &[], MESSAGE_THREAD)));
        assert_eq!(event.event_type, "message");
        assert_eq!(event.actor, "U2147483697");
        assert_eq!(event.subject, "C2147483705");
        assert_eq!(event.delivery_id.as_deref(), Some("Ev0PV52K21"));
        assert_eq!(
            event.text_attr("text"),
            Some("Can you also update the changelog?")
        );
        assert_eq!(event.text_attr("ts"), Some("1355517536.000001"));
        assert_eq!(event.text_attr("thread_ts"), Some("1355517523.000005"));
        assert_eq!(event.boolean_attr("is_thread_reply"), Some(true));
        assert_eq!(event.text_attr("channel_type"), Some("channel"));
        assert_eq!(event.text_attr("team_id"), Some("T061EG9R6"));
    }

    #[test]
    fn url_verification_replies_with_the_challenge() {
        let outcome = request(&post(Some(JSON), &[], URL_VERIFICATION));
        let Ok(Outcome::Reply(reply)) = outcome else {
            panic!("expected a reply, got {outcome:?}");
        };
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers.len(), 1);
        assert_eq!(reply.headers[0].name, "content-type");
        assert_eq!(reply.headers[0].value, "application/json");
        assert_eq!(
            reply.body,
            br#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#
        );
    }

    #[test]
    fn slash_command_fixture() {
        let event = one_event(request(&post(Some(FORM), &[], SLASH_COMMAND)));
        assert_eq!(event.event_type, "slash_command");
        assert_eq!(event.actor, "Steve");
        assert_eq!(event.subject, "C2147483705");
        assert_eq!(
            event.delivery_id.as_deref(),
            Some("13345224609.738474920.8088930838d88f008e0")
        );
        assert_eq!(event.text_attr("command"), Some("/mecha"));
        assert_eq!(event.text_attr("text"), Some("review acme/widgets#42"));
        assert_eq!(event.text_attr("sender"), Some("Steve"));
        assert_eq!(event.text_attr("user_id"), Some("U2147483697"));
        assert_eq!(event.text_attr("channel"), Some("C2147483705"));
        assert_eq!(event.text_attr("channel_name"), Some("test"));
        assert_eq!(event.text_attr("team_id"), Some("T0001"));
        assert_eq!(event.text_attr("team_domain"), Some("example"));
        assert_eq!(
            event.text_attr("response_url"),
            Some("https://hooks.slack.com/commands/1234/5678")
        );
        assert_eq!(
            event.text_attr("trigger_id"),
            Some("13345224609.738474920.8088930838d88f008e0")
        );
        assert!(event.get_attr("token").is_none());
        assert_eq!(event.attrs.len(), 10);
    }

    #[test]
    fn the_signature_vector_is_a_slash_command_with_escapes() {
        let event = one_event(request(&post(Some(FORM), &[], SIGNATURE_VECTOR)));
        assert_eq!(event.event_type, "slash_command");
        assert_eq!(event.actor, "roadrunner");
        assert_eq!(event.subject, "G8PSS9T3V");
        assert_eq!(event.text_attr("command"), Some("/webhook-collect"));
        assert_eq!(event.text_attr("text"), Some(""));
        assert_eq!(
            event.text_attr("response_url"),
            Some(
                "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"
            )
        );
        assert!(event.get_attr("token").is_none());
    }

    #[test]
    fn content_type_decides_and_sniffing_is_the_fallback() {
        let json = Some("Application/JSON; charset=utf-8");
        let form = Some("application/x-www-form-urlencoded; charset=UTF-8");
        for (content_type, body, expected) in [
            (json, APP_MENTION, "app_mention"),
            (form, SLASH_COMMAND, "slash_command"),
            (None, APP_MENTION, "app_mention"),
            (None, SLASH_COMMAND, "slash_command"),
            (Some("text/plain"), APP_MENTION, "app_mention"),
            (Some("text/plain"), SLASH_COMMAND, "slash_command"),
        ] {
            let event = one_event(request(&post(content_type, &[], body)));
            assert_eq!(event.event_type, expected, "{content_type:?}");
        }
        let padded = [b"\r\n \t".as_slice(), APP_MENTION].concat();
        assert_eq!(
            one_event(request(&post(None, &[], &padded))).event_type,
            "app_mention"
        );
        // A declared type wins over the body's look.
        bad_request(request(&post(Some(FORM), &[], APP_MENTION)));
        bad_request(request(&post(Some(JSON), &[], SLASH_COMMAND)));
    }

    #[test]
    fn forms_without_command_or_payload_and_empty_bodies_are_refused() {
        let message = bad_request(request(&post(Some(FORM), &[], b"token=abc&team_id=T1")));
        assert!(
            message.contains("command") && message.contains("payload"),
            "{message}"
        );
        assert!(!message.contains("abc"));
        for body in [&b""[..], b"  \n"] {
            assert!(bad_request(request(&post(None, &[], body))).contains("empty"));
        }
    }

    #[test]
    fn every_prefix_of_every_fixture_is_an_outcome_or_a_bad_request() {
        for (fixture, content_type) in [
            (APP_MENTION, JSON),
            (MESSAGE_CHANGED, JSON),
            (MESSAGE_THREAD, JSON),
            (URL_VERIFICATION, JSON),
            (SLASH_COMMAND, FORM),
            (SIGNATURE_VECTOR, FORM),
        ] {
            for end in 0..=fixture.len() {
                let prefix = fixture.get(..end).unwrap_or_default();
                for content_type in [Some(content_type), None] {
                    match request(&post(content_type, &[], prefix)) {
                        Ok(_) | Err(Error::BadRequest(_)) => {}
                        Err(other) => panic!("prefix {end} of {prefix:?}: {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn hostile_bodies_are_bad_requests() {
        let deep_json = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_payload = format!("payload={}", "%5B".repeat(100_000));
        let bodies: [&[u8]; 10] = [
            deep_json.as_bytes(),
            deep_payload.as_bytes(),
            b"{",
            b"{}",
            b"[1]",
            b"\xff\xfe{",
            b"{\"type\":7}",
            b"payload=%",
            b"command=%C3",
            b"payload=null",
        ];
        for body in bodies {
            for content_type in [Some(JSON), Some(FORM), None] {
                let result = request(&post(content_type, &[], body));
                assert!(
                    matches!(result, Err(Error::BadRequest(_))),
                    "{content_type:?} {:?}: {result:?}",
                    String::from_utf8_lossy(body.get(..40).unwrap_or(body))
                );
            }
        }
    }
}
