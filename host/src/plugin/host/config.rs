//! The `config` import: the plugin reads the settings the operator gave it, and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::PluginState;
use crate::plugin::bindings::source::config;

pub struct ConfigContext {
    settings: Arc<BTreeMap<String, String>>,
}

impl ConfigContext {
    pub fn new(settings: Arc<BTreeMap<String, String>>) -> ConfigContext {
        ConfigContext { settings }
    }
}

impl config::Host for PluginState {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.settings.get(&key).cloned()
    }
}
