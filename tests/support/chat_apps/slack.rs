//! A stand-in for Slack's Web API and its slash-command response host.
//!
//! Like Slack, it answers Web API calls with HTTP 200 and `{"ok":false,"error":…}` for
//! every refusal: `not_authed` without `Authorization: Bearer`, `invalid_auth` with another
//! token, `channel_not_found`, `no_text`, `msg_too_long` (over 40,000 characters),
//! `invalid_metadata_format`, `thread_not_found`, `message_not_found`, `already_reacted`,
//! `no_reaction`, `invalid_name`, `unknown_method`. A rate limit is 429 with `retry-after`.
//!
//! `conversations.replies` returns a thread's parent and replies, oldest first, with each
//! message's `metadata` only under `include_all_metadata=true`, paged by `limit` and `cursor`.
//!
//! Response URLs live on a second origin ([`Slack::hooks`]) under `/commands/…`, as Slack's
//! do on `hooks.slack.com`: a JSON `{"text"}` is shown (at most 5 per URL, then `used_url`).
//! They need no token, and the stand-in records whether one came anyway.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::super::stand_in::{
    Call, Core, Fault, Reply, Request, Running, StandIn, bind, query_pairs, serve,
};

/// 40,000 characters: Slack truncates or refuses longer `text`.
const MAX_TEXT: usize = 40_000;

/// 5: how many times a response URL may be used.
const RESPONSES_PER_URL: usize = 5;

/// A message in the stand-in's workspace.
#[derive(Clone, Debug)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: String,
    /// `{"event_type","event_payload"}` when posted with metadata.
    pub metadata: Option<Value>,
    /// Posted by the bot (through the API), not seeded by a test.
    pub by_bot: bool,
}

#[derive(Default)]
struct Workspace {
    messages: Vec<Posted>,
    /// (channel, ts, emoji name).
    reactions: Vec<(String, String, String)>,
    /// (response URL path, body) of each answer at a response URL.
    responses: Vec<(String, Value)>,
    next_ts: u64,
}

struct Api {
    token: String,
    core: Core,
    workspace: Mutex<Workspace>,
}

/// A running Slack stand-in.
pub struct Slack {
    /// The Web API base, `http://127.0.0.1:PORT/api`, as `responders.slack.api_url`.
    pub api: String,
    /// The origin of response URLs, `http://127.0.0.1:PORT2`, as `hooks.slack.com` is.
    pub hooks: String,
    state: Arc<Api>,
    _running: [Running; 2],
}

impl Slack {
    /// Starts a stand-in that accepts the bot token `token`.
    pub async fn start(token: &str) -> Slack {
        let (api_listener, api_origin) = bind().await;
        let (hooks_listener, hooks) = bind().await;
        let state = Arc::new(Api {
            token: token.to_owned(),
            core: Core::default(),
            workspace: Mutex::new(Workspace {
                next_ts: 1,
                ..Workspace::default()
            }),
        });
        let running = [
            serve(api_listener, state.clone()),
            serve(hooks_listener, state.clone()),
        ];
        Slack {
            api: format!("{api_origin}/api"),
            hooks,
            state,
            _running: running,
        }
    }

    /// A message someone wrote, e.g. the one that mentions the bot.
    pub fn seed_message(&self, channel: &str, ts: &str, thread_ts: Option<&str>, text: &str) {
        self.state
            .workspace
            .lock()
            .expect("lock")
            .messages
            .push(Posted {
                channel: channel.to_owned(),
                ts: ts.to_owned(),
                thread_ts: thread_ts.map(str::to_owned),
                text: text.to_owned(),
                metadata: None,
                by_bot: false,
            });
    }

    /// The bot's messages in the thread `thread_ts` of `channel`, oldest first.
    pub fn replies(&self, channel: &str, thread_ts: &str) -> Vec<Posted> {
        let workspace = self.state.workspace.lock().expect("lock");
        workspace
            .messages
            .iter()
            .filter(|message| {
                message.by_bot
                    && message.channel == channel
                    && message.thread_ts.as_deref() == Some(thread_ts)
            })
            .cloned()
            .collect()
    }

    /// Every message the bot posted, oldest first.
    pub fn bot_messages(&self) -> Vec<Posted> {
        let workspace = self.state.workspace.lock().expect("lock");
        workspace
            .messages
            .iter()
            .filter(|m| m.by_bot)
            .cloned()
            .collect()
    }

    /// The emoji names on a message, in the order they were added.
    pub fn reactions(&self, channel: &str, ts: &str) -> Vec<String> {
        let workspace = self.state.workspace.lock().expect("lock");
        workspace
            .reactions
            .iter()
            .filter(|(c, t, _)| c == channel && t == ts)
            .map(|(_, _, name)| name.clone())
            .collect()
    }

    /// The bodies posted to the response URL at `path` (`/commands/…`).
    pub fn responses(&self, path: &str) -> Vec<Value> {
        let workspace = self.state.workspace.lock().expect("lock");
        workspace
            .responses
            .iter()
            .filter(|(at, _)| at == path)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Answers the next `times` requests whose method is `method` (`"*"`: any) and whose path
    /// contains `path_pattern` with `fault`, after the faults queued before.
    pub fn fail_next(&self, method: &str, path_pattern: &str, fault: Fault, times: usize) {
        self.state
            .core
            .fail_next(method, path_pattern, fault, times);
    }

    /// Every request received so far, on either origin, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.core.requests()
    }
}

/// `{"ok":false,"error":error}` with HTTP 200, as Slack refuses a call.
fn refused(error: &str) -> Reply {
    Reply::json(200, json!({ "ok": false, "error": error }))
}

/// The call's arguments: its JSON body, else its form body, else its query string.
fn arguments(call: &Call) -> Value {
    if call.content_type().as_deref() == Some("application/json") {
        return serde_json::from_slice(&call.body).unwrap_or(Value::Null);
    }
    let raw = if call.body.is_empty() {
        call.query.clone()
    } else {
        String::from_utf8_lossy(&call.body).into_owned()
    };
    Value::Object(
        query_pairs(&raw)
            .into_iter()
            .map(|(key, value)| (key, Value::String(value)))
            .collect(),
    )
}

fn text_argument<'a>(arguments: &'a Value, name: &str) -> Option<&'a str> {
    arguments[name].as_str().filter(|value| !value.is_empty())
}

impl Api {
    fn web_api(&self, method: &str, call: &Call) -> Reply {
        match call.header("authorization") {
            None => return refused("not_authed"),
            Some(value) if value != format!("Bearer {}", self.token) => {
                return refused("invalid_auth");
            }
            Some(_) => {}
        }
        let arguments = arguments(call);
        let mut workspace = self.workspace.lock().expect("lock");
        match method {
            "chat.postMessage" => post_message(&mut workspace, &arguments),
            "conversations.replies" => replies(&workspace, &arguments),
            "reactions.add" | "reactions.remove" => {
                react(&mut workspace, &arguments, method == "reactions.add")
            }
            _ => refused("unknown_method"),
        }
    }

    fn response_url(&self, call: &Call) -> Reply {
        let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
        if call.method != "POST" {
            return Reply::text(405, "text/plain", "method_not_allowed");
        }
        if text_argument(&body, "text").is_none() {
            return Reply::text(400, "text/plain", "no_text");
        }
        let mut workspace = self.workspace.lock().expect("lock");
        let used = workspace
            .responses
            .iter()
            .filter(|(path, _)| *path == call.path)
            .count();
        if used >= RESPONSES_PER_URL {
            return Reply::text(404, "text/plain", "used_url");
        }
        workspace.responses.push((call.path.clone(), body));
        Reply::json(200, json!({ "ok": true }))
    }
}

fn post_message(workspace: &mut Workspace, arguments: &Value) -> Reply {
    let Some(channel) = text_argument(arguments, "channel") else {
        return refused("channel_not_found");
    };
    let Some(text) = text_argument(arguments, "text") else {
        return refused("no_text");
    };
    if text.chars().count() > MAX_TEXT {
        return refused("msg_too_long");
    }
    let metadata = match &arguments["metadata"] {
        Value::Null => None,
        metadata if metadata["event_type"].is_string() && metadata["event_payload"].is_object() => {
            Some(metadata.clone())
        }
        _ => return refused("invalid_metadata_format"),
    };
    workspace.next_ts += 1;
    let ts = format!("1700000000.{:06}", workspace.next_ts);
    let thread_ts = text_argument(arguments, "thread_ts").map(str::to_owned);
    workspace.messages.push(Posted {
        channel: channel.to_owned(),
        ts: ts.clone(),
        thread_ts: thread_ts.clone(),
        text: text.to_owned(),
        metadata,
        by_bot: true,
    });
    Reply::json(
        200,
        json!({
            "ok": true,
            "channel": channel,
            "ts": ts,
            "message": { "type": "message", "bot_id": "B0MECHA", "text": text, "ts": ts, "thread_ts": thread_ts },
        }),
    )
}

fn replies(workspace: &Workspace, arguments: &Value) -> Reply {
    let (Some(channel), Some(ts)) = (
        text_argument(arguments, "channel"),
        text_argument(arguments, "ts"),
    ) else {
        return refused("invalid_arguments");
    };
    let with_metadata = arguments["include_all_metadata"].as_str() == Some("true");
    let limit: usize = text_argument(arguments, "limit")
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let from: usize = text_argument(arguments, "cursor")
        .and_then(|cursor| cursor.strip_prefix("offset:"))
        .and_then(|offset| offset.parse().ok())
        .unwrap_or(0);
    let mut thread: Vec<&Posted> = workspace
        .messages
        .iter()
        .filter(|m| m.channel == channel && (m.ts == ts || m.thread_ts.as_deref() == Some(ts)))
        .collect();
    if thread.is_empty() {
        return refused("thread_not_found");
    }
    thread.sort_by(|a, b| a.ts.cmp(&b.ts));
    let page: Vec<Value> = thread
        .iter()
        .skip(from)
        .take(limit)
        .map(|message| {
            let mut json = json!({ "type": "message", "text": message.text, "ts": message.ts });
            if let Some(thread_ts) = &message.thread_ts {
                json["thread_ts"] = thread_ts.as_str().into();
            }
            if let (true, Some(metadata)) = (with_metadata, &message.metadata) {
                json["metadata"] = metadata.clone();
            }
            json
        })
        .collect();
    let more = from + limit < thread.len();
    let cursor = if more {
        format!("offset:{}", from + limit)
    } else {
        String::new()
    };
    Reply::json(
        200,
        json!({
            "ok": true,
            "messages": page,
            "has_more": more,
            "response_metadata": { "next_cursor": cursor },
        }),
    )
}

fn react(workspace: &mut Workspace, arguments: &Value, add: bool) -> Reply {
    let (Some(channel), Some(ts), Some(name)) = (
        text_argument(arguments, "channel"),
        text_argument(arguments, "timestamp"),
        text_argument(arguments, "name"),
    ) else {
        return refused("invalid_arguments");
    };
    if name.contains([':', ' ']) || name.chars().any(|c| c.is_ascii_uppercase()) {
        return refused("invalid_name");
    }
    if !workspace
        .messages
        .iter()
        .any(|m| m.channel == channel && m.ts == ts)
    {
        return refused("message_not_found");
    }
    let reaction = (channel.to_owned(), ts.to_owned(), name.to_owned());
    let present = workspace.reactions.iter().position(|r| *r == reaction);
    match (add, present) {
        (true, Some(_)) => refused("already_reacted"),
        (true, None) => {
            workspace.reactions.push(reaction);
            Reply::json(200, json!({ "ok": true }))
        }
        (false, None) => refused("no_reaction"),
        (false, Some(index)) => {
            workspace.reactions.remove(index);
            Reply::json(200, json!({ "ok": true }))
        }
    }
}

impl StandIn for Api {
    fn core(&self) -> &Core {
        &self.core
    }

    fn answer(&self, call: &Call) -> Reply {
        if let Some(method) = call.path.strip_prefix("/api/") {
            return self.web_api(method, call);
        }
        if call.path.starts_with("/commands/") {
            return self.response_url(call);
        }
        Reply::text(404, "text/html", "<html><body>Not Found</body></html>")
    }

    fn fault(&self, _call: &Call, fault: &Fault) -> Reply {
        match fault {
            Fault::RateLimited | Fault::SecondaryRateLimit => {
                Reply::json(429, json!({ "ok": false, "error": "ratelimited" }))
                    .header("retry-after", "1")
            }
            Fault::Status(status) => Reply::text(
                *status,
                "text/html",
                "<html><body>Slack is having trouble</body></html>",
            ),
            Fault::Hang(_) | Fault::Held(_) => refused("internal_error"),
        }
    }

    fn finish(&self, _call: &Call, reply: &mut Reply) {
        reply.default_header("content-type", "application/json; charset=utf-8");
    }
}
