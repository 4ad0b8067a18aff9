//! What plugins say: their `log` lines and what they print to stdout and stderr.
//!
//! Both reach the daemon's log under the plugin's name, the `log` lines at their own level,
//! stdout at `info` and stderr at `warn` (where CPython and Rust write their tracebacks and
//! panics). Everything passes the daemon's [`Redactor`] first, and a [`PluginLog`] limits each
//! plugin's lines per call and per second, so that a chatty or hostile plugin cannot flood the
//! log or hide the daemon's own lines. A [`LogSink`] with a tap also keeps the lines, which is
//! how `mecha plugin test` shows them to a plugin's author. (A source runs before its event
//! exists, so there is no trace id to tag with yet.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::PluginState;
use crate::plugin::bindings::source::log::{self, Field, Level};
use crate::redact::Redactor;

/// 100 lines per call: a plugin that logs more is looping, and the rest would only hide the
/// daemon's own lines.
const MAX_LINES_PER_CALL: u32 = 100;

/// 200 lines a second per plugin, across its calls: webhooks arrive by the thousand per second,
/// and a plugin logging on each would otherwise drown the log.
const MAX_LINES_PER_SECOND: u32 = 200;

/// 2 KiB per message or field value: room for an error with context, not for a payload dump.
const MAX_TEXT_BYTES: usize = 2048;

/// Where a plugin's line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// The `log` import.
    Log,
    Stdout,
    Stderr,
}

/// One line a plugin wrote, redacted and cut to size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub stream: Stream,
    /// `trace` to `error`.
    pub level: &'static str,
    pub message: String,
    /// `key=value` pairs of a `log` line, space-separated; empty for output.
    pub fields: String,
}

/// The runtime-wide side: how lines are redacted, and the tap that keeps them.
#[derive(Default)]
pub struct LogSink {
    redactor: RwLock<Option<Redactor>>,
    /// Whether the tap is on: read on every call, so that the daemon, whose tap is never on,
    /// takes no lock for it on the ingest path.
    tapping: AtomicBool,
    tap: Tap<Line>,
    figures: Tap<CallFigures>,
}

/// What a started tap keeps, by plugin, in order; `None` until it is started.
type Tap<T> = Mutex<Option<Vec<(Arc<str>, T)>>>;

/// What one call of a plugin cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallFigures {
    /// Instantiating the component during the call, in microseconds (zero on a spare).
    pub instantiate_us: u64,
    /// The export's own run, in microseconds.
    pub call_us: u64,
    /// The most linear memory the call held, all memories together.
    pub peak_memory_bytes: u64,
    /// Fuel the call burned, on the metered engine (policies).
    pub fuel_used: Option<u64>,
    /// Whether the call ran on a spare instance made before it, so `instantiate_us` is zero.
    pub spare: bool,
}

impl LogSink {
    /// Keeps every later line too, for a command that shows them.
    pub fn start_tap(&self) {
        lock(&self.tap).get_or_insert_with(Vec::new);
        lock(&self.figures).get_or_insert_with(Vec::new);
        self.tapping.store(true, Ordering::Release);
    }

    fn tapping(&self) -> bool {
        self.tapping.load(Ordering::Acquire)
    }

    /// The figures of the calls made since the tap started, by plugin, in order.
    pub fn take_figures(&self) -> Vec<(Arc<str>, CallFigures)> {
        lock(&self.figures)
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Redacts every later line with `redactor` (the daemon's, rebuilt when secrets change).
    pub fn set_redactor(&self, redactor: Redactor) {
        *self.redactor.write().unwrap_or_else(|err| err.into_inner()) = Some(redactor);
    }

    /// The lines the tap kept, by plugin, in order; empty without a tap.
    pub fn take(&self) -> Vec<(Arc<str>, Line)> {
        lock(&self.tap)
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn redact(&self, text: &str) -> String {
        let redactor = self.redactor.read().unwrap_or_else(|err| err.into_inner());
        match redactor.as_ref() {
            Some(redactor) => redactor.redact(text).into_owned(),
            None => text.to_owned(),
        }
    }
}

/// One plugin's side: its name and its budget of lines per second.
pub struct PluginLog {
    plugin: Arc<str>,
    sink: Arc<LogSink>,
    budget: Mutex<Budget>,
}

/// Lines written in the current one-second window, and those dropped past the limit.
struct Budget {
    window: Instant,
    written: u32,
    dropped: u64,
}

impl PluginLog {
    pub fn new(plugin: Arc<str>, sink: Arc<LogSink>) -> PluginLog {
        PluginLog {
            plugin,
            sink,
            budget: Mutex::new(Budget {
                window: Instant::now(),
                written: 0,
                dropped: 0,
            }),
        }
    }

    pub fn plugin(&self) -> &Arc<str> {
        &self.plugin
    }

    /// The same sink, for the plugin under another name.
    pub fn renamed(&self, plugin: &str) -> PluginLog {
        PluginLog::new(Arc::from(plugin), self.sink.clone())
    }

    /// Records what one call cost: in the debug log, and in the tap.
    pub fn record(&self, figures: CallFigures) {
        tracing::debug!(plugin = %self.plugin, ?figures, "plugin call");
        if self.sink.tapping()
            && let Some(tap) = lock(&self.sink.figures).as_mut()
        {
            tap.push((self.plugin.clone(), figures));
        }
    }

    /// Writes what the plugin printed during one call, a line at a time.
    pub fn output(&self, stream: Stream, text: &str) {
        let level = if stream == Stream::Stderr {
            Level::Warn
        } else {
            Level::Info
        };
        for line in text
            .lines()
            .map(str::trim_end)
            .filter(|line| !line.is_empty())
        {
            self.write(stream, level, line, "");
        }
    }

    /// Writes one line, unless the plugin is over its budget for this second.
    fn write(&self, stream: Stream, level: Level, message: &str, fields: &str) {
        if !self.admit() {
            return;
        }
        let message = truncate(&self.sink.redact(message));
        let fields = self.sink.redact(fields);
        let plugin = &*self.plugin;
        let stream_name = stream.as_str();
        match level {
            Level::Trace => tracing::trace!(plugin, stream = stream_name, fields, "{message}"),
            Level::Debug => tracing::debug!(plugin, stream = stream_name, fields, "{message}"),
            Level::Info => tracing::info!(plugin, stream = stream_name, fields, "{message}"),
            Level::Warn => tracing::warn!(plugin, stream = stream_name, fields, "{message}"),
            Level::Error => tracing::error!(plugin, stream = stream_name, fields, "{message}"),
        }
        if self.sink.tapping()
            && let Some(tap) = lock(&self.sink.tap).as_mut()
        {
            tap.push((
                self.plugin.clone(),
                Line {
                    stream,
                    level: level_name(level),
                    message,
                    fields,
                },
            ));
        }
    }

    /// Whether one more line fits this second's budget; says once per window how many were
    /// dropped in the last.
    fn admit(&self) -> bool {
        let mut budget = lock(&self.budget);
        if budget.window.elapsed() >= Duration::from_secs(1) {
            if budget.dropped > 0 {
                tracing::warn!(
                    plugin = %self.plugin,
                    dropped = budget.dropped,
                    "plugin wrote more than {MAX_LINES_PER_SECOND} lines a second; dropped the rest"
                );
            }
            *budget = Budget {
                window: Instant::now(),
                written: 0,
                dropped: 0,
            };
        }
        if budget.written >= MAX_LINES_PER_SECOND {
            budget.dropped += 1;
            return false;
        }
        budget.written += 1;
        true
    }
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Log => "log",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The per-call side of the `log` import: the plugin's log and the lines of this call.
pub struct LogContext {
    log: Arc<PluginLog>,
    lines: u32,
}

impl LogContext {
    pub fn new(log: Arc<PluginLog>) -> LogContext {
        LogContext { log, lines: 0 }
    }

    pub fn plugin_log(&self) -> &Arc<PluginLog> {
        &self.log
    }
}

impl log::Host for PluginState {
    fn emit(&mut self, level: Level, message: String, fields: Vec<Field>) {
        let context = &mut self.log;
        context.lines += 1;
        if context.lines > MAX_LINES_PER_CALL {
            if context.lines == MAX_LINES_PER_CALL + 1 {
                tracing::warn!(plugin = %context.log.plugin, "plugin logged more than {MAX_LINES_PER_CALL} lines in one call; dropping the rest");
            }
            return;
        }
        let fields: Vec<String> = fields
            .into_iter()
            .map(|field| format!("{}={}", truncate(&field.key), truncate(&field.value)))
            .collect();
        context
            .log
            .write(Stream::Log, level, &message, &fields.join(" "));
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|err| err.into_inner())
}

/// Cuts `text` to [`MAX_TEXT_BYTES`] on a character boundary.
fn truncate(text: &str) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_TEXT_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn output_is_redacted_split_into_lines_and_kept_by_the_tap() {
        let sink = Arc::new(LogSink::default());
        sink.start_tap();
        sink.set_redactor(Redactor::new(["hunter2-secret-value".to_owned()]));
        let log = PluginLog::new(Arc::from("probe"), sink.clone());
        log.output(Stream::Stdout, "first\n\nkey is hunter2-secret-value\n");
        log.output(Stream::Stderr, "Traceback: boom");
        let lines = sink.take();
        let shown: Vec<(Stream, &str, &str)> = lines
            .iter()
            .map(|(_, line)| (line.stream, line.level, line.message.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (Stream::Stdout, "info", "first"),
                (Stream::Stdout, "info", "key is [REDACTED]"),
                (Stream::Stderr, "warn", "Traceback: boom"),
            ]
        );
        assert!(lines.iter().all(|(plugin, _)| &**plugin == "probe"));
    }

    #[test]
    fn the_redactor_set_once_follows_a_reload_of_the_secrets() {
        let sink = Arc::new(LogSink::default());
        sink.start_tap();
        let daemon_redactor = Redactor::new(["old-secret-value".to_owned()]);
        sink.set_redactor(daemon_redactor.clone());
        daemon_redactor.set_secrets(["rotated-secret-value".to_owned()]);
        let log = PluginLog::new(Arc::from("probe"), sink.clone());
        log.output(Stream::Stdout, "now rotated-secret-value\n");
        let lines = sink.take();
        assert_eq!(lines[0].1.message, "now [REDACTED]");
    }

    #[test]
    fn a_plugin_gets_a_budget_of_lines_per_second() {
        let sink = Arc::new(LogSink::default());
        sink.start_tap();
        let log = PluginLog::new(Arc::from("chatty"), sink.clone());
        let text = "line\n".repeat(MAX_LINES_PER_SECOND as usize + 50);
        log.output(Stream::Stdout, &text);
        assert_eq!(sink.take().len(), MAX_LINES_PER_SECOND as usize);
        assert_eq!(lock(&log.budget).dropped, 50);
    }
}
