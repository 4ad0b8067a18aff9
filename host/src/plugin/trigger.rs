//! Calling trigger plugins: one due tick of a schedule in, the events to store out.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CallError;
use super::bindings::source::types;
use super::bindings::trigger::{Tick, Trigger, TriggerPre};
use super::limits::Limits;
use super::spare::Instance;
use super::world_plugin::world_plugin;

world_plugin!(
    /// A loaded trigger plugin: pre-linked once, instantiated per tick.
    TriggerPlugin, crate::plugin::World::Trigger, TriggerPre, Trigger, mecha_plugin_trigger_api, std::convert::identity
);

/// What one schedule's ticks run with: its settings and limits. Triggers are granted no
/// outgoing HTTP yet; a call the plugin makes is refused.
#[derive(Clone)]
pub struct TriggerCall {
    pub settings: Arc<BTreeMap<String, String>>,
    pub limits: Limits,
}

impl TriggerPlugin {
    /// Runs `handle-tick` on a pristine instance. The outer error is the call failing (trap,
    /// deadline); the inner one is the plugin's own.
    pub async fn handle_tick(
        &self,
        call: &TriggerCall,
        tick: &Tick,
    ) -> Result<Result<Vec<types::Event>, types::Error>, CallError> {
        let state = self
            .state(call.limits)
            .settings(call.settings.clone())
            .build();
        let (events, _) = self
            .run(
                call.limits,
                state,
                Instance::Spare,
                |trigger, mut store| async move {
                    let api = trigger.mecha_plugin_trigger_api();
                    let events = api.call_handle_tick(&mut store, tick).await;
                    (events, store)
                },
            )
            .await?;
        Ok(events)
    }
}
