//! A policy that computes forever: the host must stop it (fuel or deadline) and deny the
//! result rather than let it through.

use mecha_plugin_sdk::policy::{self, Decision, PluginInfo, Policy, StoredEvent, TaskResult};

struct Greedy;

impl Policy for Greedy {
    fn describe() -> PluginInfo {
        policy::info("greedy", "0.1.0", "never decides")
    }

    fn evaluate(
        _event: StoredEvent,
        proposed: TaskResult,
        _rules: String,
    ) -> (TaskResult, Decision) {
        let mut state = 1u64;
        loop {
            state = std::hint::black_box(state.wrapping_mul(6364136223846793005).wrapping_add(1));
            if state == 0 {
                return (proposed, Decision::default());
            }
        }
    }
}

mecha_plugin_sdk::export_policy!(Greedy);
