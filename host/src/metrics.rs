//! Counters and latency histograms, exported at `GET /metrics` in Prometheus text format.
//!
//! Plain atomics: recording is one relaxed add on the hot path, and the set of metrics is fixed
//! at compile time, so a registry crate would add weight without adding anything.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The daemon's counters; names follow the Go mecha's (`mecha_<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    WebhooksReceived,
    EventsDedupSkipped,
    TasksCreated,
    TasksCompleted,
    TasksFailed,
    TasksRetried,
    /// Sent back to wait by a busy worker (`429` or `503` with `Retry-After`), attempt not counted.
    TasksDeferred,
    TasksRecovered,
    /// Claimed by this daemon for sending, under a lease.
    TasksClaimed,
    /// Found dispatched under a lease that had run out (its daemon died), and sent again.
    LeasesReleased,
    /// Queued by this daemon although another made them: they were still unsent a lease after
    /// they were made (their daemon died, or left them waiting in its queue).
    TasksAdopted,
    TasksDedupSkipped,
    TasksRateLimited,
    TasksDeadLettered,
    TriggerTicks,
    TriggerTicksSkipped,
}

impl Counter {
    const ALL: [Counter; 16] = [
        Counter::WebhooksReceived,
        Counter::EventsDedupSkipped,
        Counter::TasksCreated,
        Counter::TasksCompleted,
        Counter::TasksFailed,
        Counter::TasksRetried,
        Counter::TasksDeferred,
        Counter::TasksRecovered,
        Counter::TasksClaimed,
        Counter::LeasesReleased,
        Counter::TasksAdopted,
        Counter::TasksDedupSkipped,
        Counter::TasksRateLimited,
        Counter::TasksDeadLettered,
        Counter::TriggerTicks,
        Counter::TriggerTicksSkipped,
    ];

    fn name(self) -> &'static str {
        match self {
            Counter::WebhooksReceived => "webhooks_received",
            Counter::EventsDedupSkipped => "events_dedup_skipped",
            Counter::TasksCreated => "tasks_created",
            Counter::TasksCompleted => "tasks_completed",
            Counter::TasksFailed => "tasks_failed",
            Counter::TasksRetried => "tasks_retried",
            Counter::TasksDeferred => "tasks_deferred",
            Counter::TasksRecovered => "tasks_recovered",
            Counter::TasksClaimed => "tasks_claimed",
            Counter::LeasesReleased => "leases_released",
            Counter::TasksAdopted => "tasks_adopted",
            Counter::TasksDedupSkipped => "tasks_dedup_skipped",
            Counter::TasksRateLimited => "tasks_rate_limited",
            Counter::TasksDeadLettered => "tasks_dead_letter",
            Counter::TriggerTicks => "trigger_ticks",
            Counter::TriggerTicksSkipped => "trigger_ticks_skipped",
        }
    }
}

/// Stages whose latency is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Webhook received to event durably stored.
    Ingest,
    /// Event stored to its tasks created (match, render, insert).
    Match,
    /// Task sent to the worker to the worker's answer.
    Dispatch,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Ingest, Stage::Match, Stage::Dispatch];

    fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Match => "match",
            Stage::Dispatch => "dispatch",
        }
    }
}

/// Upper bounds of the histogram buckets, in seconds: 1 ms to 10 minutes, covering a webhook
/// ingest (milliseconds) and an agent's task (minutes) with the same buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0,
];

struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(index) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// All metrics of one daemon.
pub struct Metrics {
    counters: [AtomicU64; Counter::ALL.len()],
    stages: [Histogram; Stage::ALL.len()],
    queue_depth: AtomicU64,
    leases_held: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            stages: std::array::from_fn(|_| Histogram::new()),
            queue_depth: AtomicU64::new(0),
            leases_held: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn increment(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub fn add(&self, counter: Counter, n: u64) {
        self.counters[counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Ordering::Relaxed)
    }

    pub fn observe(&self, stage: Stage, elapsed: Duration) {
        self.stages[stage as usize].observe(elapsed);
    }

    /// Tasks waiting in the dispatcher's queues.
    pub fn set_queue_depth(&self, depth: u64) {
        self.queue_depth.store(depth, Ordering::Relaxed);
    }

    /// Tasks this daemon is sending now, each under a lease it renews.
    pub fn set_leases_held(&self, held: u64) {
        self.leases_held.store(held, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for counter in Counter::ALL {
            let name = counter.name();
            let _ = writeln!(out, "# TYPE mecha_{name} counter");
            let _ = writeln!(out, "mecha_{name} {}", self.get(counter));
        }
        let _ = writeln!(out, "# TYPE mecha_queue_depth gauge");
        let _ = writeln!(
            out,
            "mecha_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE mecha_leases_held gauge");
        let _ = writeln!(
            out,
            "mecha_leases_held {}",
            self.leases_held.load(Ordering::Relaxed)
        );
        for stage in Stage::ALL {
            let histogram = &self.stages[stage as usize];
            let name = format!("mecha_{}_duration_seconds", stage.name());
            let _ = writeln!(out, "# TYPE {name} histogram");
            let mut cumulative = 0;
            for (bound, bucket) in BUCKETS.iter().zip(&histogram.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
            let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum {sum}");
            let _ = writeln!(out, "{name}_count {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.increment(Counter::TasksCreated);
        metrics.add(Counter::TasksCreated, 2);
        metrics.observe(Stage::Dispatch, Duration::from_millis(3));
        metrics.observe(Stage::Dispatch, Duration::from_secs(2));
        metrics.set_queue_depth(7);
        let text = metrics.render();
        assert!(text.contains("# TYPE mecha_tasks_created counter\nmecha_tasks_created 3\n"));
        assert!(text.contains("mecha_queue_depth 7\n"));
        assert!(text.contains("mecha_dispatch_duration_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("mecha_dispatch_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("mecha_dispatch_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("mecha_dispatch_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("mecha_dispatch_duration_seconds_count 2\n"));
        assert!(text.contains("mecha_ingest_duration_seconds_count 0\n"));
    }
}
