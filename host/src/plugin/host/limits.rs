//! The memory cap of one call, and the record of which limit stopped it.

use wasmtime::ResourceLimiter;

/// 10,000 table elements: far more function references than a plugin's indirect calls need.
const MAX_TABLE_ELEMENTS: usize = 10_000;

/// 4 linear memories and 32 core instances per call: a component from wit-bindgen has one
/// memory and a few instances; more is a component trying to multiply its memory cap.
const MAX_MEMORIES: usize = 4;
const MAX_INSTANCES: usize = 32;

/// Refuses memory growth past the plugin's cap, counted across all its memories, and remembers
/// that it did, so the failure is reported as "out of memory" rather than as whatever the guest
/// does on allocation failure.
pub struct CallLimiter {
    memory_bytes: u64,
    /// Bytes of linear memory the call holds, all memories together.
    used_bytes: u64,
    pub(crate) memory_exceeded: bool,
    pub(crate) deadline_exceeded: bool,
}

impl CallLimiter {
    pub fn new(memory_bytes: u64) -> CallLimiter {
        CallLimiter {
            memory_bytes,
            used_bytes: 0,
            memory_exceeded: false,
            deadline_exceeded: false,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let total = self.used_bytes.saturating_add(growth);
        if total > self.memory_bytes {
            self.memory_exceeded = true;
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        self.used_bytes = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_every_memory_of_the_call() {
        let mut limiter = CallLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).is_ok());
        // A second memory may not take another full cap.
        assert!(limiter.memory_growing(0, 60, None).is_err());
        assert!(limiter.memory_exceeded);
        let mut limiter = CallLimiter::new(100);
        assert!(limiter.memory_growing(0, 40, None).is_ok());
        assert!(limiter.memory_growing(40, 90, None).is_ok());
        assert!(limiter.memory_growing(90, 101, None).is_err());
    }
}
