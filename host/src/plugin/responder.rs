//! Calling responder plugins: an allowed result in, the provider written to through the
//! host's gated outgoing HTTP, a receipt or an error that says whether a retry can help.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CallError;
use super::bindings::responder::{Receipt, RespondError, ResponderPre};
use super::bindings::source::types;
use super::engine::CallGate;
use super::host::http::HttpGrant;
use super::host::{PluginState, StateBuilder};
use super::limits::{self, Limits};

/// A loaded responder plugin: pre-linked once, instantiated per call.
pub struct ResponderPlugin {
    name: Arc<str>,
    pre: ResponderPre<PluginState>,
    gate: CallGate,
}

/// What one responder runs with: its settings, the origins it may call and its limits.
#[derive(Clone)]
pub struct ResponderCall {
    pub settings: Arc<BTreeMap<String, String>>,
    pub grant: Arc<HttpGrant>,
    pub limits: Limits,
}

impl ResponderPlugin {
    pub fn new(name: Arc<str>, pre: ResponderPre<PluginState>, gate: CallGate) -> ResponderPlugin {
        ResponderPlugin { name, pre, gate }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same plugin under another name, e.g. the one it gave when described.
    pub fn renamed(self, name: &str) -> ResponderPlugin {
        ResponderPlugin {
            name: Arc::from(name),
            ..self
        }
    }

    /// Runs `respond` on a fresh instance. The outer error is the call failing (trap, deadline);
    /// the inner one is the plugin's own report of what the provider said.
    pub async fn respond(
        &self,
        call: &ResponderCall,
        event: &types::StoredEvent,
        allowed: &types::TaskResult,
        marker: &str,
    ) -> Result<Result<Receipt, RespondError>, CallError> {
        let state = StateBuilder::new(self.name.clone(), call.limits.memory_bytes())
            .settings(call.settings.clone())
            .http(call.grant.clone())
            .build();
        let pre = &self.pre;
        let (answer, _) = limits::run(
            pre.engine(),
            &self.gate,
            &self.name,
            call.limits,
            state,
            |mut store| async move {
                let result = async {
                    let responder = pre.instantiate_async(&mut store).await?;
                    responder
                        .mecha_plugin_responder_api()
                        .call_respond(&mut store, event, allowed, marker)
                        .await
                }
                .await;
                (result, store)
            },
        )
        .await?;
        Ok(answer)
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
                    let responder = pre.instantiate_async(&mut store).await?;
                    responder
                        .mecha_plugin_responder_api()
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
