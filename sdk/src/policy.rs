//! Policy plugins: decide which of a worker's proposed actions go out.
//!
//! A policy sees every result before anything reaches the provider. It returns the result with
//! denied actions removed or rewritten, and a [`Decision`] saying why, which the host logs and
//! records in the audit log. The policy world imports only `log` and `config`: no clock, network
//! or randomness, so the same input always gives the same decision.
//!
//! ```
//! use mecha_plugin_sdk::policy::{self, Action, Decision, PluginInfo, Policy, StoredEvent, TaskResult};
//!
//! struct NoCommits;
//!
//! impl Policy for NoCommits {
//!     fn describe() -> PluginInfo {
//!         policy::info("no-commits", env!("CARGO_PKG_VERSION"), "Drops every proposed commit")
//!     }
//!
//!     fn evaluate(_event: StoredEvent, mut proposed: TaskResult, _rules: String) -> (TaskResult, Decision) {
//!         let mut decision = Decision::default();
//!         for action in proposed.actions() {
//!             match action {
//!                 Action::Commit => decision.deny(action, "commit: never allowed"),
//!                 _ => decision.allow(action, action.as_str()),
//!             }
//!         }
//!         proposed.commit = None;
//!         (proposed, decision)
//!     }
//! }
//!
//! mecha_plugin_sdk::export_policy!(NoCommits);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "policy",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "mecha_plugin_sdk::policy::bindings",
        // One set of types for every world, so their builders are written once.
        with: {
            "mecha:plugin/types@0.1.0": crate::source::bindings::mecha::plugin::types,
        },
    });
}

pub use crate::source::bindings::mecha::plugin::types::{
    Attr, Comment, Commit, Decision, Event, Labels, PluginInfo, Status, StoredEvent, TaskResult,
    Value, Verdict,
};
pub use crate::source::info;
pub use bindings::mecha::plugin::log::Level;

use bindings::mecha::plugin::{config, log};

/// A policy plugin: implement this on a type and export it with [`export_policy!`].
pub trait Policy {
    /// Name, version and the settings the plugin reads.
    fn describe() -> PluginInfo;

    /// Filters `proposed` under `rules`, the worker's policy configuration as JSON text.
    ///
    /// Returns what may go out and the decision that says why. A policy that cannot make sense
    /// of `rules` should deny rather than allow: the host treats a trap the same way.
    fn evaluate(event: StoredEvent, proposed: TaskResult, rules: String) -> (TaskResult, Decision);
}

/// Exports a type implementing [`Policy`] as the component's `policy-api`.
///
/// The export exists only in wasm builds: natively (tests, benchmarks) the plugin is a plain
/// library, and symbol names like `mecha:plugin/policy-api@0.1.0#evaluate` would not link.
#[macro_export]
macro_rules! export_policy {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Exports;
            impl $crate::policy::bindings::exports::mecha::plugin::policy_api::Guest for Exports {
                fn describe() -> $crate::policy::PluginInfo {
                    <$ty as $crate::policy::Policy>::describe()
                }
                fn evaluate(
                    event: $crate::policy::StoredEvent,
                    proposed: $crate::policy::TaskResult,
                    rules: String,
                ) -> ($crate::policy::TaskResult, $crate::policy::Decision) {
                    <$ty as $crate::policy::Policy>::evaluate(event, proposed, rules)
                }
            }
            $crate::policy::bindings::__export_policy_world!(Exports with_types_in $crate::policy::bindings);
        };
        // Natively the plugin is a library; this keeps its exported type from looking unused.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::policy::Policy>::evaluate;
        };
    };
}

/// The operator's setting `key` for this plugin instance.
pub fn setting(key: &str) -> Option<String> {
    config::get(key)
}

/// Writes a line to the daemon's log, tagged with this plugin and the current trace id.
pub fn log(level: Level, message: &str) {
    log::emit(level, message, &[]);
}

/// One part of a [`TaskResult`] that a policy rules on. `output` is not one: it is the worker's
/// free text, which every policy passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Comment,
    Labels,
    Status,
    Commit,
    Metadata,
}

impl Action {
    /// Every action, in the order decisions list them.
    pub const ALL: [Action; 5] = [
        Action::Comment,
        Action::Labels,
        Action::Status,
        Action::Commit,
        Action::Metadata,
    ];

    /// The name a [`Verdict`] carries, e.g. `comment`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Comment => "comment",
            Action::Labels => "labels",
            Action::Status => "status",
            Action::Commit => "commit",
            Action::Metadata => "metadata",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TaskResult {
    /// A result with nothing but `output`, the part every policy lets through.
    pub fn output_only(output: Option<String>) -> Self {
        TaskResult {
            output,
            comment: None,
            labels: None,
            status: None,
            commit: None,
            metadata: None,
        }
    }

    /// The actions this result proposes, in [`Action::ALL`] order.
    pub fn actions(&self) -> Vec<Action> {
        Action::ALL
            .into_iter()
            .filter(|action| self.has(*action))
            .collect()
    }

    /// Whether this result proposes `action`.
    pub fn has(&self, action: Action) -> bool {
        match action {
            Action::Comment => self.comment.is_some(),
            Action::Labels => self.labels.is_some(),
            Action::Status => self.status.is_some(),
            Action::Commit => self.commit.is_some(),
            Action::Metadata => self.metadata.is_some(),
        }
    }
}

impl Default for Decision {
    /// A decision with nothing allowed or denied yet.
    fn default() -> Self {
        Decision {
            allowed: Vec::new(),
            denied: Vec::new(),
        }
    }
}

impl Decision {
    /// Records that `action` goes out, and why (e.g. `comment (truncated)`).
    pub fn allow(&mut self, action: Action, reason: impl Into<String>) {
        self.allowed.push(Verdict {
            action: action.as_str().to_owned(),
            reason: reason.into(),
        });
    }

    /// Records that `action`, or a part of it, was stopped, and why.
    pub fn deny(&mut self, action: Action, reason: impl Into<String>) {
        self.denied.push(Verdict {
            action: action.as_str().to_owned(),
            reason: reason.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_lists_present_parts_in_order_without_output() {
        let mut result = TaskResult::output_only(Some("done".into()));
        assert!(result.actions().is_empty());
        result.metadata = Some("{}".into());
        result.comment = Some(Comment { body: "hi".into() });
        assert_eq!(result.actions(), [Action::Comment, Action::Metadata]);
    }

    #[test]
    fn decision_records_action_names() {
        let mut decision = Decision::default();
        decision.allow(Action::Comment, "comment");
        decision.deny(Action::Labels, "label add \"x\": blocked by policy");
        assert_eq!(decision.allowed[0].action, "comment");
        assert_eq!(decision.denied[0].action, "labels");
        assert_eq!(
            Action::ALL.map(Action::as_str),
            ["comment", "labels", "status", "commit", "metadata"]
        );
    }
}
