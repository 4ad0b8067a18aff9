//! The cron trigger: one event per due tick of a schedule the operator declared.
//!
//! The host parses the schedule and keeps time; this plugin only says what a tick means. Each
//! tick becomes an event of type `tick` (or the schedule's `type` setting) whose actor is the
//! schedule's name, so workers' rules can pick their schedules, and whose subject is the
//! schedule's `subject` setting (e.g. the repository a nightly review is about).

pub mod tick;

use mecha_plugin_sdk::trigger::{self, Error, Event, PluginInfo, Tick, Trigger};

struct Cron;

impl Trigger for Cron {
    fn describe() -> PluginInfo {
        trigger::info(
            "cron",
            env!("CARGO_PKG_VERSION"),
            "Events on cron schedules (five-field cron, @daily, @every 10m) in any time zone",
        )
        .with_settings(["subject", "type", "attrs"])
    }

    fn handle_tick(tick: Tick) -> Result<Vec<Event>, Error> {
        let settings = tick::Settings {
            subject: trigger::setting("subject"),
            event_type: trigger::setting("type"),
            attrs: trigger::setting("attrs"),
        };
        Ok(vec![tick::event(&tick.schedule, tick.due_at, &settings)?])
    }
}

mecha_plugin_sdk::export_trigger!(Cron);
