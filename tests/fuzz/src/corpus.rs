//! The seeds mutations start from: every fixture in `tests/fixtures/<provider>/`, read when the
//! campaign starts, plus the hand-written ones in [`crate::seeds`] for shapes no fixture has.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::rng::Rng;
use crate::seeds;

/// One starting point for mutations.
pub struct Seed {
    /// The fixture's file name, or a name for a hand-written seed: targets derive the header
    /// that goes with it (`pull_request__opened.payload.json` → `pull_request`).
    pub name: String,
    pub bytes: Vec<u8>,
    pub shape: Shape,
}

/// What structure-aware mutations can work on.
pub enum Shape {
    Json(Value),
    Form,
    Opaque,
}

impl Seed {
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Seed {
        let name = name.into();
        let bytes = bytes.into();
        let shape = if name.ends_with(".form") {
            Shape::Form
        } else {
            serde_json::from_slice(&bytes).map_or(Shape::Opaque, Shape::Json)
        };
        Seed { name, bytes, shape }
    }
}

/// The seeds of every source.
pub struct Corpus {
    pub github: Vec<Seed>,
    pub gitlab: Vec<Seed>,
    pub slack: Vec<Seed>,
    pub telegram: Vec<Seed>,
    pub generic: Vec<Seed>,
    /// Slack interactive payloads, the JSON that goes into a form's `payload` field.
    pub interactive: Vec<Value>,
}

impl Corpus {
    /// Reads the fixtures of `tests/fixtures/`, found from this crate's manifest directory so
    /// that the binary works from any working directory.
    pub fn load() -> io::Result<Corpus> {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let with = |provider: &str, extra: Vec<Seed>| -> io::Result<Vec<Seed>> {
            let mut seeds = fixtures_of(&fixtures.join(provider))?;
            seeds.extend(extra);
            Ok(seeds)
        };
        Ok(Corpus {
            github: with("github", seeds::github())?,
            gitlab: with("gitlab", seeds::gitlab())?,
            slack: with("slack", seeds::slack())?,
            telegram: with("telegram", seeds::telegram())?,
            generic: seeds::generic(),
            interactive: seeds::interactive(),
        })
    }

    /// Every seed of every source: any JSON object is a fair generic webhook, and any body a
    /// fair thing to splice from.
    pub fn all(&self) -> impl Iterator<Item = &Seed> {
        [
            &self.github,
            &self.gitlab,
            &self.slack,
            &self.telegram,
            &self.generic,
        ]
        .into_iter()
        .flatten()
    }

    /// A seed of `own` (a source's seeds), or now and then another source's: a parser must
    /// refuse a well-formed body of the wrong provider as calmly as garbage.
    pub fn seed<'a>(&'a self, rng: &mut Rng, own: &'a [Seed]) -> &'a Seed {
        let stranger = if rng.chance(10) {
            let count = self.all().count();
            self.all().nth(rng.below(count))
        } else {
            None
        };
        stranger.unwrap_or_else(|| rng.pick(own))
    }

    /// The body of a random seed of any source, for splicing.
    pub fn any_body(&self, rng: &mut Rng) -> &[u8] {
        let count = self.all().count();
        self.all()
            .nth(rng.below(count))
            .map_or(&[], |seed| &seed.bytes)
    }
}

/// The payloads in `dir`, sorted by name so that seed numbers are stable; READMEs are skipped.
fn fixtures_of(dir: &Path) -> io::Result<Vec<Seed>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|err| io::Error::new(err.kind(), format!("reading {}: {err}", dir.display())))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<io::Result<_>>()?;
    paths.retain(|path| path.extension().is_some_and(|ext| ext != "md"));
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).map_err(|err| {
                io::Error::new(err.kind(), format!("reading {}: {err}", path.display()))
            })?;
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Seed::new(name, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_fixtures_that_parse() {
        let corpus = Corpus::load().expect("fixtures");
        for (provider, seeds, at_least) in [
            ("github", &corpus.github, 15),
            ("gitlab", &corpus.gitlab, 7),
            ("slack", &corpus.slack, 6),
            ("telegram", &corpus.telegram, 5),
        ] {
            assert!(seeds.len() >= at_least, "{provider}: {} seeds", seeds.len());
            for seed in seeds {
                assert!(
                    !matches!(seed.shape, Shape::Opaque),
                    "{provider}/{} is neither JSON nor a form",
                    seed.name
                );
            }
        }
        assert!(!corpus.generic.is_empty() && !corpus.interactive.is_empty());
    }
}
