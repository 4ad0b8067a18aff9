//! What one call may hold (memory, instances, tables), and the record of which limit stopped
//! it, so that the error can name the limit and the setting that raises it.

use wasmtime::ResourceLimiter;

use crate::plugin::limits::Limits;

/// 16 linear memories and 64 tables per call: a Rust component has one memory and a few
/// tables, a CPython one a handful of each. The memory cap counts all memories together, so
/// more memories cannot multiply it; these only bound the host's bookkeeping.
pub const MAX_MEMORIES: usize = 16;
pub const MAX_TABLES: usize = 64;

/// Refuses memory growth past the plugin's cap, counted across all its memories, and remembers
/// that it did, so the failure is reported as "out of memory" rather than as whatever the guest
/// does on allocation failure.
pub struct CallLimiter {
    memory_bytes: u64,
    instances: usize,
    table_elements: usize,
    /// Bytes of linear memory the call holds, all memories together; memories never shrink,
    /// so this is also the call's peak.
    pub(crate) used_bytes: u64,
    /// How long the call spent instantiating the component, once it has (nothing when it ran
    /// on a spare).
    pub(crate) instantiated_in: Option<std::time::Duration>,
    /// Whether the call ran on a spare instance, made before it (see `plugin::spare`).
    pub(crate) on_spare: bool,
    pub(crate) memory_exceeded: bool,
    pub(crate) deadline_exceeded: bool,
    /// The size of a table the call was refused, if any.
    pub(crate) table_refused: Option<usize>,
}

impl CallLimiter {
    pub fn new(limits: &Limits) -> CallLimiter {
        CallLimiter {
            memory_bytes: limits.memory_bytes(),
            instances: limits.instances as usize,
            table_elements: limits.table_elements as usize,
            used_bytes: 0,
            instantiated_in: None,
            on_spare: false,
            memory_exceeded: false,
            deadline_exceeded: false,
            table_refused: None,
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
        self.instances
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.table_refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_every_memory_of_the_call() {
        let limits = Limits {
            memory_mib: 1,
            ..Limits::default()
        };
        let mib = 1 << 20;
        let mut limiter = CallLimiter::new(&limits);
        assert!(limiter.memory_growing(0, 600 << 10, None).is_ok());
        // A second memory may not take another full cap.
        assert!(limiter.memory_growing(0, 600 << 10, None).is_err());
        assert!(limiter.memory_exceeded);
        let mut limiter = CallLimiter::new(&limits);
        assert!(limiter.memory_growing(0, 400 << 10, None).is_ok());
        assert!(limiter.memory_growing(400 << 10, mib, None).is_ok());
        assert!(limiter.memory_growing(mib, mib + 1, None).is_err());
    }

    #[test]
    fn tables_past_the_limit_are_refused_and_recorded() {
        let mut limiter = CallLimiter::new(&Limits {
            table_elements: 1000,
            ..Limits::default()
        });
        assert_eq!(limiter.table_growing(0, 1000, None).ok(), Some(true));
        assert_eq!(limiter.table_growing(0, 1001, None).ok(), Some(false));
        assert_eq!(limiter.table_refused, Some(1001));
    }
}
