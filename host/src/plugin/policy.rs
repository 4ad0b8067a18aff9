//! Calling policy plugins: a worker's proposed result in, the part allowed out, with the
//! decision that says why.
//!
//! Policies run on the fuel-metered engine (see `engine`): a call that traps, runs out of fuel,
//! time or memory is an error, which the caller turns into "deny everything".

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CallError;
use super::bindings::policy::PolicyPre;
use super::bindings::source::types;
use super::engine::CallGate;
use super::host::{PluginState, StateBuilder};
use super::limits::{self, Limits};

/// 200 million units of fuel (roughly as many wasm instructions) per evaluation: the `rules`
/// policy needs well under a million for a large result, so this stops only a runaway.
pub const POLICY_FUEL: u64 = 200_000_000;

/// A loaded policy plugin: pre-linked once, instantiated per call.
pub struct PolicyPlugin {
    name: Arc<str>,
    pre: PolicyPre<PluginState>,
    gate: CallGate,
}

impl PolicyPlugin {
    pub fn new(name: Arc<str>, pre: PolicyPre<PluginState>, gate: CallGate) -> PolicyPlugin {
        PolicyPlugin { name, pre, gate }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same plugin under another name, e.g. the one it gave when described.
    pub fn renamed(self, name: &str) -> PolicyPlugin {
        PolicyPlugin {
            name: Arc::from(name),
            ..self
        }
    }

    /// The limits of a policy call: the plugin's own, with [`POLICY_FUEL`].
    pub fn limits(limits: Limits) -> Limits {
        Limits {
            fuel: Some(POLICY_FUEL),
            ..limits
        }
    }

    /// Runs `evaluate` on a fresh instance; `rules` is the worker's policy configuration as
    /// JSON text.
    pub async fn evaluate(
        &self,
        settings: Arc<BTreeMap<String, String>>,
        limits: Limits,
        event: &types::StoredEvent,
        proposed: &types::TaskResult,
        rules: &str,
    ) -> Result<(types::TaskResult, types::Decision), CallError> {
        let state = StateBuilder::new(self.name.clone(), limits.memory_bytes())
            .settings(settings)
            .build();
        let pre = &self.pre;
        let (answer, _) = limits::run(
            pre.engine(),
            &self.gate,
            &self.name,
            PolicyPlugin::limits(limits),
            state,
            |mut store| async move {
                let result = async {
                    let policy = pre.instantiate_async(&mut store).await?;
                    policy
                        .mecha_plugin_policy_api()
                        .call_evaluate(&mut store, event, proposed, rules)
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
            PolicyPlugin::limits(limits),
            state,
            |mut store| async move {
                let result = async {
                    let policy = pre.instantiate_async(&mut store).await?;
                    policy
                        .mecha_plugin_policy_api()
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
