//! What an installed plugin was granted: the HTTP origins it may call, the secrets it may read
//! and the settings it takes, as the operator saw and accepted them at install (`mecha plugin
//! install` asks, `--yes` answers for scripts).
//!
//! The grant is recorded with the install in `lock.json`; at run time the registry narrows what
//! the plugin declared to it ([`Grants::narrow`]), so the sources, responders and policies give
//! the plugin only what was granted, whatever it declares later. An upgrade that asks for more
//! than its version had been granted asks again ([`Grants::beyond`]).

use serde::{Deserialize, Serialize};

use super::loader::PluginInfo;

/// A set of capabilities, each list sorted and without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// HTTP origins (`https://api.github.com`): the one the operator's token is sent to.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Names under the plugin's `secrets.yml` section (`webhook_secret`).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Names of the settings it reads from `config.yml`; shown, since they say what it does,
    /// but no capability: the plugin sees only what the operator writes there.
    #[serde(default)]
    pub settings: Vec<String>,
}

impl Grants {
    /// Everything `info` declares.
    pub fn requested(info: &PluginInfo) -> Grants {
        Grants {
            hosts: sorted(&info.hosts),
            secrets: sorted(&info.secrets),
            settings: sorted(&info.settings),
        }
    }

    /// What `self` asks for that `granted` does not hold.
    pub fn beyond(&self, granted: &Grants) -> Grants {
        let extra = |asked: &[String], held: &[String]| -> Vec<String> {
            asked
                .iter()
                .filter(|item| !held.contains(item))
                .cloned()
                .collect()
        };
        Grants {
            hosts: extra(&self.hosts, &granted.hosts),
            secrets: extra(&self.secrets, &granted.secrets),
            settings: extra(&self.settings, &granted.settings),
        }
    }

    /// Whether this grants no host and no secret: settings alone give no capability.
    pub fn is_capability_free(&self) -> bool {
        self.hosts.is_empty() && self.secrets.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.is_capability_free() && self.settings.is_empty()
    }

    /// Keeps in `info` only the hosts and secrets this grants: what the runtime reads to build
    /// a plugin's secrets and HTTP grant.
    pub fn narrow(&self, info: &mut PluginInfo) {
        info.hosts.retain(|host| self.hosts.contains(host));
        info.secrets.retain(|secret| self.secrets.contains(secret));
    }

    /// The lines an operator reads before granting: one per kind, `none` when empty.
    pub fn describe(&self) -> String {
        format!(
            "HTTP origins: {}\nsecrets:      {}\nsettings:     {}\n",
            listed(&self.hosts),
            listed(&self.secrets),
            listed(&self.settings)
        )
    }
}

/// `items` as an operator reads them: comma-separated, `none` when there are none.
pub fn listed(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items.dedup();
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(hosts: &[&str], secrets: &[&str]) -> PluginInfo {
        PluginInfo {
            name: "x".into(),
            version: "1.0.0".into(),
            summary: String::new(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            settings: vec!["channel".into()],
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn an_upgrade_asking_for_a_new_origin_or_secret_is_beyond_its_grant() {
        let granted = Grants::requested(&info(&["https://a.example"], &["token"]));
        let same = Grants::requested(&info(&["https://a.example"], &["token"]));
        assert!(same.beyond(&granted).is_empty());
        let less = Grants::requested(&info(&[], &["token"]));
        assert!(less.beyond(&granted).is_empty());
        let more = Grants::requested(&info(&["https://a.example", "https://b.example"], &[]));
        let extra = more.beyond(&granted);
        assert_eq!(extra.hosts, ["https://b.example"]);
        assert!(!extra.is_capability_free());
    }

    #[test]
    fn narrowing_keeps_only_what_was_granted() {
        let granted = Grants::requested(&info(&["https://a.example"], &["token"]));
        let mut declared = info(
            &["https://evil.example", "https://a.example"],
            &["token", "key"],
        );
        granted.narrow(&mut declared);
        assert_eq!(declared.hosts, ["https://a.example"]);
        assert_eq!(declared.secrets, ["token"]);
    }
}
