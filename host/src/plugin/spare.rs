//! Spare instances: each plugin keeps one instance made ahead of its next call, so that a
//! webhook pays for the call only. Instantiating a CPython component takes milliseconds (its
//! tables hold thousands of function references, filled at every instantiation); made in the
//! background shortly after the call that took the previous spare, that time leaves the
//! request's path.
//!
//! A spare is as pristine as a fresh instance, which is what isolates one event from the next:
//!
//! - it is instantiated in a store of its own, then handed out once (moved out of its slot)
//!   and never called before;
//! - the call's own state (settings, secrets, grants, clock) replaces the blank one the spare
//!   was made with, just before the call. That is sound only because nothing read the blank
//!   state: a spare whose instantiation called into the host (a core start function calling an
//!   import) is dropped, and its plugin then instantiates per call as before;
//! - it is made under the limits of the call that took the previous spare and serves only a
//!   call with the same memory, instance, table and fuel limits, since those already apply while
//!   instantiating (the fuel of a policy is metered from the same amount); the deadline may
//!   differ, since it is armed again when the call starts;
//! - its deadline starts when its call does (see [`super::limits::run`]).
//!
//! The slot is owned by the plugin; the task making a spare holds it weakly, so a plugin that
//! is replaced or removed drops its spare, and no task outlives one instantiation. Spares take
//! slots of their own in the pool ([`super::engine::CallGate`]).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Engine, Store};

use super::engine::CallGate;
use super::host::{PluginState, StateBuilder};
use super::limits::{self, Limits};

/// 2 ms: how long after a call the next spare is made. Made at once, it takes the CPU from the
/// rest of that very request (the daemon storing the event and answering) on a machine with
/// few cores busy: instantiating a CPython component is milliseconds of CPU, and the
/// `languages` bench measured 0.5 to 5 ms added to each webhook on two loaded cores. A source
/// receiving webhooks a few milliseconds apart still finds its spare ready.
const MAKE_AFTER: Duration = Duration::from_millis(2);

/// How a call gets its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instance {
    /// From the plugin's spare when one is ready, and the next spare is made for the call
    /// after: what calls serving events do.
    Spare,
    /// Instantiated by the call itself, leaving the spares alone: `describe` when a plugin is
    /// loaded, so that a plugin loaded but never called keeps no spare.
    Fresh,
}

/// A plugin's spare: at most one, ready or being made.
pub struct Spares<B> {
    slot: Arc<Mutex<Slot<B>>>,
}

enum Slot<B> {
    Empty,
    Making,
    Ready(Spare<B>),
    /// Instantiating the plugin calls into the host, so a spare would run its call with what it
    /// read from a blank state: the plugin makes none.
    Off,
}

/// An instance no call has touched, with the store it lives in.
struct Spare<B> {
    store: Store<PluginState>,
    instance: B,
    limits: Limits,
    /// Its slot among the runtime's spares, released when the spare is taken or dropped.
    _slot: OwnedSemaphorePermit,
}

impl<B> Default for Spares<B> {
    fn default() -> Self {
        Spares {
            slot: Arc::new(Mutex::new(Slot::Empty)),
        }
    }
}

impl<B: Send + 'static> Spares<B> {
    /// The ready spare's store, now holding the call's `state`, and its instance, if the spare
    /// was made under `limits`; otherwise `state` back (boxed: it is large, and this is the
    /// path that instantiates anyway). The slot is empty afterwards either way: a spare made
    /// under other limits is dropped.
    pub fn take(
        &self,
        limits: Limits,
        state: PluginState,
    ) -> Result<(Store<PluginState>, B), Box<PluginState>> {
        let spare = {
            let mut slot = lock(&self.slot);
            match std::mem::replace(&mut *slot, Slot::Empty) {
                Slot::Ready(spare) => spare,
                other => {
                    *slot = other;
                    return Err(Box::new(state));
                }
            }
        };
        // The deadline is armed again when the call starts, so only the limits the
        // instantiation was held to must match: a source's webhook calls and its longer
        // `hydrate` calls share one spare.
        if (Limits {
            timeout: limits.timeout,
            ..spare.limits
        }) != limits
        {
            return Err(Box::new(state));
        }
        let mut store = spare.store;
        let blank = std::mem::replace(store.data_mut(), state);
        // What the instantiation used (its memory) counts against the call's cap, as it does
        // for a call that instantiates.
        store.data_mut().limiter.used_bytes = blank.limiter.used_bytes;
        store.data_mut().limiter.on_spare = true;
        Ok((store, spare.instance))
    }

    /// Starts making the next spare in the background, under `limits` and with the blank state
    /// of `blank`, by running `instantiate`; unless the slot is not empty (a spare is ready or
    /// being made, or the plugin makes none), the runtime's spare slots are all taken, or there
    /// is no async runtime to make it on.
    pub fn refill<F, Fut>(
        &self,
        gate: &CallGate,
        engine: &Engine,
        limits: Limits,
        blank: StateBuilder,
        instantiate: F,
    ) where
        F: FnOnce(Store<PluginState>) -> Fut + Send + 'static,
        Fut: Future<Output = (wasmtime::Result<B>, Store<PluginState>)> + Send,
    {
        let mut slot = lock(&self.slot);
        if !matches!(*slot, Slot::Empty) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(permit) = gate.spare() else {
            return;
        };
        *slot = Slot::Making;
        drop(slot);
        let owner = Arc::downgrade(&self.slot);
        let engine = engine.clone();
        let plugin = blank.plugin().clone();
        runtime.spawn(async move {
            tokio::time::sleep(MAKE_AFTER).await;
            let made = make(&engine, &plugin, limits, blank.build(), instantiate).await;
            // A plugin dropped meanwhile takes no spare: this one is dropped here.
            let Some(slot) = owner.upgrade() else {
                return;
            };
            let mut slot = lock(&slot);
            *slot = match made {
                Made::Spare(store, instance) => Slot::Ready(Spare {
                    store,
                    instance,
                    limits,
                    _slot: permit,
                }),
                Made::CalledHost => {
                    tracing::debug!(
                        plugin = %plugin,
                        "instantiating this plugin calls into the host; it runs without spares"
                    );
                    Slot::Off
                }
                Made::Failed => Slot::Empty,
            };
        });
    }
}

enum Made<B> {
    Spare(Store<PluginState>, B),
    CalledHost,
    /// Instantiating failed or timed out; the call that takes the slot next instantiates
    /// itself, and says why if it fails the same way.
    Failed,
}

/// Instantiates a spare in a store of its own, under `limits` and its own deadline; then checks
/// that no host function used its state.
async fn make<B, F, Fut>(
    engine: &Engine,
    plugin: &Arc<str>,
    limits: Limits,
    blank: PluginState,
    instantiate: F,
) -> Made<B>
where
    F: FnOnce(Store<PluginState>) -> Fut,
    Fut: Future<Output = (wasmtime::Result<B>, Store<PluginState>)>,
{
    let Ok(mut store) = limits::store(engine, plugin, limits, blank) else {
        return Made::Failed;
    };
    limits::arm_deadline(&mut store, limits.timeout);
    let made = tokio::time::timeout(limits::backstop(limits.timeout), instantiate(store)).await;
    match made {
        Ok((Ok(_), store)) if store.data().used => Made::CalledHost,
        Ok((Ok(instance), store)) => Made::Spare(store, instance),
        Ok((Err(_), _)) | Err(_) => Made::Failed,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
