//! Slash commands (`/mecha review ...`), posted as a form. The mapping is listed in
//! [`crate::parse`].

use mecha_plugin_sdk::source::{self, Error, Event};

use crate::form::Form;
use crate::parse::set_text;

/// Form fields copied as they are, as `(attr, field)`. Slack's `token` is deliberately absent.
const COPIED_FIELDS: [(&str, &str); 9] = [
    ("command", "command"),
    ("text", "text"),
    ("user_id", "user_id"),
    ("channel", "channel_id"),
    ("channel_name", "channel_name"),
    ("team_id", "team_id"),
    ("team_domain", "team_domain"),
    ("response_url", "response_url"),
    ("trigger_id", "trigger_id"),
];

/// The `slash_command` event of a form that has a `command` field.
pub fn event(form: &Form) -> Result<Event, Error> {
    if form.get("command").is_none_or(str::is_empty) {
        return Err(Error::BadRequest(
            "the slash command's command field is empty".into(),
        ));
    }
    let non_empty = |name| form.get(name).filter(|value| !value.is_empty());
    let actor = non_empty("user_name").or_else(|| non_empty("user_id"));
    let mut event = source::event("slash_command")
        .actor(actor.unwrap_or_default())
        .subject(form.get("channel_id").unwrap_or_default());
    // Each invocation gets its own trigger id, so it identifies the delivery.
    if let Some(trigger_id) = non_empty("trigger_id") {
        event = event.delivery_id(trigger_id);
    }
    set_text(&mut event, "sender", actor);
    for (attr, field) in COPIED_FIELDS {
        set_text(&mut event, attr, form.get(field));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use crate::parse::request;
    use crate::parse::tests::{bad_request, one_event, post};

    #[test]
    fn the_user_id_stands_in_for_a_missing_user_name() {
        let body = b"command=%2Fmecha&text=deploy+now&user_id=U1&user_name=&channel_id=C1";
        let event = one_event(request(&post(None, &[], body)));
        assert_eq!(event.actor, "U1");
        assert_eq!(event.text_attr("sender"), Some("U1"));
        assert_eq!(event.text_attr("text"), Some("deploy now"));
        assert_eq!(event.subject, "C1");
        assert_eq!(event.delivery_id, None);
        assert!(event.get_attr("trigger_id").is_none());
    }

    #[test]
    fn the_verification_token_is_never_an_attr() {
        let body = b"token=s3cret&command=%2Fmecha&user_name=a";
        let event = one_event(request(&post(None, &[], body)));
        assert!(event.attrs.iter().all(|attr| attr.name != "token"));
        assert!(!format!("{event:?}").contains("s3cret"));
    }

    #[test]
    fn an_empty_command_is_refused() {
        let message = bad_request(request(&post(None, &[], b"command=&user_name=a")));
        assert!(message.contains("command"), "{message}");
    }
}
