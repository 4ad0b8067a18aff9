//! Traces for the rest of the ecosystem: one per event, a span per stage, over OTLP.
//!
//! The audit log already records every stage of every event ([`crate::store::AuditEntry`]);
//! the pipeline records each through [`Tracer::audit`], which, with `otlp_endpoint` set, also
//! turns it into a span ([`spans`]) and exports it ([`otlp`]). The trace id is the event's id,
//! so the audit log, the dashboard's trace and the exported trace name the same thing. Workers
//! get the `traceparent` of their task's try, and the requests of a hydration or a write-back
//! that of their stage ([`context`]), so the spans of the other side join the trace.

pub mod context;
pub mod otlp;
pub mod spans;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::redact::Redactor;
use crate::store::{AuditEntry, AuditLog};

pub use context::{SpanId, traceparent};

/// 8,192 spans waiting at most: 16 batches, a few seconds of a busy daemon's stages.
const QUEUE: usize = 8192;

/// Where the pipeline's stages go besides the audit log. Cheap to clone; [`Tracer::off`] when
/// no `otlp_endpoint` is set, and then it costs a branch per stage.
#[derive(Clone, Default)]
pub struct Tracer(Option<Arc<Exporting>>);

struct Exporting {
    timeline: Mutex<spans::Timeline>,
    queue: mpsc::Sender<otlp::Message>,
    redactor: Redactor,
    dropped: AtomicU64,
}

impl Tracer {
    /// Exports nothing.
    pub fn off() -> Tracer {
        Tracer(None)
    }

    /// Exports to `url` (`config.yml`'s `otlp_endpoint`, see
    /// [`crate::config::server::ServerConfig::otlp_traces_url`]) from a task of its own on the
    /// current runtime; [`Tracer::off`] if no HTTP client can be made.
    pub fn export(url: reqwest::Url, resource: otlp::Resource, redactor: Redactor) -> Tracer {
        let Some(exporter) = otlp::Exporter::new(url, resource) else {
            return Tracer::off();
        };
        let (queue, messages) = mpsc::channel(QUEUE);
        tokio::spawn(exporter.run(messages));
        Tracer(Some(Arc::new(Exporting {
            timeline: Mutex::default(),
            queue,
            redactor,
            dropped: AtomicU64::new(0),
        })))
    }

    /// Records the stage `entry` stands for, ended now: in `log`, the audit trail, without
    /// waiting for its commit, and as a span.
    pub fn audit(&self, log: &(impl AuditLog + ?Sized), entry: AuditEntry) {
        self.record(&entry, None);
        log.record_detached(entry);
    }

    /// [`Tracer::audit`], waiting until the entry is committed: for a stage whose answer says
    /// it was recorded (a duplicate delivery, answered as one).
    pub async fn audit_committed(
        &self,
        log: &(impl AuditLog + ?Sized),
        entry: AuditEntry,
    ) -> Result<(), crate::store::Error> {
        self.record(&entry, None);
        log.record(entry).await
    }

    /// [`Tracer::audit`] for a stage that called out under `span` (the parent it sent in a
    /// `traceparent`).
    pub fn audit_of(&self, log: &(impl AuditLog + ?Sized), entry: AuditEntry, span: SpanId) {
        self.record(&entry, Some(span));
        log.record_detached(entry);
    }

    /// The `traceparent` of `span` for a provider's API, or `None` when no trace is exported:
    /// a third party learns mecha's ids only when they lead somewhere. (Workers, which are the
    /// operator's own, always get theirs.)
    pub fn traceparent(&self, trace_id: &str, span: SpanId) -> Option<String> {
        self.0.as_ref().and_then(|_| traceparent(trace_id, span))
    }

    /// Sends what is queued now and waits, up to `within`, until the receiver has it: at
    /// shutdown, so the last stages are not lost.
    pub async fn flush(&self, within: std::time::Duration) {
        let Some(exporting) = &self.0 else {
            return;
        };
        let (done, flushed) = tokio::sync::oneshot::channel();
        if exporting
            .queue
            .send(otlp::Message::Flush(done))
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(within, flushed).await;
        }
    }

    /// Turns `entry` into a span, its texts redacted again with the current secrets (as the
    /// API does when it shows the entry), and queues it without waiting.
    fn record(&self, entry: &AuditEntry, span: Option<SpanId>) {
        let Some(exporting) = &self.0 else {
            return;
        };
        let now_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
            });
        let span = exporting
            .timeline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .span(entry, span, now_ns);
        let Some(mut span) = span else {
            return;
        };
        let redact = |text: &mut String| {
            if let std::borrow::Cow::Owned(redacted) = exporting.redactor.redact(text) {
                *text = redacted;
            }
        };
        if let Some(error) = &mut span.error {
            redact(error);
        }
        for (_, value) in &mut span.attributes {
            if let spans::Value::Text(text) = value {
                redact(text);
            }
        }
        if exporting.queue.try_send(otlp::Message::Span(span)).is_err() {
            let dropped = exporting.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped.is_power_of_two() || dropped == 0 {
                tracing::warn!(
                    dropped = dropped + 1,
                    "the OTLP receiver is not keeping up; spans are dropped"
                );
            }
        }
    }
}
