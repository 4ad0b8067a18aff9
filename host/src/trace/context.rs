//! Trace and span ids, and the W3C `traceparent` that carries them to workers and providers.
//!
//! An event's trace id is the event's own id (32 hex digits, as W3C asks); a task sent through
//! the API has a trace of its own. The root span's id is derived from the trace id, so every
//! stage can name its parent without shared state. A stage that calls out (a task's try, a
//! hydration, a write-back) gets its span id before the call, sends it as the `traceparent`'s
//! parent, and hands the same id to the [`super::Tracer`] when the stage is recorded.

use std::fmt;

use sha2::{Digest, Sha256};

/// A span's id: 8 bytes, never all zero (W3C's "invalid").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId([u8; 8]);

impl SpanId {
    /// The span of the event itself, the root of its trace.
    pub fn event(trace_id: &str) -> SpanId {
        SpanId::derive(&["event", trace_id])
    }

    /// The span of the try of task `task_id` made under the claim whose lease first ran until
    /// `claimed_until` (unix milliseconds): one per claim, so a deferred try, a retry and a try
    /// after an operator's requeue each have their own, and the dispatcher and the stage that
    /// ends the try both know it from the claimed task.
    pub fn task_try(task_id: &str, claimed_until: i64) -> SpanId {
        SpanId::derive(&["task", task_id, &claimed_until.to_string()])
    }

    /// A span of its own: a stage in between, or a call made once (a hydration, a write-back
    /// try).
    pub fn random() -> SpanId {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() || bytes == [0; 8] {
            // No randomness to be had: a counter keeps ids distinct within this process.
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            bytes = NEXT
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_be_bytes();
        }
        SpanId(bytes)
    }

    fn derive(parts: &[&str]) -> SpanId {
        let mut hash = Sha256::new();
        for part in parts {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        let digest = hash.finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        if bytes == [0; 8] {
            bytes[7] = 1;
        }
        SpanId(bytes)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Whether `trace_id` can be a W3C trace id: 32 lowercase hex digits, not all zero. Entries of
/// other traces (a worker's, a schedule's) are not exported.
pub fn is_trace_id(trace_id: &str) -> bool {
    trace_id.len() == 32
        && trace_id
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        && trace_id.bytes().any(|byte| byte != b'0')
}

/// The W3C trace context `00-<trace>-<span>-01` (sampled) of `span` in `trace_id`; `None` when
/// `trace_id` is not a W3C trace id.
pub fn traceparent(trace_id: &str, span: SpanId) -> Option<String> {
    is_trace_id(trace_id).then(|| format!("00-{trace_id}-{span}-01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

    #[test]
    fn traceparent_follows_the_w3c_form() {
        let span = SpanId::task_try("b7ad6b7169203331b7ad6b7169203331", 1_700_000_000_000);
        let header = traceparent(TRACE, span).unwrap();
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], TRACE);
        assert_eq!(parts[2], span.to_string());
        assert_eq!(parts[2].len(), 16);
        assert!(parts[2].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(parts[3], "01");
    }

    #[test]
    fn ids_w3c_would_refuse_are_not_sent() {
        let span = SpanId::random();
        for trace in [
            "",
            "0af7651916cd43dd8448eb211c80319",
            "0AF7651916CD43DD8448EB211C80319C",
            "00000000000000000000000000000000",
            "task-7",
            "0af7651916cd43dd8448eb211c80319g",
        ] {
            assert_eq!(traceparent(trace, span), None, "{trace:?}");
        }
    }

    #[test]
    fn derived_spans_differ_by_claim_and_by_trace() {
        let task = "b7ad6b7169203331b7ad6b7169203331";
        assert_eq!(SpanId::task_try(task, 1), SpanId::task_try(task, 1));
        assert_ne!(SpanId::task_try(task, 1), SpanId::task_try(task, 2));
        assert_ne!(SpanId::event(TRACE), SpanId::event(task));
        assert_ne!(SpanId::random(), SpanId::random());
    }
}
