//! The `log` import: a plugin's log lines join the daemon's, tagged with the plugin, limited so
//! that a chatty or hostile plugin cannot flood the log. (A source runs before its event
//! exists, so there is no trace id to tag with yet.)

use std::sync::Arc;

use super::PluginState;
use crate::plugin::bindings::source::log::{self, Field, Level};

/// 100 lines per call: a plugin that logs more is looping, and the rest would only hide the
/// daemon's own lines.
const MAX_LINES_PER_CALL: u32 = 100;

/// 2 KiB per message or field value: room for an error with context, not for a payload dump.
const MAX_TEXT_BYTES: usize = 2048;

pub struct LogContext {
    plugin: Arc<str>,
    lines: u32,
}

impl LogContext {
    pub fn new(plugin: Arc<str>) -> LogContext {
        LogContext { plugin, lines: 0 }
    }
}

impl log::Host for PluginState {
    fn emit(&mut self, level: Level, message: String, fields: Vec<Field>) {
        let context = &mut self.log;
        context.lines += 1;
        if context.lines > MAX_LINES_PER_CALL {
            if context.lines == MAX_LINES_PER_CALL + 1 {
                tracing::warn!(plugin = %context.plugin, "plugin logged more than {MAX_LINES_PER_CALL} lines in one call; dropping the rest");
            }
            return;
        }
        let message = truncate(message);
        let fields: Vec<String> = fields
            .into_iter()
            .map(|field| format!("{}={}", truncate(field.key), truncate(field.value)))
            .collect();
        let fields = fields.join(" ");
        let plugin = &*context.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, fields, "{message}"),
            Level::Debug => tracing::debug!(plugin, fields, "{message}"),
            Level::Info => tracing::info!(plugin, fields, "{message}"),
            Level::Warn => tracing::warn!(plugin, fields, "{message}"),
            Level::Error => tracing::error!(plugin, fields, "{message}"),
        }
    }
}

/// Cuts `text` to [`MAX_TEXT_BYTES`] on a character boundary.
fn truncate(mut text: String) -> String {
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncates_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let cut = truncate(long);
        assert!(cut.len() <= super::MAX_TEXT_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short".into()), "short");
    }
}
