//! Interactive payloads: button clicks and menus (`block_actions`), modal submissions
//! (`view_submission`, `view_closed`), shortcuts (`shortcut`, `message_action`). Slack posts them
//! as a form whose `payload` field holds JSON. The mapping is listed in [`crate::parse`].

use mecha_plugin_sdk::source::{self, Error, Event};
use serde_json::Value as Json;

use crate::parse::{id, set_scalar, set_text, string};

/// The `interactive.<type>` event of the JSON in a form's `payload` field.
pub fn event(payload: &str) -> Result<Event, Error> {
    let payload: Json = serde_json::from_str(payload).map_err(|err| {
        Error::BadRequest(format!(
            "the form field \"payload\" is not valid JSON: {err}"
        ))
    })?;
    if !payload.is_object() {
        return Err(Error::BadRequest(
            "the form field \"payload\" must be a JSON object".into(),
        ));
    }
    let kind = string(&payload, "type")
        .filter(|kind| !kind.is_empty())
        .ok_or_else(|| Error::BadRequest("the interactive payload has no type".into()))?;
    let user = payload.get("user");
    let user_field = |key| {
        user.and_then(|user| string(user, key))
            .filter(|value| !value.is_empty())
    };
    let actor = user_field("username")
        .or_else(|| user_field("name"))
        .or_else(|| user_field("id"));
    let channel = id(&payload, "channel");
    let trigger_id = string(&payload, "trigger_id").filter(|trigger_id| !trigger_id.is_empty());

    let mut event = source::event(format!("interactive.{kind}"))
        .actor(actor.unwrap_or_default())
        .subject(channel.unwrap_or_default());
    if let Some(trigger_id) = trigger_id {
        event = event.delivery_id(trigger_id);
    }
    set_text(&mut event, "sender", actor);
    set_text(&mut event, "user_id", user_field("id"));
    set_text(&mut event, "channel", channel);
    set_text(
        &mut event,
        "team_id",
        id(&payload, "team").or_else(|| user_field("team_id")),
    );
    set_text(&mut event, "trigger_id", trigger_id);
    // Shortcuts carry the callback id at the top, modals inside their view.
    let view = payload.get("view");
    let callback_id = payload
        .get("callback_id")
        .or_else(|| view.and_then(|view| view.get("callback_id")));
    set_scalar(&mut event, "callback_id", callback_id);
    // Modals opened with `response_url_enabled` get a list instead of a single URL.
    let response_url = payload.get("response_url").or_else(|| {
        payload
            .get("response_urls")
            .and_then(|urls| urls.get(0))
            .and_then(|first| first.get("response_url"))
    });
    set_scalar(&mut event, "response_url", response_url);
    if kind == "block_actions" {
        add_first_action(&mut event, &payload);
    }
    Ok(event)
}

/// `action_id` and `value` of the first action: a click sends one action, so that is the one that
/// happened. Menus carry their value in `selected_option` instead.
fn add_first_action(event: &mut Event, payload: &Json) {
    let Some(action) = payload.get("actions").and_then(|actions| actions.get(0)) else {
        return;
    };
    set_scalar(event, "action_id", action.get("action_id"));
    let value = action.get("value").or_else(|| {
        action
            .get("selected_option")
            .and_then(|option| option.get("value"))
    });
    set_scalar(event, "value", value);
}

#[cfg(test)]
mod tests {
    use crate::parse::request;
    use crate::parse::tests::{bad_request, one_event, post};

    /// A `block_actions` payload after the example in Slack's documentation of interaction
    /// payloads: a button clicked in a message.
    const BLOCK_ACTIONS: &str = r#"{
        "type": "block_actions",
        "user": {"id": "U0CA5", "username": "Amy McGee", "name": "Amy McGee", "team_id": "T3MDE"},
        "api_app_id": "A0CA5",
        "token": "Shh_its_a_seekrit",
        "container": {"type": "message", "message_ts": "1548261231.000200", "channel_id": "C0CA5", "is_ephemeral": false},
        "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
        "team": {"id": "T0CAG", "domain": "acme-creamery"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": "C0CA5", "name": "general"},
        "message": {"type": "message", "user": "U0CA5", "ts": "1548261231.000200", "text": "Deploy to production?"},
        "response_url": "https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209",
        "actions": [
            {
                "action_id": "approve_deploy",
                "block_id": "=qXel",
                "text": {"type": "plain_text", "text": "Approve", "emoji": true},
                "value": "deploy-42",
                "style": "primary",
                "type": "button",
                "action_ts": "1548426417.840180"
            }
        ]
    }"#;

    /// Encodes a form field value as Slack does: unreserved bytes as they are, the rest escaped.
    fn form_encode(value: &str) -> String {
        value
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(byte).to_string()
                }
                b' ' => "+".to_owned(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }

    fn interactive(payload: &str) -> mecha_plugin_sdk::source::Event {
        let body = format!("payload={}", form_encode(payload));
        one_event(request(&post(
            Some("application/x-www-form-urlencoded"),
            &[],
            body.as_bytes(),
        )))
    }

    #[test]
    fn block_actions() {
        let event = interactive(BLOCK_ACTIONS);
        assert_eq!(event.event_type, "interactive.block_actions");
        assert_eq!(event.actor, "Amy McGee");
        assert_eq!(event.subject, "C0CA5");
        assert_eq!(
            event.delivery_id.as_deref(),
            Some("12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3")
        );
        assert_eq!(event.text_attr("sender"), Some("Amy McGee"));
        assert_eq!(event.text_attr("user_id"), Some("U0CA5"));
        assert_eq!(event.text_attr("channel"), Some("C0CA5"));
        assert_eq!(event.text_attr("team_id"), Some("T0CAG"));
        assert_eq!(
            event.text_attr("trigger_id"),
            Some("12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3")
        );
        assert_eq!(
            event.text_attr("response_url"),
            Some("https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209")
        );
        assert_eq!(event.text_attr("action_id"), Some("approve_deploy"));
        assert_eq!(event.text_attr("value"), Some("deploy-42"));
        assert!(event.get_attr("callback_id").is_none());
        assert!(event.get_attr("token").is_none());
    }

    #[test]
    fn a_menu_choice_gives_the_selected_value() {
        let event = interactive(
            r#"{"type":"block_actions","user":{"id":"U1"},"actions":[
                {"action_id":"pick","type":"static_select","selected_option":{"value":"two"}},
                {"action_id":"ignored","value":"x"}]}"#,
        );
        assert_eq!(event.actor, "U1");
        assert_eq!(event.delivery_id, None);
        assert_eq!(event.text_attr("action_id"), Some("pick"));
        assert_eq!(event.text_attr("value"), Some("two"));
    }

    #[test]
    fn view_submissions_take_the_callback_id_from_the_view() {
        let event = interactive(
            r#"{"type":"view_submission","team":{"id":"T1"},"trigger_id":"t.1",
                "user":{"id":"U1","name":"amy","team_id":"T2"},
                "view":{"id":"V1","callback_id":"deploy_form","state":{"values":{}}},
                "response_urls":[{"block_id":"b","action_id":"a","channel_id":"C1",
                                  "response_url":"https://hooks.slack.com/app/x"}]}"#,
        );
        assert_eq!(event.event_type, "interactive.view_submission");
        assert_eq!(event.actor, "amy");
        assert_eq!(event.subject, "");
        assert_eq!(event.text_attr("team_id"), Some("T1"));
        assert_eq!(event.text_attr("callback_id"), Some("deploy_form"));
        assert_eq!(
            event.text_attr("response_url"),
            Some("https://hooks.slack.com/app/x")
        );
        assert!(event.get_attr("action_id").is_none());
    }

    #[test]
    fn shortcuts_carry_their_callback_id() {
        let event = interactive(
            r#"{"type":"shortcut","callback_id":"open_review","trigger_id":"t.2",
                "user":{"id":"U1","username":"amy","team_id":"T2"}}"#,
        );
        assert_eq!(event.event_type, "interactive.shortcut");
        assert_eq!(event.text_attr("callback_id"), Some("open_review"));
        assert_eq!(event.text_attr("team_id"), Some("T2"));
        assert_eq!(event.delivery_id.as_deref(), Some("t.2"));
    }

    #[test]
    fn malformed_payloads_are_bad_requests() {
        for (body, expected) in [
            ("payload=", "not valid JSON"),
            ("payload=%7B", "not valid JSON"),
            ("payload=%5B%5D", "JSON object"),
            ("payload=%7B%7D", "no type"),
            ("payload=%7B%22type%22%3A%22%22%7D", "no type"),
        ] {
            let message = bad_request(request(&post(None, &[], body.as_bytes())));
            assert!(message.contains(expected), "{body}: {message}");
        }
    }
}
