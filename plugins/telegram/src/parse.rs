//! Telegram updates to events, in plain Rust so that it runs (and is fuzzed) natively.
//!
//! [`request`] does everything after the host has checked the secret token. The body is a Bot
//! API `Update`: an object with an integer `update_id` and one field naming what happened. It is
//! read in one pass, in document order, into structs whose fields are all optional, so serde
//! skips what mecha does not use and a field Telegram leaves out is just a missing attr.
//!
//! # Events
//!
//! - delivery id and the text attr `update_id`: `update_id` in decimal. Telegram resends an
//!   update with the same id until the webhook accepts it.
//! - type: `message`, `edited_message`, `channel_post`, `edited_channel_post`, `callback_query`
//!   or `inline_query`, whichever the update has; else the update's first other field (e.g.
//!   `my_chat_member`) when it looks like a Bot API field name (lower-case snake_case), since a
//!   type is matched by rules and shown in logs; else `unknown`.
//! - messages, edited messages and channel posts: actor `from.username`, else `from.first_name`,
//!   else for channel posts the title of `sender_chat` or `chat`; subject the chat id; attrs
//!   `sender`, `from_id`, `chat_id`, `chat_type`, `chat_title`, `text` (the text, else the
//!   caption), `message_id`, `thread_id`, `reply_to_message_id`, and for a bot command `command`,
//!   `command_bot` and `args` (see the `command` module).
//! - callback queries (inline keyboard buttons): actor as for messages; subject the chat id of the
//!   message the button was on; attrs `sender`, `from_id`, `callback_data`, `callback_id`,
//!   `chat_id`, `message_id`.
//! - inline queries: actor as for messages; attrs `sender`, `from_id`, `query`,
//!   `inline_query_id`.

mod command;

use command::Entity;
use mecha_plugin_sdk::source::{self, Error, Event, Request};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// The type of an update this parser finds nothing it knows in.
const UNKNOWN_TYPE: &str = "unknown";

/// Bot API field names are short; a longer key is not one and does not become a type.
const MAX_TYPE_LEN: usize = 64;

/// Parses an update whose secret token the host has already checked into its one event.
///
/// A body that is not a JSON object with an integer `update_id`, or whose known fields have the
/// wrong shape, is a `bad-request` saying why.
pub fn request(request: &Request) -> Result<Vec<Event>, Error> {
    let update: Update = serde_json::from_slice(&request.body)
        .map_err(|err| Error::BadRequest(format!("body is not a valid Telegram update: {err}")))?;
    Ok(vec![update.to_event()])
}

/// One `Update`: its id and the one thing that happened.
struct Update {
    update_id: i64,
    content: Content,
}

enum Content {
    /// A message, edited message, channel post or edited channel post; `kind` is its field name.
    Message {
        kind: MessageKind,
        message: Message,
    },
    CallbackQuery(CallbackQuery),
    InlineQuery(InlineQuery),
    /// A kind of update with no mapping: only its type, from its field name.
    Other(String),
}

#[derive(Clone, Copy)]
enum MessageKind {
    Message,
    EditedMessage,
    ChannelPost,
    EditedChannelPost,
}

impl MessageKind {
    fn from_field(name: &str) -> Option<MessageKind> {
        match name {
            "message" => Some(MessageKind::Message),
            "edited_message" => Some(MessageKind::EditedMessage),
            "channel_post" => Some(MessageKind::ChannelPost),
            "edited_channel_post" => Some(MessageKind::EditedChannelPost),
            _ => None,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            MessageKind::Message => "message",
            MessageKind::EditedMessage => "edited_message",
            MessageKind::ChannelPost => "channel_post",
            MessageKind::EditedChannelPost => "edited_channel_post",
        }
    }

    fn is_channel_post(self) -> bool {
        matches!(
            self,
            MessageKind::ChannelPost | MessageKind::EditedChannelPost
        )
    }
}

impl<'de> Deserialize<'de> for Update {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Update, D::Error> {
        deserializer.deserialize_map(UpdateVisitor)
    }
}

/// Reads an update's fields in document order, which a derived struct cannot tell, so that an
/// update of a kind this parser does not know is typed by its first field.
struct UpdateVisitor;

impl<'de> Visitor<'de> for UpdateVisitor {
    type Value = Update;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a Telegram Update object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Update, A::Error> {
        let mut update_id = None;
        let mut content = None;
        let mut other = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "update_id" {
                if update_id.is_some() {
                    return Err(de::Error::duplicate_field("update_id"));
                }
                update_id = Some(map.next_value::<i64>()?);
                continue;
            }
            if content.is_none() {
                if let Some(kind) = MessageKind::from_field(&key) {
                    let message = map.next_value()?;
                    content = Some(Content::Message { kind, message });
                    continue;
                }
                match key.as_str() {
                    "callback_query" => {
                        content = Some(Content::CallbackQuery(map.next_value()?));
                        continue;
                    }
                    "inline_query" => {
                        content = Some(Content::InlineQuery(map.next_value()?));
                        continue;
                    }
                    _ => {}
                }
            }
            other.get_or_insert(key);
            map.next_value::<IgnoredAny>()?;
        }
        let update_id = update_id.ok_or_else(|| de::Error::missing_field("update_id"))?;
        let content = content.unwrap_or_else(|| Content::Other(other_type(other)));
        Ok(Update { update_id, content })
    }
}

/// The type of an update known only by its field `name`: the name when it looks like a Bot API
/// field, else `unknown`.
fn other_type(name: Option<String>) -> String {
    name.filter(|name| {
        !name.is_empty()
            && name.len() <= MAX_TYPE_LEN
            && name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
    })
    .unwrap_or_else(|| UNKNOWN_TYPE.to_owned())
}

impl Update {
    fn to_event(&self) -> Event {
        let update_id = self.update_id.to_string();
        let mut event = match &self.content {
            Content::Message { kind, message } => {
                let mut event = source::event(kind.type_name());
                message.add_to(&mut event, *kind);
                event
            }
            Content::CallbackQuery(query) => query.to_event(),
            Content::InlineQuery(query) => query.to_event(),
            Content::Other(name) => source::event(name.as_str()),
        };
        event.set_attr("update_id", update_id.as_str());
        event.delivery_id(update_id)
    }
}

#[derive(Deserialize)]
struct User {
    id: Option<i64>,
    username: Option<String>,
    first_name: Option<String>,
}

impl User {
    /// The username, else the first name (every user has one; not every user has a username).
    fn name(&self) -> Option<&str> {
        non_empty(self.username.as_deref()).or(non_empty(self.first_name.as_deref()))
    }
}

#[derive(Deserialize)]
struct Chat {
    id: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    message_id: Option<i64>,
    message_thread_id: Option<i64>,
    from: Option<User>,
    sender_chat: Option<Chat>,
    chat: Option<Chat>,
    text: Option<String>,
    caption: Option<String>,
    entities: Option<Vec<Entity>>,
    caption_entities: Option<Vec<Entity>>,
    reply_to_message: Option<RepliedMessage>,
}

/// The message a message replies to; only its id is used, which also keeps the type from
/// nesting (Telegram sends one level, a hostile body could send many).
#[derive(Deserialize)]
struct RepliedMessage {
    message_id: Option<i64>,
}

impl Message {
    fn add_to(&self, event: &mut Event, kind: MessageKind) {
        add_user_to(event, self.from.as_ref());
        if event.actor.is_empty() && kind.is_channel_post() {
            // Posts in a channel are signed by the channel itself, usually without `from`.
            let chats = [&self.sender_chat, &self.chat].into_iter().flatten();
            let title = chats.map(|chat| chat.title.as_deref()).find_map(non_empty);
            set_actor(event, title);
        }
        self.add_chat_to(event);
        if let Some(chat) = &self.chat {
            event.set_attr_some("chat_type", chat.kind.as_deref());
            event.set_attr_some("chat_title", chat.title.as_deref());
        }
        // A photo or document carries its text as a caption, with entities of its own.
        let (text, entities) = match &self.text {
            Some(text) => (Some(text), &self.entities),
            None => (self.caption.as_ref(), &self.caption_entities),
        };
        event.set_attr_some("text", text.map(String::as_str));
        event.set_attr_some("message_id", self.message_id);
        event.set_attr_some("thread_id", self.message_thread_id);
        let replied = self.reply_to_message.as_ref();
        event.set_attr_some("reply_to_message_id", replied.and_then(|m| m.message_id));
        let entities = entities.as_deref().unwrap_or_default();
        if let Some(command) = text.and_then(|text| command::find(text, entities)) {
            event.set_attr("command", command.name);
            event.set_attr_some("command_bot", command.bot);
            event.set_attr("args", command.args);
        }
    }

    /// The chat id as the subject and the attr `chat_id`: the conversation to answer in.
    fn add_chat_to(&self, event: &mut Event) {
        if let Some(id) = self.chat.as_ref().and_then(|chat| chat.id) {
            event.subject = id.to_string();
            event.set_attr("chat_id", id);
        }
    }
}

/// A press of an inline keyboard button under one of the bot's messages.
#[derive(Deserialize)]
struct CallbackQuery {
    id: Option<String>,
    from: Option<User>,
    message: Option<Message>,
    data: Option<String>,
}

impl CallbackQuery {
    fn to_event(&self) -> Event {
        let mut event = source::event("callback_query");
        add_user_to(&mut event, self.from.as_ref());
        event.set_attr_some("callback_data", self.data.as_deref());
        event.set_attr_some("callback_id", self.id.as_deref());
        if let Some(message) = &self.message {
            message.add_chat_to(&mut event);
            event.set_attr_some("message_id", message.message_id);
        }
        event
    }
}

/// A query typed after the bot's `@name` in any chat.
#[derive(Deserialize)]
struct InlineQuery {
    id: Option<String>,
    from: Option<User>,
    query: Option<String>,
}

impl InlineQuery {
    fn to_event(&self) -> Event {
        let mut event = source::event("inline_query");
        add_user_to(&mut event, self.from.as_ref());
        event.set_attr_some("query", self.query.as_deref());
        event.set_attr_some("inline_query_id", self.id.as_deref());
        event
    }
}

/// The actor, `sender` and `from_id` of an update sent by `user`.
fn add_user_to(event: &mut Event, user: Option<&User>) {
    set_actor(event, user.and_then(User::name));
    event.set_attr_some("from_id", user.and_then(|user| user.id));
}

/// Sets the actor and the attr `sender` to `actor`, when there is one.
fn set_actor(event: &mut Event, actor: Option<&str>) {
    if let Some(actor) = actor {
        event.actor = actor.to_owned();
        event.set_attr("sender", actor);
    }
}

/// Sets the attr `name` when the update had a value for it.
fn non_empty(text: Option<&str>) -> Option<&str> {
    text.filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests;
