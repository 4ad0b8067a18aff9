//! Calling source plugins: one webhook request in, events or a reply out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::CallError;
use super::bindings::source::{Outcome, SourcePre, types};
use super::engine::CallGate;
use super::host::http::HttpGrant;
use super::host::{PluginState, StateBuilder};
use super::limits::{self, Limits};
use crate::config::secrets::Secret;

/// A loaded source plugin, ready to be called: pre-linked once, instantiated per call.
pub struct SourcePlugin {
    name: Arc<str>,
    pre: SourcePre<PluginState>,
    gate: CallGate,
}

/// Everything a source call produced.
pub struct SourceAnswer {
    /// The plugin's own answer: events, a reply, or the error it reports to the sender.
    pub outcome: Result<Outcome, types::Error>,
    /// Whether a `verify` check succeeded during the call.
    pub verified: bool,
}

/// What one source instance runs with: its settings, secrets and limits.
#[derive(Clone, Default)]
pub struct SourceCall {
    pub settings: Arc<BTreeMap<String, String>>,
    pub secrets: Arc<BTreeMap<String, Secret>>,
    pub limits: Limits,
    /// What the plugin's wall clock shows; `None`: the system's.
    pub clock: Option<SystemTime>,
}

/// What `hydrate` runs with: the instance's settings and the API origins it may call, with
/// the credential the host adds to them.
#[derive(Clone)]
pub struct HydrateCall {
    pub settings: Arc<BTreeMap<String, String>>,
    pub grant: Arc<HttpGrant>,
    pub limits: Limits,
}

impl SourcePlugin {
    pub fn new(name: Arc<str>, pre: SourcePre<PluginState>, gate: CallGate) -> SourcePlugin {
        SourcePlugin { name, pre, gate }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same plugin under another name, e.g. the one it gave when described.
    pub fn renamed(self, name: &str) -> SourcePlugin {
        SourcePlugin {
            name: Arc::from(name),
            ..self
        }
    }

    /// Runs `handle-webhook` on a fresh instance.
    pub async fn handle_webhook(
        &self,
        call: &SourceCall,
        request: types::Request,
    ) -> Result<SourceAnswer, CallError> {
        let state = StateBuilder::new(self.name.clone(), call.limits.memory_bytes())
            .settings(call.settings.clone())
            .secrets(call.secrets.clone())
            .clock(call.clock)
            .build();
        let pre = &self.pre;
        let (outcome, state) = limits::run(
            pre.engine(),
            &self.gate,
            &self.name,
            call.limits,
            state,
            |mut store| async move {
                let result = async {
                    let source = pre.instantiate_async(&mut store).await?;
                    source
                        .mecha_plugin_source_api()
                        .call_handle_webhook(&mut store, &request)
                        .await
                }
                .await;
                (result, store)
            },
        )
        .await?;
        Ok(SourceAnswer {
            outcome,
            verified: state.verify.verified(),
        })
    }

    /// Runs `hydrate` on a fresh instance: the event with what the provider's API adds to it.
    /// The outer error is the call failing (trap, deadline); the inner one is the plugin's own.
    pub async fn hydrate(
        &self,
        call: &HydrateCall,
        event: &types::Event,
    ) -> Result<Result<types::Event, types::Error>, CallError> {
        let state = StateBuilder::new(self.name.clone(), call.limits.memory_bytes())
            .settings(call.settings.clone())
            .http(call.grant.clone())
            .build();
        let pre = &self.pre;
        let (hydrated, _) = limits::run(
            pre.engine(),
            &self.gate,
            &self.name,
            call.limits,
            state,
            |mut store| async move {
                let result = async {
                    let source = pre.instantiate_async(&mut store).await?;
                    source
                        .mecha_plugin_source_api()
                        .call_hydrate(&mut store, event)
                        .await
                }
                .await;
                (result, store)
            },
        )
        .await?;
        Ok(hydrated)
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
                    let source = pre.instantiate_async(&mut store).await?;
                    source
                        .mecha_plugin_source_api()
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
