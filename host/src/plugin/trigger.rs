//! Calling trigger plugins: one due tick of a schedule in, the events to store out.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CallError;
use super::bindings::source::types;
use super::bindings::trigger::{Tick, TriggerPre};
use super::engine::CallGate;
use super::host::http::HttpGrant;
use super::host::{PluginState, StateBuilder};
use super::limits::{self, Limits};

/// A loaded trigger plugin: pre-linked once, instantiated per tick.
pub struct TriggerPlugin {
    name: Arc<str>,
    pre: TriggerPre<PluginState>,
    gate: CallGate,
}

/// What one schedule's ticks run with: its settings, the origins it may call and its limits.
#[derive(Clone, Default)]
pub struct TriggerCall {
    pub settings: Arc<BTreeMap<String, String>>,
    pub grant: Arc<HttpGrant>,
    pub limits: Limits,
}

impl TriggerPlugin {
    pub fn new(name: Arc<str>, pre: TriggerPre<PluginState>, gate: CallGate) -> TriggerPlugin {
        TriggerPlugin { name, pre, gate }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same plugin under another name, e.g. the one it gave when described.
    pub fn renamed(self, name: &str) -> TriggerPlugin {
        TriggerPlugin {
            name: Arc::from(name),
            ..self
        }
    }

    /// Runs `handle-tick` on a fresh instance. The outer error is the call failing (trap,
    /// deadline); the inner one is the plugin's own.
    pub async fn handle_tick(
        &self,
        call: &TriggerCall,
        tick: &Tick,
    ) -> Result<Result<Vec<types::Event>, types::Error>, CallError> {
        let state = StateBuilder::new(self.name.clone(), call.limits.memory_bytes())
            .settings(call.settings.clone())
            .http(call.grant.clone())
            .build();
        let pre = &self.pre;
        let (events, _) = limits::run(
            pre.engine(),
            &self.gate,
            &self.name,
            call.limits,
            state,
            |mut store| async move {
                let result = async {
                    let trigger = pre.instantiate_async(&mut store).await?;
                    trigger
                        .mecha_plugin_trigger_api()
                        .call_handle_tick(&mut store, tick)
                        .await
                }
                .await;
                (result, store)
            },
        )
        .await?;
        Ok(events)
    }

    /// Runs `describe` on a fresh instance.
    pub async fn describe(&self, limits: Limits) -> Result<types::PluginInfo, CallError> {
        let state = StateBuilder::new(self.name.clone(), limits.memory_bytes()).build();
        let pre = &self.pre;
        let (info, _) = limits::run(
            pre.engine(),
            &self.gate,
            &self.name,
            limits,
            state,
            |mut store| async move {
                let result = async {
                    let trigger = pre.instantiate_async(&mut store).await?;
                    trigger
                        .mecha_plugin_trigger_api()
                        .call_describe(&mut store)
                        .await
                }
                .await;
                (result, store)
            },
        )
        .await?;
        Ok(info)
    }
}
