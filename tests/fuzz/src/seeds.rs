//! Hand-written seeds for shapes the fixtures lack: generic webhooks, Slack interactive payloads
//! and odd forms, Telegram updates with emoji and command entities, the GitLab hooks without a
//! fixture, and minimal GitHub bodies.

use serde_json::{Value, json};

use crate::corpus::Seed;
use crate::mutate::form::encode;
use crate::rng::Rng;

fn json_seed(name: &str, value: Value) -> Seed {
    Seed::new(name, value.to_string())
}

pub fn github() -> Vec<Seed> {
    vec![
        json_seed(
            "ping__minimal.json",
            json!({"zen": "Keep it logically awesome.", "hook_id": 1}),
        ),
        json_seed(
            "pull_request__minimal.json",
            json!({
                "action": "opened",
                "number": 1,
                "pull_request": {"number": 1, "head": {"sha": "a"}, "base": {"sha": "b"}, "labels": [{"name": "😀"}]},
                "repository": {"full_name": "o/r"},
                "sender": {"login": "ana"}
            }),
        ),
        json_seed(
            "push__minimal.json",
            json!({"ref": "refs/heads/main", "before": "0", "after": "1", "forced": true,
                   "commits": [{"id": "1", "message": "é\u{202e}"}], "repository": {"full_name": "o/r"}}),
        ),
    ]
}

pub fn gitlab() -> Vec<Seed> {
    vec![
        json_seed(
            "job.json",
            json!({"object_kind": "build", "ref": "main", "sha": "abc", "build_id": 7, "build_name": "test",
                   "build_stage": "test", "build_status": "failed", "pipeline_id": 3, "user": {"username": "ana"},
                   "project_id": 5, "project": {"id": 5, "path_with_namespace": "group/sub/project"}}),
        ),
        json_seed(
            "release.json",
            json!({"object_kind": "release", "action": "create", "tag": "v1.0", "name": "v1 🚀",
                   "description": "notes", "url": "https://gitlab.test/r", "project": {"id": 5, "path_with_namespace": "g/p"}}),
        ),
        json_seed(
            "wiki_page.json",
            json!({"object_kind": "wiki_page", "user": {"username": "ana"}, "object_attributes": {"action": "update", "title": "Home"}}),
        ),
    ]
}

pub fn slack() -> Vec<Seed> {
    vec![
        Seed::new(
            "slash_command.emoji.form",
            "command=%2Fmecha&text=review+%F0%9F%A6%80+acme%2Fwidgets%2342&user_id=U1&user_name=&channel_id=C1&trigger_id=1.2.3",
        ),
        Seed::new(
            "interactive.block_actions.form",
            [
                b"payload=".as_slice(),
                &encode(&mut Rng::new(0), interactive()[0].to_string().as_bytes()),
            ]
            .concat(),
        ),
        Seed::new("odd_pairs.form", "a&&=&command&payload&%20=+"),
        json_seed(
            "app_rate_limited.json",
            json!({"type": "app_rate_limited", "team_id": "T1", "minute_rate_limited": 1518467820}),
        ),
        json_seed(
            "event_callback.edited.json",
            json!({"type": "event_callback", "event_id": "Ev1", "team_id": "T1", "event": {
                "type": "message", "subtype": "message_changed", "channel": {"id": "C1"},
                "message": {"user": "U1", "text": "🦀 <@U2>", "thread_ts": "1.2"}, "ts": 1.5, "event_ts": "1.5"}}),
        ),
    ]
}

/// Interactive payloads of each kind Slack sends, with ids both as strings and as objects.
pub fn interactive() -> Vec<Value> {
    vec![
        json!({"type": "block_actions", "user": {"id": "U1", "username": "ana", "team_id": "T1"},
               "channel": {"id": "C1"}, "team": {"id": "T1"}, "trigger_id": "1.2.3",
               "response_url": "https://hooks.slack.test/1",
               "actions": [{"action_id": "approve", "value": "42"}, {"action_id": "x"}]}),
        json!({"type": "block_actions", "user": {"id": "U1", "name": "ana"}, "channel": "C1",
               "actions": [{"action_id": "menu", "selected_option": {"value": "é"}}]}),
        json!({"type": "shortcut", "callback_id": "review", "trigger_id": "t", "user": {"id": "U1"}, "team": "T1"}),
        json!({"type": "message_action", "callback_id": "summarize", "channel": {"id": "C1", "name": "general"},
               "message": {"text": "hi 👋", "ts": "1.2"}, "user": {"username": ""}}),
        json!({"type": "view_submission", "user": {"id": "U1"}, "view": {"callback_id": "form", "state": {"values": {}}},
               "response_urls": [{"response_url": "https://hooks.slack.test/2"}]}),
        json!({"type": "view_closed", "user": {"id": "U1"}, "view": {"callback_id": 7}}),
    ]
}

pub fn telegram() -> Vec<Seed> {
    vec![
        json_seed(
            "emoji_command.json",
            // `👋 ` is three UTF-16 units, so this entity is not at offset 0.
            json!({"update_id": 1, "message": {"message_id": 2, "from": {"id": 3, "first_name": "Ana"},
                   "chat": {"id": -100, "type": "group"}, "text": "👋 /start@mecha_bot hi",
                   "entities": [{"type": "bot_command", "offset": 3, "length": 16}]}}),
        ),
        json_seed(
            "surrogate_command.json",
            // `/🦀` is three UTF-16 units; a length of 2 ends inside the crab.
            json!({"update_id": 9223372036854775807_i64, "message": {"chat": {"id": 1}, "text": "/🦀fix é",
                   "entities": [{"type": "bot_command", "offset": 0, "length": 2},
                                {"type": "bot_command", "offset": 0, "length": 6}]}}),
        ),
        json_seed(
            "caption_command.json",
            json!({"update_id": 3, "channel_post": {"sender_chat": {"id": -1, "title": "News 📰"},
                   "chat": {"id": -1, "type": "channel"}, "caption": "/post@bot args",
                   "caption_entities": [{"type": "bot_command", "offset": 0, "length": 9}],
                   "reply_to_message": {"message_id": 1, "reply_to_message": {"message_id": 0}}}}),
        ),
        json_seed(
            "inline_query.json",
            json!({"update_id": 4, "inline_query": {"id": "q1", "from": {"id": 3, "username": "ana"}, "query": "عربى"}}),
        ),
        json_seed(
            "my_chat_member.json",
            json!({"update_id": 5, "my_chat_member": {"chat": {"id": 1}}, "message": {"text": "late"}}),
        ),
        json_seed(
            "edited_channel_post.json",
            json!({"update_id": -1, "edited_channel_post": {"chat": {"id": 1, "title": ""}, "text": "",
                   "entities": [{"type": "bot_command", "offset": 0, "length": -1}]}}),
        ),
    ]
}

pub fn generic() -> Vec<Seed> {
    vec![
        json_seed(
            "deploy.json",
            json!({"env": "prod", "n": 3, "ok": true, "ratio": 0.5, "nested": {"a": [1, 2]}, "none": null}),
        ),
        json_seed("empty.json", json!({})),
        json_seed(
            "unicode.json",
            json!({"😀": "🦀", "": "", "e\u{301}": -1, "name": "\u{202e}evil", "big": 1e300, "neg": -0.0}),
        ),
        Seed::new(
            "numbers.json",
            r#"{"a":18446744073709551615,"b":-9223372036854775808,"c":1.0e-7,"d":1E2}"#,
        ),
        Seed::new("duplicates.json", r#"{"a":1,"a":"two","a":[3]}"#),
    ]
}
