//! Which world a component implements, and whether it imports only what that world offers.
//!
//! A component's world is read from its own exports (`mecha:plugin/<kind>-api@<version>`), so a
//! plugin needs no manifest to be recognised. Its imports are then checked against the world's
//! allow-list here, in one place, before anything is linked: a plugin that reaches for sockets,
//! the filesystem or (for a policy) a clock is refused at load with the import named, instead of
//! failing somewhere at run time.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::Error;

/// The WIT package this daemon implements.
pub const PACKAGE: &str = "mecha:plugin";

/// The version of [`PACKAGE`] this daemon offers; plugins built for an older compatible version
/// load too.
pub const VERSION: &str = "0.1.0";

/// WASI interfaces that the Rust standard library (and most guest toolchains) import for stdio,
/// errors and exit; the host gives them no environment, no arguments, and captures stdout and
/// stderr (16 KiB each) to explain a crash.
const WASI_BASE: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// Clocks and randomness: offered to every world except policies, which must be deterministic.
const WASI_TIME_AND_RANDOM: &[&str] = &[
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Outgoing HTTP, for every world but policies (responders write back, sources hydrate,
/// triggers may poll); each call is checked against the plugin's grant (see `host::http`), and
/// a plugin granted nothing reaches nothing.
const WASI_HTTP: &[&str] = &["wasi:http/outgoing-handler", "wasi:http/types"];

/// The four kinds of plugin.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum World {
    Source,
    Trigger,
    Policy,
    Responder,
}

impl World {
    pub const ALL: [World; 4] = [
        World::Source,
        World::Trigger,
        World::Policy,
        World::Responder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            World::Source => "source",
            World::Trigger => "trigger",
            World::Policy => "policy",
            World::Responder => "responder",
        }
    }

    /// The interface a plugin of this world exports, without package or version.
    fn export_interface(self) -> &'static str {
        match self {
            World::Source => "source-api",
            World::Trigger => "trigger-api",
            World::Policy => "policy-api",
            World::Responder => "responder-api",
        }
    }

    /// The `mecha:plugin` interfaces a plugin of this world may import.
    fn mecha_imports(self) -> &'static [&'static str] {
        match self {
            World::Source => &["types", "log", "config", "verify", "acknowledge"],
            World::Trigger | World::Policy | World::Responder => &["types", "log", "config"],
        }
    }

    fn allows(self, interface: &str) -> bool {
        if let Some(name) = interface.strip_prefix("mecha:plugin/") {
            return self.mecha_imports().contains(&name);
        }
        WASI_BASE.contains(&interface)
            || (self != World::Policy && WASI_TIME_AND_RANDOM.contains(&interface))
            || (self != World::Policy && WASI_HTTP.contains(&interface))
    }

    /// The allowed imports, for error messages.
    fn allowed_list(self) -> String {
        let mut names: Vec<String> = self
            .mecha_imports()
            .iter()
            .map(|name| format!("mecha:plugin/{name}"))
            .collect();
        names.push("wasi:io, wasi:cli stdio/environment/exit".into());
        if self != World::Policy {
            names.push("wasi:clocks, wasi:random, wasi:http (granted origins only)".into());
        }
        names.join(", ")
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a component says about itself through its imports and exports.
#[derive(Debug, Clone)]
pub struct Shape {
    pub world: World,
    /// The version of `mecha:plugin` the component was built against.
    pub version: String,
}

/// Finds the component's world and checks every import against it.
pub fn inspect(engine: &Engine, component: &Component, plugin: &str) -> Result<Shape, Error> {
    let ty = component.component_type();
    let shape = ty
        .exports(engine)
        .find_map(|(name, _)| exported_world(name))
        .ok_or_else(|| Error::NoWorld {
            plugin: plugin.to_owned(),
            offered: VERSION.to_owned(),
        })?;
    if !compatible(&shape.version, VERSION) {
        return Err(Error::Version {
            plugin: plugin.to_owned(),
            needed: shape.version,
            offered: VERSION.to_owned(),
        });
    }
    for (name, _) in ty.imports(engine) {
        let (interface, version) = name.split_once('@').unwrap_or((name, ""));
        let allowed = shape.world.allows(interface)
            && (!interface.starts_with("mecha:plugin/") || compatible(version, VERSION));
        if !allowed {
            return Err(Error::ForbiddenImport {
                plugin: plugin.to_owned(),
                import: name.to_owned(),
                world: shape.world,
                allowed: shape.world.allowed_list(),
            });
        }
    }
    Ok(shape)
}

/// The world `wasm` exports, read from its bytes without compiling it; `None` when it exports
/// none (compiling it then says what is wrong).
pub fn declared(wasm: &[u8]) -> Option<World> {
    use wasmtime::wasmparser::{Parser, Payload};
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ComponentExportSection(exports) = payload.ok()? {
            for export in exports {
                if let Some(shape) = exported_world(export.ok()?.name.name) {
                    return Some(shape.world);
                }
            }
        }
    }
    None
}

fn exported_world(export: &str) -> Option<Shape> {
    let (interface, version) = export.strip_prefix("mecha:plugin/")?.split_once('@')?;
    let world = World::ALL
        .into_iter()
        .find(|world| world.export_interface() == interface)?;
    Some(Shape {
        world,
        version: version.to_owned(),
    })
}

/// Whether a plugin built against `needed` can be served by a host offering `offered`: the same
/// major version (the same minor while the major is 0), and not newer than what is offered.
fn compatible(needed: &str, offered: &str) -> bool {
    let (Some(needed), Some(offered)) = (parse(needed), parse(offered)) else {
        return false;
    };
    let same_line = if offered.0 == 0 {
        needed.0 == 0 && needed.1 == offered.1
    } else {
        needed.0 == offered.0
    };
    same_line && needed <= offered
}

fn parse(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|part| part.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_is_read_from_the_bytes_of_every_bundled_plugin() {
        let declared_by = |label: &str| {
            let (_, wasm) = crate::plugin::bundled::BUNDLED
                .iter()
                .find(|(bundled, _)| *bundled == label)
                .expect("bundled");
            declared(wasm)
        };
        assert_eq!(declared_by("github.wasm"), Some(World::Source));
        assert_eq!(declared_by("rules.wasm"), Some(World::Policy));
        assert_eq!(declared_by("cron.wasm"), Some(World::Trigger));
        assert_eq!(declared_by("gitlab-responder.wasm"), Some(World::Responder));
        assert_eq!(declared(b"not wasm"), None);
    }

    #[test]
    fn versions_within_a_line_are_compatible() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.0", "0.1.3"));
        assert!(!compatible("0.1.4", "0.1.3"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(compatible("1.0.0", "1.4.0"));
        assert!(!compatible("2.0.0", "1.4.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }

    #[test]
    fn worlds_are_read_from_exports() {
        let shape = exported_world("mecha:plugin/policy-api@0.1.0").expect("a world");
        assert_eq!(shape.world, World::Policy);
        assert_eq!(shape.version, "0.1.0");
        assert!(exported_world("wasi:cli/run@0.2.0").is_none());
        assert!(exported_world("mecha:plugin/other-api@0.1.0").is_none());
    }

    #[test]
    fn policies_get_no_clock_and_nobody_gets_sockets() {
        assert!(World::Source.allows("wasi:clocks/wall-clock"));
        assert!(!World::Policy.allows("wasi:clocks/wall-clock"));
        assert!(!World::Policy.allows("wasi:random/random"));
        assert!(World::Source.allows("mecha:plugin/verify"));
        assert!(!World::Responder.allows("mecha:plugin/verify"));
        for world in World::ALL {
            assert!(!world.allows("wasi:sockets/tcp"));
            assert!(!world.allows("wasi:filesystem/types"));
            assert!(world.allows("wasi:cli/stderr"));
        }
    }
}
