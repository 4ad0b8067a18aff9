//! A stand-in for Telegram's Bot API: `sendMessage` at `/bot<token>/sendMessage`.
//!
//! Like Telegram it answers `{"ok":true,"result":…}`, or `{"ok":false,"error_code",
//! "description"}` with the error code as the HTTP status: 401 `Unauthorized` for another
//! token, 404 `Not Found` for a path without one or an unknown method, 400 `Bad Request: …` for
//! an empty chat id or text, a text over 4,096 UTF-16 units, a reply to a message the chat does
//! not have (unless `allow_sending_without_reply`), and HTML it cannot parse (`can't parse
//! entities`: a tag outside its list, unbalanced tags, a bare `&` or `<`). A flood limit is
//! 429 with `parameters.retry_after`.
//!
//! An injected [`Fault::Status`] 400 answers the way some Bot API errors do, with the request's
//! URL (token included) in the description; the tests check that no trace of it reaches mecha's
//! logs, audit or API. The stand-in also records any request carrying its token anywhere but
//! the path ([`Telegram::token_elsewhere`]).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::super::stand_in::{Call, Core, Fault, Reply, Request, Running, StandIn, bind, serve};

/// 4,096 UTF-16 code units of text, after entities are parsed.
const MAX_TEXT: usize = 4_096;

/// The tags Telegram's HTML parse mode accepts.
const TAGS: [&str; 15] = [
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
];

/// A message the bot sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub chat_id: Value,
    /// As sent, with its markup.
    pub html: String,
    /// The message it replies to.
    pub reply_to: Option<i64>,
}

#[derive(Default)]
struct Chats {
    /// (chat id as text, message id) of messages the chats hold.
    known: Vec<(String, i64)>,
    sent: Vec<Sent>,
    next_id: i64,
}

struct Api {
    token: String,
    core: Core,
    chats: Mutex<Chats>,
}

/// A running Bot API stand-in.
pub struct Telegram {
    /// `http://127.0.0.1:PORT`, as `responders.telegram.api_url`.
    pub base: String,
    state: Arc<Api>,
    _running: Running,
}

impl Telegram {
    /// Starts a stand-in for the bot whose token is `token`.
    pub async fn start(token: &str) -> Telegram {
        let (listener, base) = bind().await;
        let state = Arc::new(Api {
            token: token.to_owned(),
            core: Core::default(),
            chats: Mutex::new(Chats {
                next_id: 5000,
                ..Chats::default()
            }),
        });
        let running = serve(listener, state.clone());
        Telegram {
            base,
            state,
            _running: running,
        }
    }

    /// A message a user sent in `chat_id`, which the bot may reply to.
    pub fn seed_message(&self, chat_id: i64, message_id: i64) {
        let mut chats = self.state.chats.lock().expect("lock");
        chats.known.push((chat_id.to_string(), message_id));
    }

    /// The messages the bot sent, oldest first.
    pub fn sent(&self) -> Vec<Sent> {
        self.state.chats.lock().expect("lock").sent.clone()
    }

    /// Answers the next `times` requests whose method is `method` (`"*"`: any) and whose path
    /// contains `path_pattern` with `fault`, after the faults queued before.
    pub fn fail_next(&self, method: &str, path_pattern: &str, fault: Fault, times: usize) {
        self.state
            .core
            .fail_next(method, path_pattern, fault, times);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.core.requests()
    }

    /// Requests that carried the token in a header, the query or the body.
    pub fn token_elsewhere(&self) -> Vec<Request> {
        let token = &self.state.token;
        self.requests()
            .into_iter()
            .filter(|request| {
                request.query.contains(token.as_str())
                    || request.body.to_string().contains(token.as_str())
                    || request
                        .headers
                        .values()
                        .any(|value| value.contains(token.as_str()))
            })
            .collect()
    }
}

/// Telegram's refusal: `error_code` as the HTTP status too.
fn refused(code: u16, description: &str) -> Reply {
    Reply::json(
        code,
        json!({ "ok": false, "error_code": code, "description": description }),
    )
}

/// The chat id as Telegram takes it: an integer or `@username`, as text or a number.
fn chat_key(chat_id: &Value) -> Option<String> {
    match chat_id {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    }
}

/// The text of `html` as Telegram's HTML parse mode reads it, or why it cannot.
pub fn parse_html(html: &str) -> Result<String, String> {
    let mut text = String::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let end = rest
                    .find('>')
                    .ok_or("Can't parse entities: unclosed start tag")?;
                let tag = &rest[1..end];
                let (closing, tag) = match tag.strip_prefix('/') {
                    Some(tag) => (true, tag),
                    None => (false, tag),
                };
                let name = tag.split_whitespace().next().unwrap_or_default();
                if !TAGS.contains(&name) {
                    return Err(format!(
                        "Can't parse entities: unsupported start tag \"{name}\""
                    ));
                }
                if closing {
                    if open.pop().as_deref() != Some(name) {
                        return Err(format!(
                            "Can't parse entities: can't find end tag corresponding to start tag \"{name}\""
                        ));
                    }
                } else {
                    open.push(name.to_owned());
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let end = rest
                    .find(';')
                    .ok_or("Can't parse entities: character entity is not closed")?;
                let decoded = match &rest[..=end] {
                    "&lt;" => '<',
                    "&gt;" => '>',
                    "&amp;" => '&',
                    "&quot;" => '"',
                    other => {
                        return Err(format!("Can't parse entities: unsupported entity {other}"));
                    }
                };
                text.push(decoded);
                rest = &rest[end + 1..];
            }
            c => {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    match open.pop() {
        Some(name) => Err(format!(
            "Can't parse entities: can't find end tag corresponding to start tag \"{name}\""
        )),
        None => Ok(text),
    }
}

impl Api {
    fn send_message(&self, call: &Call) -> Reply {
        let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
        let Some(chat) = chat_key(&body["chat_id"]) else {
            return refused(400, "Bad Request: chat_id is empty");
        };
        let Some(html) = body["text"].as_str().filter(|text| !text.trim().is_empty()) else {
            return refused(400, "Bad Request: message text is empty");
        };
        let text = if body["parse_mode"] == "HTML" {
            match parse_html(html) {
                Ok(text) => text,
                Err(why) => return refused(400, &format!("Bad Request: {why}")),
            }
        } else {
            html.to_owned()
        };
        if text.encode_utf16().count() > MAX_TEXT {
            return refused(400, "Bad Request: message is too long");
        }
        let mut chats = self.chats.lock().expect("lock");
        let reply = &body["reply_parameters"];
        let reply_to = reply["message_id"].as_i64();
        if let Some(id) = reply_to
            && !chats.known.contains(&(chat.clone(), id))
            && reply["allow_sending_without_reply"] != true
        {
            return refused(400, "Bad Request: message to be replied not found");
        }
        chats.next_id += 1;
        let message_id = chats.next_id;
        chats.known.push((chat.clone(), message_id));
        chats.sent.push(Sent {
            chat_id: body["chat_id"].clone(),
            html: html.to_owned(),
            reply_to,
        });
        Reply::json(
            200,
            json!({
                "ok": true,
                "result": {
                    "message_id": message_id,
                    "from": { "id": 7000, "is_bot": true, "first_name": "mecha", "username": "mecha_bot" },
                    "chat": { "id": body["chat_id"], "type": "private" },
                    "date": 1700000000,
                    "text": text,
                    "reply_to_message": reply_to.map(|id| json!({ "message_id": id })),
                },
            }),
        )
    }
}

impl StandIn for Api {
    fn core(&self) -> &Core {
        &self.core
    }

    fn answer(&self, call: &Call) -> Reply {
        let Some((token, method)) = call
            .path
            .strip_prefix("/bot")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(token, _)| !token.is_empty())
        else {
            return refused(404, "Not Found");
        };
        if token != self.token {
            return refused(401, "Unauthorized");
        }
        match method {
            "sendMessage" => self.send_message(call),
            _ => refused(404, "Not Found"),
        }
    }

    fn fault(&self, call: &Call, fault: &Fault) -> Reply {
        match fault {
            Fault::RateLimited | Fault::SecondaryRateLimit => Reply::json(
                429,
                json!({
                    "ok": false, "error_code": 429,
                    "description": "Too Many Requests: retry after 1",
                    "parameters": { "retry_after": 1 },
                }),
            ),
            Fault::Status(400) => refused(
                400,
                &format!(
                    "Bad Request: can't process https://api.telegram.org{}",
                    call.path
                ),
            ),
            Fault::Status(status) => refused(*status, "Internal Server Error"),
            Fault::Hang(_) | Fault::Held(_) => self.answer(call),
        }
    }

    fn finish(&self, _call: &Call, reply: &mut Reply) {
        reply.default_header("content-type", "application/json");
        reply.default_header("server", "nginx/1.18.0");
    }
}
