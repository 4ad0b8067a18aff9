//! The Slack calls for one allowed result.
//!
//! | action | when | call |
//! |---|---|---|
//! | `comment` | `comment.body`, or `output` when there is no comment, non-blank; the event has a `response_url` (slash commands, interactive payloads) | `POST {response_url}` `{"text","response_type","replace_original":false}` per message |
//! | `comment` | the same text; the event has a `channel` and no `response_url` | `chat.postMessage` `{"channel","thread_ts","text","metadata"}` per message, in the thread of `thread_ts`, else of the message's own `ts` |
//! | `reaction.add`, `reaction.remove` | `labels`, and the asking message (`channel`, `ts`) | `reactions.add` / `reactions.remove` `{"channel","timestamp","name"}`, one per label |
//!
//! The text is Markdown rendered as mrkdwn and cut into messages at Slack's limit
//! ([`crate::mrkdwn`]). `status` and `commit` have no place in a chat and are left out.
//!
//! A message posted to a thread carries the task's marker in its metadata (`event_type`
//! [`METADATA_TYPE`], `event_payload` `{"task","part","parts"}`). Before posting, the thread is
//! read with `conversations.replies` (`include_all_metadata`): the parts found there are not
//! posted again, so a try repeated after a crash between Slack's answer and mecha's record posts
//! only what is missing. A `response_url` offers no such lookup; a repeated try there may show
//! an answer twice. Reactions are idempotent by nature (`already_reacted`, `no_reaction`).

use mecha_plugin_sdk::responder::{
    Event, Failure, Receipt, Report, RespondError, StoredEvent, TaskResult, comment_text,
    http::{Http, Method, Request},
    percent_encode, send_expecting_success,
};
use serde_json::{Value as Json, json};

use crate::mrkdwn;
use crate::web_api;

/// The `event_type` of the metadata mecha's messages carry.
pub const METADATA_TYPE: &str = "mecha_task";

/// Messages per page of `conversations.replies`: Slack's maximum is 1,000 and it advises 200.
const REPLIES_PAGE_SIZE: usize = 200;

/// How many pages of a thread are searched for an earlier post: 10 of 200. A thread longer
/// than that may get a second copy after a retry.
const REPLIES_PAGES: usize = 10;

/// Who sees an answer posted to a `response_url`: `ephemeral` (the asker only, Slack's default)
/// or `in_channel` (everyone in the channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Ephemeral,
    InChannel,
}

impl ResponseType {
    /// The setting's value; anything but `in_channel` is `ephemeral`, which shows nothing to
    /// people who did not ask.
    pub fn parse(setting: Option<&str>) -> ResponseType {
        match setting.map(str::trim) {
            Some("in_channel") => ResponseType::InChannel,
            _ => ResponseType::Ephemeral,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ResponseType::Ephemeral => "ephemeral",
            ResponseType::InChannel => "in_channel",
        }
    }
}

/// Writes `allowed` back to where `event` was asked, through the Web API at `api` (without a
/// trailing `/`). Every action is attempted; see [`Report::finish`] for the error.
pub fn write_back(
    http: &mut dyn Http,
    api: &str,
    response_type: ResponseType,
    event: &StoredEvent,
    allowed: &TaskResult,
    marker: &str,
) -> Result<Receipt, RespondError> {
    let mut report = Report::new();
    let text_attr = |name| non_blank(&event.event, name);
    let channel = text_attr("channel");
    let ts = text_attr("ts");
    let thread = text_attr("thread_ts").or(ts);

    if let Some(text) = comment_text(allowed) {
        let messages = mrkdwn::messages(text);
        if let Some(response_url) = text_attr("response_url") {
            let result = respond_at(http, response_url, response_type, &messages);
            report.record("comment", result);
        } else if let (Some(channel), Some(thread)) = (channel, thread) {
            let result = post_in_thread(http, api, channel, thread, &messages, marker);
            report.record("comment", result);
        }
    }

    if let (Some(labels), Some(channel), Some(ts)) = (&allowed.labels, channel, ts) {
        for (names, method, action, tolerated) in [
            (
                &labels.add,
                "reactions.add",
                "reaction.add",
                "already_reacted",
            ),
            (
                &labels.remove,
                "reactions.remove",
                "reaction.remove",
                "no_reaction",
            ),
        ] {
            for name in names.iter().filter_map(|label| emoji_name(label)) {
                let body = json!({ "channel": channel, "timestamp": ts, "name": name });
                let result =
                    web_api::call(http, action, api, method, Some(&body), "", &[tolerated]);
                report.record(action, result.map(|_| name.clone()));
            }
        }
    }

    report.finish()
}

/// The text attribute `name` of `event`, trimmed, when it is not blank.
fn non_blank<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event
        .text_attr(name)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// A label as a reaction's emoji name: trimmed, without the colons of `:eyes:`, lower-case.
/// `None` when blank.
pub fn emoji_name(label: &str) -> Option<String> {
    let name = label.trim().trim_matches(':').trim();
    (!name.is_empty()).then(|| name.to_lowercase())
}

/// Posts each message to `response_url`; the reference is how many were posted.
fn respond_at(
    http: &mut dyn Http,
    response_url: &str,
    response_type: ResponseType,
    messages: &[String],
) -> Result<String, Failure> {
    for text in messages {
        let request = Request::new(Method::Post, response_url).json(&json!({
            "text": text,
            "response_type": response_type.as_str(),
            "replace_original": false,
        }));
        send_expecting_success(http, "comment", request)?;
    }
    Ok(format!("{} message(s) at the response_url", messages.len()))
}

/// Posts the messages not yet in the thread; the reference lists the `ts` of each message of
/// the answer that was posted now.
fn post_in_thread(
    http: &mut dyn Http,
    api: &str,
    channel: &str,
    thread: &str,
    messages: &[String],
    marker: &str,
) -> Result<String, Failure> {
    let posted = parts_in_thread(http, api, channel, thread, marker)?;
    let mut references = Vec::new();
    for (index, text) in messages.iter().enumerate() {
        let part = index + 1;
        if posted.contains(&part) {
            continue;
        }
        let body = json!({
            "channel": channel,
            "thread_ts": thread,
            "text": text,
            "metadata": {
                "event_type": METADATA_TYPE,
                "event_payload": { "task": marker, "part": part, "parts": messages.len() },
            },
        });
        let reply = web_api::call(
            http,
            "comment",
            api,
            "chat.postMessage",
            Some(&body),
            "",
            &[],
        )?;
        references.push(reply["ts"].as_str().unwrap_or("posted").to_owned());
    }
    if references.is_empty() {
        return Ok("already posted".to_owned());
    }
    Ok(references.join(","))
}

/// The parts of the task `marker`'s answer already in the thread, from their metadata.
fn parts_in_thread(
    http: &mut dyn Http,
    api: &str,
    channel: &str,
    thread: &str,
    marker: &str,
) -> Result<Vec<usize>, Failure> {
    let mut parts = Vec::new();
    let mut cursor = String::new();
    for _ in 0..REPLIES_PAGES {
        let mut query = format!(
            "channel={}&ts={}&include_all_metadata=true&limit={REPLIES_PAGE_SIZE}",
            percent_encode(channel),
            percent_encode(thread)
        );
        if !cursor.is_empty() {
            query.push_str(&format!("&cursor={}", percent_encode(&cursor)));
        }
        // A thread that does not exist yet holds nothing of ours.
        let reply = web_api::call(
            http,
            "comment",
            api,
            "conversations.replies",
            None,
            &query,
            &["thread_not_found"],
        )?;
        let messages = reply["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        parts.extend(
            messages
                .iter()
                .filter_map(|message| part_of(message, marker)),
        );
        cursor = reply["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if cursor.is_empty() || reply["has_more"] != Json::Bool(true) {
            break;
        }
    }
    Ok(parts)
}

/// The part number of a message that carries the metadata of `marker`'s answer.
fn part_of(message: &Json, marker: &str) -> Option<usize> {
    let metadata = &message["metadata"];
    if metadata["event_type"] != METADATA_TYPE || metadata["event_payload"]["task"] != marker {
        return None;
    }
    metadata["event_payload"]["part"]
        .as_u64()
        .and_then(|part| usize::try_from(part).ok())
}

#[cfg(test)]
mod tests;
