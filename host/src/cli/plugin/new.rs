//! `mecha plugin new NAME --world W --lang L`: a plugin project that builds and passes its test
//! as it is written.
//!
//! The project gets the WIT package this daemon implements (`wit/`, with the WASI packages in
//! `wit/deps/`), so it builds with nothing but its language's own toolchain: wit-bindgen from
//! crates.io for Rust, componentize-py from PyPI for Python. The templates live in
//! `cli/plugin/templates/<lang>/` (files shared by every world) and
//! `cli/plugin/templates/<lang>/<world>/`; both they and `wit/` are embedded by the build script.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::cli::print_outcome;
use crate::config::name::is_safe_name;
use crate::plugin::World;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/project_files.rs"));
}

#[derive(Debug, Args)]
pub struct New {
    /// The plugin's name: 1-64 lower-case letters, digits, `-` and `_`. Sources are served at
    /// `/webhook/<name>`.
    name: String,
    /// The world the plugin implements.
    #[arg(long, value_enum)]
    world: WorldArg,
    /// The language of the project.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// Where to create the project; default: a new directory named after the plugin.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print what was created as JSON: `name`, `world`, `lang`, `path` (the project's
    /// directory) and `files` (how many).
    #[arg(long)]
    json: bool,
}

/// What `new --json` prints.
#[derive(serde::Serialize)]
struct Created<'a> {
    name: &'a str,
    world: World,
    lang: &'static str,
    path: &'a Path,
    files: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum WorldArg {
    Source,
    Trigger,
    Policy,
    Responder,
}

impl From<WorldArg> for World {
    fn from(world: WorldArg) -> World {
        match world {
            WorldArg::Source => World::Source,
            WorldArg::Trigger => World::Trigger,
            WorldArg::Policy => World::Policy,
            WorldArg::Responder => World::Responder,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Lang {
    Rust,
    Python,
}

impl Lang {
    fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
        }
    }
}

impl New {
    pub fn run(self) -> anyhow::Result<()> {
        if !is_safe_name(&self.name) {
            bail!(
                "{:?} is not a plugin name: use 1-64 lower-case letters, digits, - and _, \
                 starting with a letter or digit",
                self.name
            );
        }
        if matches!(self.lang, Lang::Rust) && self.name.starts_with(|c: char| c.is_ascii_digit()) {
            bail!(
                "{:?} starts with a digit, which Cargo does not allow in a package name; \
                 start it with a letter",
                self.name
            );
        }
        let world = World::from(self.world);
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(&self.name));
        if dir.exists()
            && std::fs::read_dir(&dir)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(true)
        {
            bail!(
                "{} already exists and is not empty; choose another name or --dir",
                dir.display()
            );
        }
        let files = project_files(&self.name, world, self.lang);
        if files.is_empty() {
            bail!("no {} template for {world} plugins", self.lang.as_str());
        }
        for (relative, contents) in &files {
            write(&dir.join(relative), contents)?;
        }
        let text = format!(
            "created {} ({} {world} plugin, {} files)\n\nnext:\n  cd {}\n  ./test.sh      \
             # builds it and runs it once with `mecha plugin test`\n  see README.md for \
             installing it",
            dir.display(),
            self.lang.as_str(),
            files.len(),
            dir.display()
        );
        let created = Created {
            name: &self.name,
            world,
            lang: self.lang.as_str(),
            path: &dir,
            files: files.len(),
        };
        print_outcome(self.json, &created, &text)
    }
}

/// Every file of the project, by path relative to its directory, placeholders replaced.
fn project_files(name: &str, world: World, lang: Lang) -> Vec<(String, String)> {
    let lang_dir = format!("{}/", lang.as_str());
    let world_dir = format!("{}{}/", lang_dir, world.as_str());
    let is_world_dir = |relative: &str| {
        World::ALL
            .iter()
            .any(|world| relative.starts_with(&format!("{}/", world.as_str())))
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{world}}", world.as_str())
    };
    let mut files: Vec<(String, String)> = Vec::new();
    for (path, contents) in embedded::TEMPLATES {
        let Some(relative) = path.strip_prefix(&lang_dir) else {
            continue;
        };
        let relative = match path.strip_prefix(&world_dir) {
            Some(own) => own,
            None if is_world_dir(relative) => continue,
            None => relative,
        };
        files.push((relative.to_owned(), fill(contents)));
    }
    for (path, contents) in embedded::WIT {
        files.push((format!("wit/{path}"), (*contents).to_owned()));
    }
    files
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    if path.extension().is_some_and(|extension| extension == "sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_world_and_language_has_a_project_with_the_wit_package() {
        for lang in [Lang::Rust, Lang::Python] {
            for world in World::ALL {
                let files = project_files("my-plugin", world, lang);
                let paths: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
                assert!(paths.contains(&"wit/worlds.wit"), "{lang:?} {world}");
                assert!(
                    paths.contains(&"wit/deps/http/http.wit"),
                    "{lang:?} {world}"
                );
                assert!(paths.contains(&"README.md"), "{lang:?} {world}");
                assert!(paths.contains(&"test.sh") || paths.iter().any(|p| p.ends_with("test.sh")));
                // Another world's files never leak in, and every placeholder is filled.
                for (path, contents) in &files {
                    for other in World::ALL.iter().filter(|other| **other != world) {
                        assert!(!path.starts_with(&format!("{}/", other.as_str())), "{path}");
                    }
                    assert!(!contents.contains("{{name}}"), "{path}");
                    assert!(!contents.contains("{{world}}"), "{path}");
                    assert!(!contents.contains("{{crate}}"), "{path}");
                }
            }
        }
    }
}
