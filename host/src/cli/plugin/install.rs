//! `mecha plugin install SOURCE` and `mecha plugin upgrade NAME`: bring a component, check its
//! digest and signature, validate it, show the operator what it asks for and get their consent,
//! then commit it as the plugin's current version (`plugin::install` keeps the one it replaces
//! for `rollback`). A running daemon notices the change and switches to it.
//!
//! Consent: an install always shows what the plugin asks for (its world, HTTP origins, secrets
//! and settings) and asks on a terminal; `--yes` answers for scripts; with neither, nothing is
//! installed. An upgrade asks again only when the new version asks for an origin or a secret its
//! current version was not granted. What was accepted is recorded as the version's grant.
//! `--json` changes none of this: what the plugin asks for then goes to stderr, beside the
//! question, and stdout holds only what was installed.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{Change, describe, loader_for, push};
use crate::cli::{print_note, print_outcome};
use crate::config::home::Home;
use crate::config::server::ServerConfig;
use crate::plugin::bundled;
use crate::plugin::fetch::{FetchOptions, fetch};
use crate::plugin::grants::Grants;
use crate::plugin::install::{Installed, Provenance, Version};
use crate::plugin::loader::{LoadedPlugin, Origin};
use crate::plugin::newer::{compare_versions, next_source};
use crate::plugin::trust::{Requirements, TrustedKey, TrustedKeys, parse_sha256, read_signature};

/// How a component is checked on its way in: flags `install` and `upgrade` share.
#[derive(Debug, Args)]
pub struct Checks {
    /// The component's sha256 (64 hex digits, as `sha256sum` prints them); the download is
    /// refused before anything is written when it differs.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// A minisign signature of the component (`minisign -S` writes FILE.minisig), by a key
    /// trusted with `mecha plugin trust add`.
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
    /// Allow plain http:// to a host that is not loopback.
    #[arg(long)]
    insecure: bool,
    /// Grant what the plugin asks for without asking (for scripts). Without it, the request is
    /// shown and confirmed on a terminal, and refused when there is no terminal.
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    login: push::RegistryLogin,
}

#[derive(Debug, Args)]
pub struct Install {
    /// The plugin component, built for wasm32-wasip2: a file, or an https:// URL (which needs
    /// --sha256 or a signature by a trusted key; its signature is looked for at <URL>.minisig),
    /// or oci://HOST/REPO:TAG or oci://HOST/REPO@sha256:DIGEST (its signature is looked for
    /// under the tag sha256-<manifest digest>.minisig).
    source: String,
    /// Install a plugin that has a bundled plugin's name in that plugin's place (a newer build
    /// of it): it then receives what config.yml and secrets.yml hold under that name.
    #[arg(long)]
    replace_bundled: bool,
    #[command(flatten)]
    checks: Checks,
    /// Print what was installed as JSON: `name`, `current` (its `version`, `sha256`, `world`,
    /// `source`, `signer`, `granted`), `replaced` (the version kept for rollback, if any) and
    /// `shared`. What it asks for is shown on stderr; consent still needs a terminal or --yes.
    #[arg(long)]
    json: bool,
}

impl Install {
    pub async fn run(self, home: &Home) -> anyhow::Result<()> {
        let config = ServerConfig::load(&home.config_file())?;
        let installed = Installed::new(home.plugins_dir());
        let options = self.checks.fetch_options()?;
        let arrived = Arrival::fetch(home, &config, &self.source, &self.checks, options).await?;
        let name = arrived.plugin.info.name.clone();
        if bundled::is_reserved(&name) && !self.replace_bundled {
            return Err(crate::plugin::Error::BundledName {
                plugin: arrived.label.clone(),
                name,
            })
            .with_context(|| format!("installing {}", self.source));
        }
        let requested = Grants::requested(&arrived.plugin.info);
        print_note(self.json, &arrived.shown());
        if bundled::is_reserved(&name) {
            print_note(
                self.json,
                &format!(
                    "replaces: the bundled {} {} (it receives the `{name}` sections of \
                     config.yml and secrets.yml)\n",
                    name, arrived.plugin.world
                ),
            );
        }
        consent(
            &format!("Install {name} and grant it the above?"),
            self.checks.yes,
            || {
                format!(
                    "{name} was not installed: it asks for the above, and nobody confirmed it (no \
                     terminal to ask on); run `mecha plugin install {} --yes` to grant it",
                    self.source
                )
            },
        )?;
        let change = arrived.commit(
            &installed,
            Provenance {
                granted: requested,
                replaces_bundled: self.replace_bundled && bundled::is_reserved(&name),
                ..Provenance::default()
            },
        )?;
        let text = match &change.replaced {
            Some(old) => format!(
                "installed {name} {} in place of {} (kept: `mecha plugin rollback {name}` \
                 restores it); a running daemon switches to it within a second",
                arrived.plugin.info.version,
                old.label()
            ),
            None => format!(
                "installed {name} {}; a running daemon picks it up within a second",
                arrived.plugin.info.version
            ),
        };
        super::announce(home, change, self.json, &text).await
    }
}

#[derive(Debug, Args)]
pub struct Upgrade {
    /// The installed plugin's name.
    name: String,
    #[command(flatten)]
    checks: Checks,
    /// Print what was installed as JSON, as `install --json` does; `replaced` is absent when it
    /// was up to date. What it asks for is shown on stderr; consent to more than its current
    /// version was granted still needs a terminal or --yes.
    #[arg(long)]
    json: bool,
}

impl Upgrade {
    pub async fn run(self, home: &Home) -> anyhow::Result<()> {
        let name = &self.name;
        let config = ServerConfig::load(&home.config_file())?;
        let installed = Installed::new(home.plugins_dir());
        let current = installed.entry(name)?.current;
        let Some(source) = current.source.clone() else {
            anyhow::bail!(
                "where {name} was installed from was not recorded; install the new version with \
                 `mecha plugin install`"
            );
        };
        let options = self.checks.fetch_options()?;
        let next = next_source(&source, &options)
            .await
            .with_context(|| format!("looking for a newer version of {name} at {source}"))?;
        let arrived = Arrival::fetch(home, &config, &next, &self.checks, options).await?;
        let plugin = &arrived.plugin;
        if plugin.sha256 == current.sha256 {
            let text = format!("{name} is up to date: {} from {next}", current.label());
            let change = Change {
                name: name.clone(),
                current: Some(current),
                replaced: None,
                shared: None,
            };
            return print_outcome(self.json, &change, &text);
        }
        if plugin.info.name != *name || plugin.world != current.world {
            anyhow::bail!(
                "{next} is the {} plugin {}, not the {} plugin {name}; install it with `mecha \
                 plugin install` if you meant it",
                plugin.world,
                plugin.info.name,
                current.world
            );
        }
        if compare_versions(&plugin.info.version, &current.version)
            == Some(std::cmp::Ordering::Less)
        {
            anyhow::bail!(
                "{next} holds {name} {}, older than the installed {}; `mecha plugin rollback \
                 {name}` goes back to a kept version, or install that version explicitly",
                plugin.info.version,
                current.version
            );
        }
        print_note(self.json, &arrived.shown());
        let requested = Grants::requested(&plugin.info);
        let granted = current.granted.clone().unwrap_or_default();
        let extra = requested.beyond(&granted);
        if !extra.is_capability_free() {
            print_note(
                self.json,
                &format!(
                    "asks for more than {} was granted:\n{}\n",
                    current.label(),
                    extra.describe()
                ),
            );
            consent(
                &format!("Upgrade {name} and grant it the above?"),
                self.checks.yes,
                || {
                    format!(
                        "{name} was not upgraded: {} asks for origins or secrets its current \
                         version was not granted, and nobody confirmed it (no terminal to ask \
                         on); run `mecha plugin upgrade {name} --yes` to grant them",
                        plugin.info.version
                    )
                },
            )?;
        }
        let change = arrived.commit(
            &installed,
            Provenance {
                granted: requested,
                replaces_bundled: current.replaces_bundled,
                ..Provenance::default()
            },
        )?;
        let text = format!(
            "upgraded {name} from {} to {} ({next}); a running daemon switches to it within a \
             second; `mecha plugin rollback {name}` goes back",
            current.label(),
            Version::of(plugin, Provenance::default()).label()
        );
        super::announce(home, change, self.json, &text).await
    }
}

impl Checks {
    fn fetch_options(&self) -> anyhow::Result<FetchOptions> {
        Ok(FetchOptions {
            insecure: self.insecure,
            signature_beside: self.signature.is_none(),
            registry: self.login.credentials()?,
            ..FetchOptions::default()
        })
    }
}

/// A component brought, checked and loaded, not yet installed.
struct Arrival {
    plugin: LoadedPlugin,
    bytes: Vec<u8>,
    /// What names it in errors until it has told its name: the source's last part.
    label: String,
    source: String,
    signer: Option<TrustedKey>,
}

impl Arrival {
    /// Brings `spec` with `options`, admits it under `checks` and `config`'s rules, and loads
    /// it.
    async fn fetch(
        home: &Home,
        config: &ServerConfig,
        spec: &str,
        checks: &Checks,
        options: FetchOptions,
    ) -> anyhow::Result<Arrival> {
        let context = || format!("installing {spec}");
        let sha256 = checks.sha256.as_deref().map(parse_sha256).transpose()?;
        let given_signature = checks
            .signature
            .as_deref()
            .map(read_signature)
            .transpose()?;
        let fetched = fetch(spec, &options).await.with_context(context)?;
        let requirements = Requirements {
            sha256: sha256.or(fetched.pinned_sha256.clone()),
            require_signature: config.plugins.require_signature,
            remote: spec.contains("://"),
        };
        let signature = given_signature.or(fetched.signature);
        let signer = TrustedKeys::in_home(home.root())
            .admit(
                &fetched.source,
                &fetched.bytes,
                signature.as_deref(),
                &requirements,
            )
            .with_context(context)?;
        let label = fetched
            .source
            .rsplit('/')
            .next()
            .unwrap_or(&fetched.source)
            .to_owned();
        let loader = loader_for(home, config)?;
        let plugin = loader
            .load(&label, &fetched.bytes, Origin::Bundled)
            .await
            .with_context(context)?;
        Ok(Arrival {
            plugin,
            bytes: fetched.bytes,
            label,
            source: fetched.source,
            signer,
        })
    }

    /// What the operator reads before consenting.
    fn shown(&self) -> String {
        let mut text = describe(&self.plugin);
        text.push_str(&format!("source:    {}\n", self.source));
        text.push_str(&match &self.signer {
            Some(key) => format!("signed by: {} ({})\n", key.id, key.comment),
            None => "signed by: nobody (unsigned)\n".to_owned(),
        });
        text
    }

    /// Installs it as the plugin's current version with `provenance`'s grant; says what that
    /// changed, not yet shared.
    fn commit(&self, installed: &Installed, provenance: Provenance) -> anyhow::Result<Change> {
        let provenance = Provenance {
            source: self.source.clone(),
            signer: self.signer.as_ref().map(|key| key.id.clone()),
            ..provenance
        };
        let version = Version::of(&self.plugin, provenance);
        let name = self.plugin.info.name.clone();
        let replaced = installed.install(&name, version.clone(), &self.bytes)?;
        Ok(Change {
            name,
            current: Some(version),
            replaced,
            shared: None,
        })
    }
}

/// Asks `question` on the terminal unless `yes`; without a terminal, refuses with `refusal`.
fn consent(question: &str, yes: bool, refusal: impl FnOnce() -> String) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!(refusal());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => anyhow::bail!("not confirmed; nothing was changed"),
    }
}
