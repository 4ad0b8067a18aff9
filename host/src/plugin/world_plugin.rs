//! What every world's plugin type shares, written once: its log (which names it), the
//! pre-linked component and the call gate; `describe`; and running one export on a fresh instance under the call's
//! limits. Each world's module (`source`, `trigger`, `policy`, `responder`) adds its own calls.
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
                }
            }

            pub fn name(&self) -> &str {
                self.log.plugin()
            }

            /// The same plugin under another name, e.g. the one it gave when described.
            pub fn renamed(self, name: &str) -> $plugin {
                $plugin {
                    log: std::sync::Arc::new(self.log.renamed(name)),
                    ..self
                }
            }

            /// Runs `describe` on a fresh instance.
            pub async fn describe(
                &self,
                limits: $crate::plugin::limits::Limits,
            ) -> Result<$crate::plugin::bindings::source::types::PluginInfo, $crate::plugin::CallError>
            {
                let state = self.state(limits).build();
                let (info, _) = self
                    .run(limits, state, |plugin, mut store| async move {
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

            /// Instantiates the plugin in a fresh store holding `state` and runs `call` on it,
            /// under `limits`; returns the answer and the state the call left.
            async fn run<R, F, Fut>(
                &self,
                limits: $crate::plugin::limits::Limits,
                state: $crate::plugin::host::PluginState,
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
                let pre = &self.pre;
                $crate::plugin::limits::run(
                    pre.engine(),
                    &self.gate,
                    self.log.plugin(),
                    $limits(limits),
                    state,
                    |mut store| async move {
                        let begun = std::time::Instant::now();
                        match pre.instantiate_async(&mut store).await {
                            Ok(plugin) => {
                                store.data_mut().limiter.instantiated_in = Some(begun.elapsed());
                                call(plugin, store).await
                            }
                            Err(err) => (Err(err), store),
                        }
                    },
                )
                .await
            }
        }
    };
}

pub(crate) use world_plugin;
