//! Calling source plugins: one webhook request in, events or a reply out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::CallError;
use super::bindings::source::{Outcome, Source, SourcePre, types};
use super::host::http::HttpGrant;
use super::limits::Limits;
use super::spare::Instance;
use super::world_plugin::world_plugin;
use crate::config::secrets::Secret;

world_plugin!(
    /// A loaded source plugin, ready to be called: pre-linked once, on a pristine instance
    /// per call (its spare, made ahead, when ready).
    SourcePlugin, crate::plugin::World::Source, SourcePre, Source, mecha_plugin_source_api, std::convert::identity
);

/// Everything a source call produced.
pub struct SourceAnswer {
    /// The plugin's own answer: events, a reply, or the error it reports to the sender.
    pub outcome: Result<Outcome, types::Error>,
    /// Whether a `verify` check succeeded during the call.
    pub verified: bool,
    /// The SHA-256 of the message whose HMAC a `verify` check matched, if one did: what the
    /// sender signed, for recognising the same signed request sent again.
    pub signed_digest: Option<[u8; 32]>,
    /// The answer the plugin chose for stored events (`acknowledge`), if any.
    pub acknowledgement: Option<types::Reply>,
}

/// What one source instance runs with: its settings, secrets and limits.
#[derive(Clone, Default)]
pub struct SourceCall {
    pub settings: Arc<BTreeMap<String, String>>,
    pub secrets: Arc<BTreeMap<String, Secret>>,
    pub limits: Limits,
    /// What the plugin's wall clock shows; `None`: the system's. Tests set it to check a
    /// provider's published signature vector, which is only valid at its own timestamp.
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
    /// Runs `handle-webhook` on a pristine instance.
    pub async fn handle_webhook(
        &self,
        call: &SourceCall,
        request: types::Request,
    ) -> Result<SourceAnswer, CallError> {
        let state = self
            .state(call.limits)
            .settings(call.settings.clone())
            .secrets(call.secrets.clone())
            .clock(call.clock)
            .build();
        let (outcome, mut state) = self
            .run(
                call.limits,
                state,
                Instance::Spare,
                |source, mut store| async move {
                    let api = source.mecha_plugin_source_api();
                    let outcome = api.call_handle_webhook(&mut store, &request).await;
                    (outcome, store)
                },
            )
            .await?;
        Ok(SourceAnswer {
            outcome,
            verified: state.verify.verified(),
            signed_digest: state.verify.signed_digest(),
            acknowledgement: state.acknowledge.take(),
        })
    }

    /// Runs `hydrate` on a pristine instance: the event with what the provider's API adds to it,
    /// its requests carrying `traceparent`. The outer error is the call failing (trap,
    /// deadline); the inner one is the plugin's own.
    pub async fn hydrate(
        &self,
        call: &HydrateCall,
        event: &types::Event,
        traceparent: Option<String>,
    ) -> Result<Result<types::Event, types::Error>, CallError> {
        let state = self
            .state(call.limits)
            .settings(call.settings.clone())
            .http(call.grant.clone())
            .traceparent(traceparent)
            .build();
        let (hydrated, _) = self
            .run(
                call.limits,
                state,
                Instance::Spare,
                |source, mut store| async move {
                    let api = source.mecha_plugin_source_api();
                    let hydrated = api.call_hydrate(&mut store, event).await;
                    (hydrated, store)
                },
            )
            .await?;
        Ok(hydrated)
    }
}
