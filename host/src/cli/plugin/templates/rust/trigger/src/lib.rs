//! {{name}}: a mecha trigger plugin. Each tick of a schedule becomes one event.
//!
//! The operator declares the schedules (their names and times) in the daemon's configuration;
//! the host keeps the time and calls `handle-tick` when one is due. The event is of type `tick`,
//! its actor is the schedule's name (so workers can pick their schedules) and its subject the
//! plugin's `subject` setting (e.g. the repository a nightly review is about).
//!
//! The logic is in a plain function ([`tick_event`]) that `cargo test` runs natively. The host's
//! imports (`log`, `config`, outgoing HTTP) only work inside mecha: natively they compile but
//! must not be called.

wit_bindgen::generate!({
    world: "trigger",
    path: "wit",
    generate_all,
});

use exports::mecha::plugin::trigger_api::{Guest, Tick};
use mecha::plugin::config;
use mecha::plugin::types::{Attr, Error, Event, PluginInfo, Value};

struct Plugin;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "{{name}}".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            summary: "One event per tick of a schedule".to_owned(),
            secrets: Vec::new(),
            // Read with `config::get`, from `plugins.{{name}}.settings` in config.yml.
            settings: vec!["subject".to_owned()],
            // Origins called with outgoing HTTP, e.g. `https://api.example.com`.
            hosts: Vec::new(),
        }
    }

    fn handle_tick(tick: Tick) -> Result<Vec<Event>, Error> {
        let subject = config::get("subject").unwrap_or_default();
        Ok(vec![tick_event(&tick, &subject)])
    }
}

// The export exists only in the component: natively (`cargo test`) this is a plain library.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

/// The event of one tick. Its delivery id is the schedule and due time, so a tick delivered
/// twice is stored once.
pub fn tick_event(tick: &Tick, subject: &str) -> Event {
    Event {
        event_type: "tick".to_owned(),
        delivery_id: Some(format!("{}:{}", tick.schedule, tick.due_at)),
        dedup_key: None,
        actor: tick.schedule.clone(),
        subject: subject.to_owned(),
        attrs: vec![
            Attr {
                name: "schedule".to_owned(),
                value: Value::Text(tick.schedule.clone()),
            },
            Attr {
                name: "due_at".to_owned(),
                value: Value::Integer(i64::try_from(tick.due_at).unwrap_or(i64::MAX)),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_itself() {
        let info = Plugin::describe();
        assert_eq!(info.name, "{{name}}");
        assert_eq!(info.settings, ["subject"]);
    }

    #[test]
    fn a_tick_is_one_event_named_after_its_schedule() {
        let tick = Tick {
            schedule: "nightly".to_owned(),
            due_at: 1_795_957_500,
        };
        let event = tick_event(&tick, "acme/widgets");
        assert_eq!(event.event_type, "tick");
        assert_eq!(event.actor, "nightly");
        assert_eq!(event.subject, "acme/widgets");
        assert_eq!(event.delivery_id.as_deref(), Some("nightly:1795957500"));
        assert!(matches!(&event.attrs[0].value, Value::Text(name) if name == "nightly"));
        assert!(matches!(
            event.attrs[1].value,
            Value::Integer(1_795_957_500)
        ));
    }
}
