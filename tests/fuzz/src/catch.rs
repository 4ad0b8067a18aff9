//! Runs a parser call and turns a panic into its message.
//!
//! A panic hook is process-wide, and the default one prints every panic, millions of lines if
//! a parser panics often. The hook installed here stays quiet while a fuzzed call runs on the
//! current thread and records the message with its location (which `catch_unwind`'s payload
//! lacks); any other panic, such as a failing test's, still goes to the previous hook.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// `call()`, or the message and location of its panic.
pub fn call<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.get() {
                MESSAGE.set(Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
    CAPTURING.set(true);
    // The inputs are rebuilt from scratch for each call, so nothing half-updated by a panic is
    // used again.
    let result = panic::catch_unwind(AssertUnwindSafe(call));
    CAPTURING.set(false);
    result.map_err(|payload| {
        MESSAGE.take().unwrap_or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|message| message.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a non-string payload".into())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_with_its_location() {
        let message = call(|| -> u8 { panic!("boom {}", 7) }).expect_err("it panicked");
        assert!(message.contains("boom 7"), "{message}");
        assert!(message.contains("catch.rs"), "{message}");
        assert_eq!(call(|| 3), Ok(3));
    }
}
