//! Local stand-ins for the chat apps mecha answers in, served on 127.0.0.1 because the
//! end-to-end tests cannot reach the real services:
//!
//! * [`Slack`] imitates Slack's Web API (`https://slack.com/api`: `chat.postMessage`,
//!   `conversations.replies`, `reactions.add`, `reactions.remove`) and, on a second origin, the
//!   response host of slash commands (`https://hooks.slack.com`). See `chat_apps/slack.rs`.
//! * [`Telegram`] imitates the Bot API (`https://api.telegram.org/bot<token>/sendMessage`),
//!   with its HTML parse mode checked as Telegram checks it. See `chat_apps/telegram.rs`.
//!
//! Both record every request and take queued faults (see `stand_in.rs`), answering them in
//! their app's own shape. Each stops when dropped.

mod slack;
mod telegram;

pub use slack::Slack;
pub use telegram::Telegram;
