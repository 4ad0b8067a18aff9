//! Which world a component implements, and whether the host can link what it imports.
//!
//! A component's world is read from its own exports (`mecha:plugin/<kind>-api@<version>`), so a
//! plugin needs no manifest to be recognised. Its imports are then checked here, in one place,
//! before anything is linked. Capabilities come from grants, not from refused imports: every
//! world may import all of WASI 0.2 (the runtimes of Python, C, Go and JavaScript import it
//! whether or not they use it), and the host links it with nothing granted (see
//! [`crate::plugin::host::StateBuilder`]). What is refused is what the host cannot link at all:
//! packages outside WASI 0.2 and `mecha:plugin`, outgoing HTTP in a policy, and `mecha:plugin`
//! interfaces of another world or an incompatible version. Every such import is named at once.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::Error;

/// The WIT package this daemon implements.
pub const PACKAGE: &str = "mecha:plugin";

/// The version of [`PACKAGE`] this daemon offers; plugins built for any version of the same
/// line (`0.1.x`) load.
pub const VERSION: &str = "0.1.0";

/// The WASI line the host links: every `0.2.x` import is served by wasmtime's implementation,
/// which matches semver-compatible versions.
const WASI_LINE: (u64, u64) = (0, 2);

/// The WASI 0.2 packages linked for every world, with nothing granted.
const WASI_PACKAGES: &[&str] = &[
    "wasi:io",
    "wasi:cli",
    "wasi:clocks",
    "wasi:random",
    "wasi:filesystem",
    "wasi:sockets",
];

/// Outgoing HTTP, for the worlds that declare it in `wit/worlds.wit`; each request is checked
/// against the plugin's grant (see `host::http`), and a plugin granted nothing reaches nothing.
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

    /// Whether the world imports `wasi:http/outgoing-handler`; policies must stay deterministic.
    pub fn offers_http(self) -> bool {
        self != World::Policy
    }

    /// Whether the host can link `import` (`package/interface@version`) for this world.
    fn allows(self, import: &str) -> bool {
        let (interface, version) = import.split_once('@').unwrap_or((import, ""));
        let Some((package, name)) = interface.split_once('/') else {
            return false;
        };
        if package == PACKAGE {
            return self.mecha_imports().contains(&name) && compatible(version, VERSION);
        }
        let wasi_line = parse(version).is_some_and(|(major, minor, _)| (major, minor) == WASI_LINE);
        wasi_line
            && (WASI_PACKAGES.contains(&package)
                || (self.offers_http() && WASI_HTTP.contains(&interface)))
    }

    /// What the world may import, for error messages.
    fn allowed_list(self) -> String {
        let mut names: Vec<String> = self
            .mecha_imports()
            .iter()
            .map(|name| format!("{PACKAGE}/{name}@0.1"))
            .collect();
        names.push("wasi:io, wasi:cli, wasi:clocks, wasi:random, wasi:filesystem, wasi:sockets @0.2 (nothing granted)".into());
        if self.offers_http() {
            names.push("wasi:http/outgoing-handler@0.2 (granted origins only)".into());
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
    let refused: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| !shape.world.allows(name))
        .map(str::to_owned)
        .collect();
    if !refused.is_empty() {
        return Err(Error::ForbiddenImports {
            plugin: plugin.to_owned(),
            imports: refused,
            world: shape.world,
            allowed: shape.world.allowed_list(),
        });
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
/// line (the same major version, and the same minor while the major is 0), and within it no
/// newer minor version. Patch versions only fix documentation and never change what is linked,
/// and wasmtime matches semver-compatible names, so any patch of the line loads.
fn compatible(needed: &str, offered: &str) -> bool {
    let (Some(needed), Some(offered)) = (parse(needed), parse(offered)) else {
        return false;
    };
    if offered.0 == 0 {
        needed.0 == 0 && needed.1 == offered.1
    } else {
        needed.0 == offered.0 && needed.1 <= offered.1
    }
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
        assert!(compatible("0.1.4", "0.1.3"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(compatible("1.0.0", "1.4.0"));
        assert!(compatible("1.4.9", "1.4.0"));
        assert!(!compatible("1.5.0", "1.4.0"));
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
    fn every_world_links_wasi_0_2_and_only_some_get_http() {
        for world in World::ALL {
            for import in [
                "wasi:filesystem/types@0.2.0",
                "wasi:sockets/tcp@0.2.9",
                "wasi:cli/environment@0.2.12",
                "wasi:clocks/wall-clock@0.2.3",
                "wasi:random/random@0.2.0",
                "wasi:io/streams@0.2.6",
            ] {
                assert!(world.allows(import), "{world} refuses {import}");
            }
            assert!(world.allows("mecha:plugin/log@0.1.0"));
            assert!(!world.allows("wasi:cli/environment@0.3.0"));
            assert!(!world.allows("wasi:filesystem/types"));
            assert!(!world.allows("wasi:keyvalue/store@0.2.0"));
            assert!(!world.allows("acme:evil/backdoor@1.0.0"));
            assert!(!world.allows("mecha:plugin/log@0.2.0"));
        }
        assert!(World::Source.allows("wasi:http/outgoing-handler@0.2.0"));
        assert!(World::Responder.allows("wasi:http/types@0.2.12"));
        assert!(!World::Policy.allows("wasi:http/outgoing-handler@0.2.12"));
        assert!(!World::Source.allows("wasi:http/incoming-handler@0.2.12"));
        assert!(World::Source.allows("mecha:plugin/verify@0.1.0"));
        assert!(!World::Responder.allows("mecha:plugin/verify@0.1.0"));
    }
}
