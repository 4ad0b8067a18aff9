//! Triggers: the schedules of `config.yml`'s `triggers:`, each ticking its trigger plugin.
//!
//! The host keeps time, not the plugin: one task per schedule sleeps until the next due instant,
//! calls `handle-tick`, and stores the events like a webhook's (under the plugin's name as
//! their source), then processes them. Two rules keep a schedule from piling up work:
//!
//! - a tick that comes while the events of the previous tick are still being worked on (not yet
//!   through their tasks) is skipped, counted (`mecha_trigger_ticks_skipped`) and audited
//!   (`trigger.skipped`). A run whose write-back failed is finished as far as the schedule is
//!   concerned: it waits for an operator, the schedule does not;
//! - ticks missed while the daemon was down or busy are not replayed in a burst: the next tick
//!   is the next one due after now.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::ingest::store_events;
use super::plugin_event::error_text;
use super::process::Processor;
use crate::config::schedule::Schedule;
use crate::config::server::ServerConfig;
use crate::metrics::Counter;
use crate::plugin::bindings::trigger::Tick;
use crate::plugin::limits::Limits;
use crate::plugin::loader::Runner;
use crate::plugin::trigger::{TriggerCall, TriggerPlugin};
use crate::plugin::{LivePlugins, PluginRegistry, World};
use crate::store::{AuditEntry, AuditOutcome, EventId, EventState};

/// The trigger plugin a schedule uses unless it names one.
pub const DEFAULT_TRIGGER: &str = "cron";

/// One schedule, ready to tick.
pub struct Scheduled {
    /// The schedule's name, passed to the plugin with each tick.
    pub name: String,
    pub schedule: Schedule,
    /// The trigger plugin's name: each tick calls the version installed at that moment.
    pub plugin: String,
    pub call: TriggerCall,
}

/// Why the configured triggers cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(
        "triggers.{schedule}: there is no trigger plugin named {plugin}; `mecha plugin ls` lists them"
    )]
    UnknownPlugin { schedule: String, plugin: String },
}

/// Every schedule of `config`, with its plugin.
pub fn scheduled(
    registry: &PluginRegistry,
    config: &ServerConfig,
) -> Result<Vec<Scheduled>, TriggerError> {
    let mut all = Vec::new();
    for (name, trigger) in &config.triggers {
        let plugin_name = trigger.plugin.as_deref().unwrap_or(DEFAULT_TRIGGER);
        if trigger_plugin(registry, plugin_name).is_none() {
            return Err(TriggerError::UnknownPlugin {
                schedule: name.clone(),
                plugin: plugin_name.to_owned(),
            });
        }
        // Checked when config.yml was loaded.
        let Some(schedule) = config.schedule(name) else {
            continue;
        };
        let defaults = config.plugin(plugin_name);
        let mut settings: BTreeMap<String, String> = defaults.settings.clone();
        settings.extend(trigger.settings.clone());
        all.push(Scheduled {
            name: name.clone(),
            schedule,
            plugin: plugin_name.to_owned(),
            call: TriggerCall {
                settings: Arc::new(settings),
                limits: Limits::from_config(&defaults),
            },
        });
    }
    Ok(all)
}

fn trigger_plugin(registry: &PluginRegistry, name: &str) -> Option<Arc<TriggerPlugin>> {
    match registry
        .get(World::Trigger, name)
        .map(|loaded| &loaded.runner)
    {
        Some(Runner::Trigger(plugin)) => Some(plugin.clone()),
        _ => None,
    }
}

/// Ticks `scheduled` for as long as the daemon runs, with the plugin `plugins` holds at each
/// tick.
pub async fn run(scheduled: Scheduled, plugins: Arc<LivePlugins>, processor: Arc<Processor>) {
    let mut previous: Vec<EventId> = Vec::new();
    let Some(mut due) = scheduled.schedule.next_after(Timestamp::now()) else {
        tracing::warn!(schedule = %scheduled.name, "this schedule never comes due");
        return;
    };
    tracing::info!(schedule = %scheduled.name, next = %due, "trigger scheduled");
    loop {
        let wait = due.as_millisecond() - Timestamp::now().as_millisecond();
        if let Ok(wait) = u64::try_from(wait) {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        match unfinished(&processor, &previous).await {
            Some(busy) => skip(&processor, &scheduled, due, &busy),
            None => previous = tick(&processor, &plugins, &scheduled, due).await,
        }
        match next_due(&scheduled.schedule, due, Timestamp::now()) {
            Some(next) => due = next,
            None => return,
        }
    }
}

/// Whether an event's tasks are still to run: states past these are done, or wait for an
/// operator (`write_back_failed`).
fn in_flight(state: EventState) -> bool {
    matches!(
        state,
        EventState::Received | EventState::Matched | EventState::Dispatched
    )
}

/// The tick after `last`, or, when that one has passed already, the first one after `now`.
fn next_due(schedule: &Schedule, last: Timestamp, now: Timestamp) -> Option<Timestamp> {
    let next = schedule.next_after(last)?;
    if next > now {
        Some(next)
    } else {
        schedule.next_after(now)
    }
}

/// The first of `events` still being worked on, if any.
async fn unfinished(processor: &Processor, events: &[EventId]) -> Option<EventId> {
    for id in events {
        match processor.store.get(id).await {
            Ok(Some(event)) if in_flight(event.state) => return Some(id.clone()),
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(event = %id, error = %err, "could not read the previous tick's event; ticking anyway");
            }
        }
    }
    None
}

fn skip(processor: &Processor, scheduled: &Scheduled, due: Timestamp, busy: &EventId) {
    processor.metrics.increment(Counter::TriggerTicksSkipped);
    tracing::info!(schedule = %scheduled.name, %due, unfinished = %busy, "tick skipped: the previous run is unfinished");
    processor.store.record_detached(
        AuditEntry::new(busy, "trigger.skipped")
            .outcome(AuditOutcome::Skip)
            .event(busy)
            .detail(serde_json::json!({
                "schedule": scheduled.name,
                "due_at": due.to_string(),
                "reason": "the previous run is unfinished",
            })),
    );
}

/// Runs one tick: the plugin's events, stored and handed to processing. Returns the ids of the
/// events stored.
async fn tick(
    processor: &Arc<Processor>,
    plugins: &LivePlugins,
    scheduled: &Scheduled,
    due: Timestamp,
) -> Vec<EventId> {
    processor.metrics.increment(Counter::TriggerTicks);
    let tick = Tick {
        schedule: scheduled.name.clone(),
        due_at: u64::try_from(due.as_second()).unwrap_or_default(),
    };
    let source = scheduled.plugin.as_str();
    let Some(plugin) = trigger_plugin(&plugins.current(), source) else {
        let failure = format!(
            "the trigger plugin {source} is no longer installed; install it again or change \
             triggers.{} in config.yml",
            scheduled.name
        );
        return failed(processor, scheduled, due, failure);
    };
    let failure = match plugin.handle_tick(&scheduled.call, &tick).await {
        Ok(Ok(events)) => {
            match store_events(
                source,
                events,
                b"",
                processor.store.as_ref(),
                &processor.metrics,
                &processor.tracer,
            )
            .await
            {
                Ok((stored, duplicates)) => {
                    if !duplicates.is_empty() {
                        processor
                            .metrics
                            .add(Counter::TriggerTicksSkipped, duplicates.len() as u64);
                    }
                    let ids = stored.iter().map(|event| event.id.clone()).collect();
                    processor.spawn(stored);
                    return ids;
                }
                Err(err) => err.to_string(),
            }
        }
        Ok(Err(err)) => error_text(err),
        Err(err) => err.to_string(),
    };
    failed(processor, scheduled, due, failure)
}

/// Logs and audits a tick that stored nothing; the schedule goes on.
fn failed(
    processor: &Arc<Processor>,
    scheduled: &Scheduled,
    due: Timestamp,
    failure: String,
) -> Vec<EventId> {
    let source = scheduled.plugin.as_str();
    let failure = processor.redactor.redact(&failure).into_owned();
    tracing::warn!(schedule = %scheduled.name, %due, error = %failure, "tick failed; the schedule goes on");
    processor.store.record_detached(
        AuditEntry::new(format!("{source}:{}", scheduled.name), "trigger.failed")
            .outcome(AuditOutcome::Fail)
            .error(failure)
            .detail(serde_json::json!({ "schedule": scheduled.name, "due_at": due.to_string() })),
    );
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("valid")
    }

    #[test]
    fn missed_ticks_are_not_replayed() {
        let every_minute = Schedule::parse("* * * * *", None).expect("valid");
        // On time: the next minute.
        assert_eq!(next_due(&every_minute, at(60), at(61)), Some(at(120)));
        // An hour late: the first minute after now, not the 59 in between.
        assert_eq!(next_due(&every_minute, at(60), at(3_601)), Some(at(3_660)));
        let every_ten = Schedule::parse("@every 10s", None).expect("valid");
        assert_eq!(next_due(&every_ten, at(100), at(101)), Some(at(110)));
        assert_eq!(next_due(&every_ten, at(100), at(135)), Some(at(140)));
    }
}
