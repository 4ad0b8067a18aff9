//! A worker's `policy:`: the `rules` plugin's configuration (a map, as in the Go mecha) or a
//! list of steps, each `{plugin: <policy plugin>, config: <its configuration>}`. Read here, where
//! the definition is checked, so that a malformed `policy:` is refused when the worker is added
//! instead of denying every action at write-back; `pipeline::policy_chain` applies the steps.

use serde_json::Value;

/// The policy plugin a `policy:` map configures.
pub const RULES: &str = "rules";

/// One policy to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub plugin: String,
    /// Its configuration, as JSON text.
    pub config: String,
}

/// Reads a worker's `policy:` into its steps; `None` or `null` is no policy at all.
pub fn steps(policy: Option<&Value>) -> Result<Vec<Step>, String> {
    let config = |value: &Value| serde_json::to_string(value).unwrap_or_default();
    match policy {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(map @ Value::Object(_)) => Ok(vec![Step {
            plugin: RULES.to_owned(),
            config: config(map),
        }]),
        Some(Value::Array(list)) => {
            list.iter()
                .enumerate()
                .map(|(index, step)| {
                    let plugin = step
                        .get("plugin")
                        .and_then(Value::as_str)
                        .filter(|name| !name.is_empty())
                        .ok_or_else(|| {
                            format!("policy[{index}] needs `plugin: <policy plugin name>`")
                        })?;
                    if let Some(extra) = step.as_object().and_then(|step| {
                        step.keys().find(|key| *key != "plugin" && *key != "config")
                    }) {
                        return Err(format!(
                            "policy[{index}]: unknown key `{extra}` (a step has plugin and config)"
                        ));
                    }
                    Ok(Step {
                        plugin: plugin.to_owned(),
                        config: config(step.get("config").unwrap_or(&Value::Null)),
                    })
                })
                .collect()
        }
        Some(_) => Err(
            "policy must be a map (the rules policy's settings) or a list of {plugin, config}"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_configures_rules_and_a_list_chains_plugins() {
        assert_eq!(steps(None), Ok(Vec::new()));
        assert_eq!(steps(Some(&Value::Null)), Ok(Vec::new()));
        let map = serde_json::json!({"comment": {"allow": true}});
        assert_eq!(
            steps(Some(&map)),
            Ok(vec![Step {
                plugin: RULES.into(),
                config: map.to_string()
            }])
        );
        let list = serde_json::json!([
            {"plugin": "rules", "config": {"labels": {"allow": false}}},
            {"plugin": "guard"}
        ]);
        let chain = steps(Some(&list)).expect("valid");
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].config, r#"{"labels":{"allow":false}}"#);
        assert_eq!(chain[1].plugin, "guard");
        assert_eq!(chain[1].config, "null");
        for bad in [
            serde_json::json!("rules"),
            serde_json::json!([{"config": {}}]),
            serde_json::json!([{"plugin": "rules", "conifg": {}}]),
        ] {
            assert!(steps(Some(&bad)).is_err(), "{bad}");
        }
    }
}
