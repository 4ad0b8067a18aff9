//! Calling policy plugins: a worker's proposed result in, the part allowed out, with the
//! decision that says why.
//!
//! Policies run on the fuel-metered engine (see `engine`): a call that traps, runs out of fuel,
//! time or memory is an error, which the caller turns into "deny everything".

use std::collections::BTreeMap;
use std::sync::Arc;

use super::CallError;
use super::bindings::policy::{Policy, PolicyPre};
use super::bindings::source::types;
use super::limits::Limits;
use super::spare::Instance;
use super::world_plugin::world_plugin;

world_plugin!(
    /// A loaded policy plugin: pre-linked once, instantiated per call; every call is metered.
    PolicyPlugin, crate::plugin::World::Policy, PolicyPre, Policy, mecha_plugin_policy_api, PolicyPlugin::limits
);

/// 200 million units of fuel (roughly as many wasm instructions) per evaluation: the `rules`
/// policy needs well under a million for a large result, so this stops only a runaway.
pub const POLICY_FUEL: u64 = 200_000_000;

impl PolicyPlugin {
    /// The limits of a policy call: the plugin's own, with [`POLICY_FUEL`].
    pub fn limits(limits: Limits) -> Limits {
        Limits {
            fuel: Some(POLICY_FUEL),
            ..limits
        }
    }

    /// Runs `evaluate` on a pristine instance; `rules` is the worker's policy configuration as
    /// JSON text.
    pub async fn evaluate(
        &self,
        settings: Arc<BTreeMap<String, String>>,
        limits: Limits,
        event: &types::StoredEvent,
        proposed: &types::TaskResult,
        rules: &str,
    ) -> Result<(types::TaskResult, types::Decision), CallError> {
        let state = self.state(limits).settings(settings).build();
        let (answer, _) = self
            .run(
                limits,
                state,
                Instance::Spare,
                |policy, mut store| async move {
                    let api = policy.mecha_plugin_policy_api();
                    let answer = api.call_evaluate(&mut store, event, proposed, rules).await;
                    (answer, store)
                },
            )
            .await?;
        Ok(answer)
    }
}
