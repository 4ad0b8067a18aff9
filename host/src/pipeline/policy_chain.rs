//! A worker's policies, applied in order to its proposed result (reference section 7, chained).
//!
//! `policy:` in a worker definition is either the `rules` plugin's configuration (a map with
//! `comment`, `labels`, `status`, `commit`, `metadata` sections, as in the Go mecha) or a list
//! of steps, each `{plugin: <policy plugin>, config: <its configuration>}`. Each step sees the
//! result the previous one let through. Anything that goes wrong fails closed: an unreadable
//! `policy:`, a policy that is not installed, or a call that traps, runs out of fuel, time or
//! memory denies every action, and the decision says why.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::config::server::ServerConfig;
use crate::config::worker::policy::steps;
use crate::plugin::bindings::source::types;
use crate::plugin::limits::Limits;
use crate::plugin::loader::Runner;
use crate::plugin::{PluginRegistry, World};
use crate::worker::result::{StatusState, WorkerResult};

/// The actions of a result that a policy judges (`output` always passes).
const ACTIONS: [&str; 5] = ["comment", "labels", "status", "commit", "metadata"];

/// What the chain decided, as stored with the task and in the `policy.applied` audit record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Decision {
    /// The policies applied, in order; empty when the worker has none.
    pub policies: Vec<String>,
    pub allowed: Vec<Verdict>,
    pub denied: Vec<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub action: String,
    pub reason: String,
}

impl Decision {
    pub fn denied_any(&self) -> bool {
        !self.denied.is_empty()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Applies the worker's policies to `proposed`; returns what may be written back and why.
pub async fn apply(
    registry: &PluginRegistry,
    config: &ServerConfig,
    policy: Option<&Value>,
    event: &types::StoredEvent,
    proposed: types::TaskResult,
) -> (types::TaskResult, Decision) {
    let steps = match steps(policy) {
        Ok(steps) => steps,
        Err(reason) => return deny_all(&proposed, Vec::new(), &reason),
    };
    if steps.is_empty() {
        let allowed = present(&proposed)
            .map(|action| Verdict {
                action: action.to_owned(),
                reason: format!("{action}: no policy"),
            })
            .collect();
        return (
            proposed,
            Decision {
                policies: Vec::new(),
                allowed,
                denied: Vec::new(),
            },
        );
    }
    let names: Vec<String> = steps.iter().map(|step| step.plugin.clone()).collect();
    let mut result = proposed;
    let mut denied = Vec::new();
    let mut allowed = Vec::new();
    for step in &steps {
        let Some(Runner::Policy(plugin)) = registry
            .get(World::Policy, &step.plugin)
            .map(|loaded| loaded.runner.clone())
        else {
            let reason = format!(
                "policy plugin {} is not installed (`mecha plugin ls` lists them)",
                step.plugin
            );
            return deny_all(&result, names, &reason);
        };
        let plugin_config = config.plugin(&step.plugin);
        let settings = Arc::new(plugin_config.settings.clone());
        let limits = Limits::from_config(&plugin_config);
        match plugin
            .evaluate(settings, limits, event, &result, &step.config)
            .await
        {
            Ok((next, decision)) => {
                denied.extend(decision.denied.into_iter().map(verdict));
                allowed = decision.allowed.into_iter().map(verdict).collect();
                result = next;
            }
            Err(err) => return deny_all(&result, names, &err.to_string()),
        }
    }
    (
        result,
        Decision {
            policies: names,
            allowed,
            denied,
        },
    )
}

fn verdict(verdict: types::Verdict) -> Verdict {
    Verdict {
        action: verdict.action,
        reason: verdict.reason,
    }
}

/// Keeps only `output`; every other action present is denied with `reason`.
fn deny_all(
    proposed: &types::TaskResult,
    policies: Vec<String>,
    reason: &str,
) -> (types::TaskResult, Decision) {
    let denied = present(proposed)
        .map(|action| Verdict {
            action: action.to_owned(),
            reason: format!("{action}: denied ({reason})"),
        })
        .collect();
    let kept = types::TaskResult {
        output: proposed.output.clone(),
        comment: None,
        labels: None,
        status: None,
        commit: None,
        metadata: None,
    };
    (
        kept,
        Decision {
            policies,
            allowed: Vec::new(),
            denied,
        },
    )
}

/// The judged actions `result` carries.
fn present(result: &types::TaskResult) -> impl Iterator<Item = &'static str> + '_ {
    ACTIONS.into_iter().filter(|action| match *action {
        "comment" => result.comment.is_some(),
        "labels" => result.labels.is_some(),
        "status" => result.status.is_some(),
        "commit" => result.commit.is_some(),
        _ => result.metadata.is_some(),
    })
}

/// A worker's parsed result in the plugins' terms.
pub fn task_result(result: &WorkerResult) -> types::TaskResult {
    types::TaskResult {
        output: result.output.clone(),
        comment: result.comment.as_ref().map(|comment| types::Comment {
            body: comment.body.clone(),
        }),
        labels: result.labels.as_ref().map(|labels| types::Labels {
            add: labels.add.clone(),
            remove: labels.remove.clone(),
        }),
        status: result.status.as_ref().map(|status| types::Status {
            state: status_text(status.state).to_owned(),
            description: status.description.clone().unwrap_or_default(),
        }),
        commit: result.commit.as_ref().map(|commit| types::Commit {
            message: commit.message.clone(),
            diff: commit.diff.clone(),
        }),
        metadata: result
            .metadata
            .as_ref()
            .map(|metadata| Value::Object(metadata.clone()).to_string()),
    }
}

fn status_text(state: StatusState) -> &'static str {
    match state {
        StatusState::Error => "error",
        StatusState::Failure => "failure",
        StatusState::Pending => "pending",
        StatusState::Success => "success",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_all_keeps_only_output() {
        let proposed = types::TaskResult {
            output: Some("text".into()),
            comment: Some(types::Comment { body: "c".into() }),
            labels: None,
            status: Some(types::Status {
                state: "success".into(),
                description: String::new(),
            }),
            commit: None,
            metadata: Some("{}".into()),
        };
        let (kept, decision) = deny_all(&proposed, vec!["rules".into()], "boom");
        assert_eq!(kept.output.as_deref(), Some("text"));
        assert!(kept.comment.is_none() && kept.status.is_none() && kept.metadata.is_none());
        let reasons: Vec<&str> = decision.denied.iter().map(|v| v.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "comment: denied (boom)",
                "status: denied (boom)",
                "metadata: denied (boom)"
            ]
        );
        assert!(decision.allowed.is_empty());
    }
}
