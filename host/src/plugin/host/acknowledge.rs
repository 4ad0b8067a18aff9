//! The `acknowledge` import: the HTTP answer a source chooses for a webhook whose events are
//! stored, kept for the call and sent by the API once the store has them.

use super::PluginState;
use crate::plugin::bindings::source::{acknowledge, types};

#[derive(Default)]
pub struct AcknowledgeContext {
    reply: Option<types::Reply>,
}

impl AcknowledgeContext {
    /// The answer the plugin set during the call, if any.
    pub fn take(&mut self) -> Option<types::Reply> {
        self.reply.take()
    }
}

impl acknowledge::Host for PluginState {
    fn set_reply(&mut self, reply: types::Reply) {
        self.acknowledge.reply = Some(reply);
    }
}
