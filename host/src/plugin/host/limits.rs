//! The memory cap of one call, and the record of which limit stopped it.

use wasmtime::ResourceLimiter;

/// 10,000 table elements: far more function references than a plugin's indirect calls need.
const MAX_TABLE_ELEMENTS: usize = 10_000;

/// Refuses memory growth past the plugin's cap and remembers that it did, so the failure can
/// be reported as "out of memory" rather than as whatever the guest does on allocation failure.
pub struct CallLimiter {
    memory_bytes: u64,
    pub(crate) memory_exceeded: bool,
    pub(crate) deadline_exceeded: bool,
}

impl CallLimiter {
    pub fn new(memory_bytes: u64) -> CallLimiter {
        CallLimiter {
            memory_bytes,
            memory_exceeded: false,
            deadline_exceeded: false,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            self.memory_exceeded = true;
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
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
