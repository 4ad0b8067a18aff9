//! A token bucket per worker: tasks beyond the rate wait for a token instead of being dropped.

use std::time::{Duration, Instant};

/// The longest a lane waits for one token: a rate so low that the next token is further away
/// is treated as one task an hour rather than as a task never sent.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Refills `per_second` tokens a second up to `burst`; starts full.
#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    pub fn new(per_second: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            refilled: now,
        }
    }

    /// Changes the rate and burst from `now` on (a worker's `rate_limit` edited while it runs):
    /// the tokens earned so far are kept, up to the new burst.
    pub fn set_rate(&mut self, per_second: f64, burst: u32, now: Instant) {
        self.refill(now);
        self.per_second = per_second.max(f64::MIN_POSITIVE);
        self.burst = f64::from(burst.max(1));
        self.tokens = self.tokens.min(self.burst);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
    }

    /// Takes a token if one is there; otherwise says how long until one will be.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.per_second;
            Err(Duration::try_from_secs_f64(wait).map_or(MAX_WAIT, |wait| wait.min(MAX_WAIT)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurdly_low_rates_wait_at_most_an_hour() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1e-300, 1, start);
        assert!(bucket.take(start).is_ok());
        assert_eq!(bucket.take(start), Err(MAX_WAIT));
    }

    #[test]
    fn a_new_rate_applies_from_now_and_keeps_the_tokens_earned() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(0.001, 1, start);
        assert!(bucket.take(start).is_ok());
        assert!(bucket.take(start).unwrap_err() > Duration::from_secs(900));
        let later = start + Duration::from_secs(1);
        bucket.set_rate(10.0, 5, later);
        assert_eq!(
            bucket.take(later),
            Err(Duration::from_secs_f64((1.0 - 0.001) / 10.0))
        );
        assert!(bucket.take(later + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn bursts_then_waits_for_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3, start);
        for _ in 0..3 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).expect_err("empty");
        assert_eq!(wait, Duration::from_millis(500));
        assert!(bucket.take(start + Duration::from_millis(500)).is_ok());
        // Idle time refills only up to the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
    }
}
