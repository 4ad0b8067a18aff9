//! When to try a task again after a transient failure.
//!
//! Exponential backoff with jitter: the n-th retry waits a random time between half and all of
//! `base * 2^(n-1)`, capped. The jitter spreads retries of many tasks that failed together (a
//! worker restart), so they do not return as one burst. A worker's `Retry-After` is honoured
//! as a floor: mecha never comes back earlier than the worker asked.
//!
//! A worker that is alive and answers `429` or `503` with `Retry-After` is not failing but busy:
//! dispatch defers the task by that much, with no attempt counted and no backoff added
//! (`dispatch.rs`, `defer`). This schedule is for failures, and for busy answers past a task's
//! busy deadline.

use std::time::Duration;

/// The retry schedule of a daemon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 30 s, then 1 min, 2 min, ... up to 30 min: the Go mecha's schedule.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(30 * 60),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1 for the first retry). `unit` is a random
    /// number in [0, 1) that picks the point within the jitter window.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let ceiling = self.base.saturating_mul(1u32 << exponent).min(self.max);
        let jittered = ceiling.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0));
        // A worker's Retry-After wins even past `max`: it knows when it will be ready.
        match retry_after {
            Some(asked) => jittered.max(asked),
            None => jittered,
        }
    }
}

/// A random number in [0, 1) for jitter; 0.5 if the system has no randomness to give.
pub fn jitter_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_within_the_jitter_window_and_caps() {
        let backoff = Backoff {
            base: SECOND,
            max: 10 * SECOND,
        };
        assert_eq!(backoff.delay(1, None, 0.0), SECOND / 2);
        assert_eq!(backoff.delay(1, None, 1.0), SECOND);
        assert_eq!(backoff.delay(3, None, 1.0), 4 * SECOND);
        assert_eq!(backoff.delay(3, None, 0.0), 2 * SECOND);
        assert_eq!(backoff.delay(10, None, 1.0), 10 * SECOND);
        assert_eq!(backoff.delay(u32::MAX, None, 1.0), 10 * SECOND);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let backoff = Backoff {
            base: SECOND,
            max: 10 * SECOND,
        };
        assert_eq!(backoff.delay(1, Some(5 * SECOND), 0.0), 5 * SECOND);
        assert_eq!(backoff.delay(4, Some(SECOND), 1.0), 8 * SECOND);
        // A worker asking for more than the cap gets what it asked for.
        assert_eq!(backoff.delay(1, Some(60 * SECOND), 0.0), 60 * SECOND);
    }

    #[test]
    fn jitter_units_are_in_range() {
        for _ in 0..1000 {
            let unit = jitter_unit();
            assert!((0.0..1.0).contains(&unit));
        }
    }
}
