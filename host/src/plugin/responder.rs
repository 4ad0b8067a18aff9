//! Calling responder plugins: an allowed result in, the provider written to through the
//! host's gated outgoing HTTP, a receipt or an error that says whether a retry can help.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CallError;
use super::bindings::responder::{Receipt, RespondError, Responder, ResponderPre};
use super::bindings::source::types;
use super::host::http::{HttpGrant, RetryAfter};
use super::limits::Limits;
use super::spare::Instance;
use super::world_plugin::world_plugin;

world_plugin!(
    /// A loaded responder plugin: pre-linked once, instantiated per call.
    ResponderPlugin, crate::plugin::World::Responder, ResponderPre, Responder, mecha_plugin_responder_api, std::convert::identity
);

/// What one responder runs with: its settings, the origins it may call and its limits.
#[derive(Clone)]
pub struct ResponderCall {
    pub settings: Arc<BTreeMap<String, String>>,
    pub grant: Arc<HttpGrant>,
    pub limits: Limits,
}

/// What one responder call came to.
pub struct Responded {
    /// The plugin's receipt, or its own report of what the provider said.
    pub answer: Result<Receipt, RespondError>,
    /// The `Retry-After` the provider sent with its last 429 or 503 during the call, as sent.
    pub retry_after: Option<String>,
}

impl ResponderPlugin {
    /// Runs `respond` on a pristine instance, its requests carrying `traceparent`. The error is
    /// the call failing (trap, deadline).
    pub async fn respond(
        &self,
        call: &ResponderCall,
        event: &types::StoredEvent,
        allowed: &types::TaskResult,
        marker: &str,
        traceparent: Option<String>,
    ) -> Result<Responded, CallError> {
        let retry_after = RetryAfter::default();
        let state = self
            .state(call.limits)
            .settings(call.settings.clone())
            .http(call.grant.clone())
            .retry_after(retry_after.clone())
            .traceparent(traceparent)
            .build();
        let (answer, _) = self
            .run(
                call.limits,
                state,
                Instance::Spare,
                |responder, mut store| async move {
                    let api = responder.mecha_plugin_responder_api();
                    let answer = api.call_respond(&mut store, event, allowed, marker).await;
                    (answer, store)
                },
            )
            .await?;
        Ok(Responded {
            answer,
            retry_after: retry_after.value(),
        })
    }
}
