//! The Telegram calls for one allowed result.
//!
//! | action | when | call |
//! |---|---|---|
//! | `comment` | `comment.body`, or `output` when there is no comment, non-blank; the event has a `chat_id` | `sendMessage` `{"chat_id","text","parse_mode":"HTML","reply_parameters"}` per message |
//!
//! Each message replies to the asking message (`message_id`; `allow_sending_without_reply`, so
//! an answer to a deleted question still arrives) in its forum topic (`thread_id`, as
//! `message_thread_id`). The text is Markdown rendered in Telegram's HTML and cut at its limit
//! ([`crate::html`]). `labels`, `status` and `commit` have no place in a Telegram chat.
//!
//! Telegram offers no way to find a bot's earlier message again (no metadata, no history for
//! bots), so nothing marks a message as the task's: a try repeated after a crash between
//! Telegram's answer and mecha's record sends the answer again. Sending is the last thing the
//! call does, so that window is as short as the host's record of the call.

use mecha_plugin_sdk::responder::{
    Event, Failure, Receipt, Report, RespondError, StoredEvent, TaskResult, Value, comment_text,
    http::Http,
};
use serde_json::{Value as Json, json};

use crate::bot_api;
use crate::html;

/// Writes `allowed` back to the chat of `event`, through the Bot API at `api` (without a
/// trailing `/`). See [`Report::finish`] for the error.
pub fn write_back(
    http: &mut dyn Http,
    api: &str,
    event: &StoredEvent,
    allowed: &TaskResult,
) -> Result<Receipt, RespondError> {
    let mut report = Report::new();
    let event = &event.event;
    if let (Some(text), Some(chat)) = (comment_text(allowed), id_attr(event, "chat_id")) {
        let result = send(
            http,
            api,
            &chat,
            id_attr(event, "message_id"),
            id_attr(event, "thread_id"),
            &html::messages(text),
        );
        report.record("comment", result);
    }
    report.finish()
}

/// Sends each message; the reference lists their `message_id`s.
fn send(
    http: &mut dyn Http,
    api: &str,
    chat: &Json,
    reply_to: Option<Json>,
    topic: Option<Json>,
    messages: &[String],
) -> Result<String, Failure> {
    let mut sent = Vec::new();
    for text in messages {
        let mut body = json!({ "chat_id": chat, "text": text, "parse_mode": "HTML" });
        if let Some(message_id) = &reply_to {
            body["reply_parameters"] =
                json!({ "message_id": message_id, "allow_sending_without_reply": true });
        }
        if let Some(topic) = &topic {
            body["message_thread_id"] = topic.clone();
        }
        let result = bot_api::call(http, "comment", api, "sendMessage", &body)?;
        sent.push(
            result["message_id"]
                .as_i64()
                .map_or_else(|| "sent".to_owned(), |id| id.to_string()),
        );
    }
    Ok(sent.join(","))
}

/// The attribute `name` as a Bot API id: an integer, or text (an `@channelusername`, or digits
/// from a source that passed them through as text).
fn id_attr(event: &Event, name: &str) -> Option<Json> {
    match event.get_attr(name)? {
        Value::Integer(id) => Some(json!(id)),
        Value::Text(text) => {
            let text = text.trim();
            match text.parse::<i64>() {
                Ok(id) => Some(json!(id)),
                Err(_) if !text.is_empty() => Some(json!(text)),
                Err(_) => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mecha_plugin_sdk::responder::{
        Comment, event,
        http::{Recording, Response},
    };

    const API: &str = "https://tg.test";

    fn message() -> StoredEvent {
        StoredEvent::new(
            "telegram",
            event("message")
                .attr("chat_id", 1111111)
                .attr("message_id", 1365)
                .attr("text", "please summarise acme/widgets#42"),
        )
    }

    fn answer(body: &str) -> TaskResult {
        TaskResult {
            comment: Some(Comment { body: body.into() }),
            ..TaskResult::empty()
        }
    }

    fn telegram() -> Recording {
        let mut next = 2000;
        Recording::new(move |_| {
            next += 1;
            Ok(Response::json_body(
                200,
                &json!({"ok": true, "result": {"message_id": next}}),
            ))
        })
    }

    #[test]
    fn a_message_is_answered_with_a_reply_in_html() {
        let mut http = telegram();
        let receipt =
            write_back(&mut http, API, &message(), &answer("**Done** & dusted")).expect("sent");
        assert_eq!(receipt.actions[0].reference, "2001");
        assert_eq!(http.requests.len(), 1);
        assert_eq!(http.requests[0].url, "https://tg.test/bot/sendMessage");
        assert_eq!(
            http.requests[0].body_json().expect("json"),
            json!({
                "chat_id": 1111111,
                "text": "<b>Done</b> &amp; dusted",
                "parse_mode": "HTML",
                "reply_parameters": { "message_id": 1365, "allow_sending_without_reply": true },
            })
        );
    }

    #[test]
    fn a_long_answer_is_several_replies_in_the_topic() {
        let event = StoredEvent::new(
            "telegram",
            event("message")
                .attr("chat_id", "-100200")
                .attr("message_id", 9)
                .attr("thread_id", 4),
        );
        let long = "word ".repeat(2000);
        let mut http = telegram();
        let receipt = write_back(&mut http, API, &event, &answer(&long)).expect("sent");
        assert_eq!(http.requests.len(), 3);
        assert_eq!(receipt.actions[0].reference, "2001,2002,2003");
        for request in &http.requests {
            let body = request.body_json().expect("json");
            assert_eq!(body["chat_id"], -100200);
            assert_eq!(body["message_thread_id"], 4);
            assert!(
                body["text"].as_str().expect("text").encode_utf16().count() <= html::MESSAGE_LIMIT
            );
        }
    }

    #[test]
    fn events_without_a_chat_write_nothing() {
        let mut http = telegram();
        let event = StoredEvent::new("telegram", event("inline_query").attr("query", "x"));
        assert!(
            write_back(&mut http, API, &event, &answer("hi"))
                .expect("ok")
                .actions
                .is_empty()
        );
        assert!(http.requests.is_empty());
    }
}
