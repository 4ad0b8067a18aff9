//! What every world's plugin type shares, written once: its log (which names it), the
//! pre-linked component, the call gate and its spare instance; `describe`; and running one
//! export on a pristine instance under the call's limits. Each world's module (`source`,
//! `trigger`, `policy`, `responder`) adds its own calls.
//!
//! A macro rather than a generic type: each world's bindings are their own types (`SourcePre`,
//! `Source`, ...) with their own export accessors, and wasmtime generates no trait over them.

/// Defines `$plugin` for the world `$world` whose pre-linked component is `$pre`, whose
/// instance is `$bindings` and whose exports are reached with `$exports`. `$limits` maps the
/// limits of every call (policies add their fuel).
macro_rules! world_plugin {
    (
        $(#[$doc:meta])*
        $plugin:ident, $world:expr, $pre:ident, $bindings:ident, $exports:ident, $limits:path
    ) => {
        $(#[$doc])*
        pub struct $plugin {
            log: std::sync::Arc<$crate::plugin::host::log::PluginLog>,
            pre: $pre<$crate::plugin::host::PluginState>,
            gate: $crate::plugin::engine::CallGate,
            spares: $crate::plugin::spare::Spares<$bindings>,
        }

        impl $plugin {
            pub fn new(
                log: $crate::plugin::host::log::PluginLog,
                pre: $pre<$crate::plugin::host::PluginState>,
                gate: $crate::plugin::engine::CallGate,
            ) -> $plugin {
                $plugin {
                    log: std::sync::Arc::new(log),
                    pre,
                    gate,
                    spares: Default::default(),
                }
            }

            pub fn name(&self) -> &str {
                self.log.plugin()
            }

            /// The same plugin under another name, e.g. the one it gave when described.
            pub fn renamed(self, name: &str) -> $plugin {
                $plugin {
                    log: std::sync::Arc::new(self.log.renamed(name)),
                    pre: self.pre,
                    gate: self.gate,
                    spares: Default::default(),
                }
            }

            /// Runs `describe` on a fresh instance, making no spare: a plugin is described when
            /// it is loaded, and one never called then keeps none.
            pub async fn describe(
                &self,
                limits: $crate::plugin::limits::Limits,
            ) -> Result<$crate::plugin::bindings::source::types::PluginInfo, $crate::plugin::CallError>
            {
                let state = self.state(limits).build();
                let fresh = $crate::plugin::spare::Instance::Fresh;
                let (info, _) = self
                    .run(limits, state, fresh, |plugin, mut store| async move {
                        let info = plugin.$exports().call_describe(&mut store).await;
                        (info, store)
                    })
                    .await?;
                Ok(info)
            }

            /// A state for one call of this plugin, to which the call adds what it grants.
            fn state(
                &self,
                limits: $crate::plugin::limits::Limits,
            ) -> $crate::plugin::host::StateBuilder {
                $crate::plugin::host::StateBuilder::new(
                    self.log.clone(),
                    $world,
                    $limits(limits),
                )
            }

            /// Runs `call` on a pristine instance in a store holding `state`, under `limits`;
            /// returns the answer and the state the call left. With [`Instance::Spare`] the
            /// instance is the plugin's spare if one made under the same limits is ready, and the
            /// next spare is made after the call; otherwise the call instantiates the plugin.
            ///
            /// [`Instance::Spare`]: crate::plugin::spare::Instance::Spare
            async fn run<R, F, Fut>(
                &self,
                limits: $crate::plugin::limits::Limits,
                state: $crate::plugin::host::PluginState,
                instance: $crate::plugin::spare::Instance,
                call: F,
            ) -> Result<(R, $crate::plugin::host::PluginState), $crate::plugin::CallError>
            where
                F: FnOnce($bindings, wasmtime::Store<$crate::plugin::host::PluginState>) -> Fut,
                Fut: std::future::Future<
                    Output = (
                        wasmtime::Result<R>,
                        wasmtime::Store<$crate::plugin::host::PluginState>,
                    ),
                >,
            {
                let limits = $limits(limits);
                let pre = &self.pre;
                let plugin = self.log.plugin();
                let prepare = || -> Result<_, $crate::plugin::CallError> {
                    let taken = match instance {
                        $crate::plugin::spare::Instance::Spare => self.spares.take(limits, state),
                        $crate::plugin::spare::Instance::Fresh => Err(Box::new(state)),
                    };
                    match taken {
                        Ok((store, spare)) => Ok((store, Some(spare))),
                        Err(state) => Ok((
                            $crate::plugin::limits::store(pre.engine(), plugin, limits, *state)?,
                            None,
                        )),
                    }
                };
                let answer = $crate::plugin::limits::run(
                    &self.gate,
                    plugin,
                    limits,
                    prepare,
                    |mut store, spare| async move {
                        let instance = match spare {
                            Some(spare) => Ok(spare),
                            None => {
                                let begun = std::time::Instant::now();
                                let instance = pre.instantiate_async(&mut store).await;
                                store.data_mut().limiter.instantiated_in = Some(begun.elapsed());
                                instance
                            }
                        };
                        match instance {
                            Ok(plugin) => call(plugin, store).await,
                            Err(err) => (Err(err), store),
                        }
                    },
                )
                .await;
                // After the call, not while it runs: making the spare competes with the call
                // for the CPU and for the process's memory map.
                if instance == $crate::plugin::spare::Instance::Spare {
                    self.make_spare(limits);
                }
                answer
            }

            /// Has the next spare made in the background, under the (world's) `limits`.
            fn make_spare(&self, limits: $crate::plugin::limits::Limits) {
                let pre = self.pre.clone();
                self.spares.refill(
                    &self.gate,
                    self.pre.engine(),
                    limits,
                    self.state(limits),
                    |mut store| async move {
                        let instance = pre.instantiate_async(&mut store).await;
                        (instance, store)
                    },
                );
            }
        }
    };
}

pub(crate) use world_plugin;
