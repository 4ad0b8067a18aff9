//! The `rules` policy: per-action rules from the worker's `policy:` config (comment length,
//! label block and allow lists, valid status states, commit size, metadata redaction).
//!
//! The logic lives in [`config`] (what the operator wrote) and [`rules`] (what it does to a
//! result), which build natively; this file only exports them as the component's `policy-api`.

pub mod config;
pub mod rules;

use mecha_plugin_sdk::policy::{self, Decision, PluginInfo, Policy, StoredEvent, TaskResult};

struct Rules;

impl Policy for Rules {
    fn describe() -> PluginInfo {
        policy::info(
            "rules",
            env!("CARGO_PKG_VERSION"),
            "Per-action rules: comment length, label lists, status states, commit size, metadata",
        )
    }

    fn evaluate(
        _event: StoredEvent,
        proposed: TaskResult,
        rules: String,
    ) -> (TaskResult, Decision) {
        rules::evaluate(proposed, &rules)
    }
}

mecha_plugin_sdk::export_policy!(Rules);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_itself_as_rules_without_capabilities() {
        let info = Rules::describe();
        assert_eq!(info.name, "rules");
        assert!(info.secrets.is_empty() && info.settings.is_empty() && info.hosts.is_empty());
    }
}
