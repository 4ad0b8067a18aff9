//! `mecha plugin push FILE oci://HOST/REPO:TAG`, and the registry login flags `push` and
//! `install` share.
//!
//! What is pushed is first read and loaded as `install` would, so a component that no daemon
//! would install is refused before it is published.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::cli::print_outcome;
use crate::config::home::Home;
use crate::plugin::loader::Origin;
use crate::plugin::oci::{self, Credentials, MAX_SIGNATURE_BYTES};
use crate::plugin::{World, component_file};

/// 4 KiB read from standard input for a password or token: registry tokens are under 2 KiB.
const MAX_PASSWORD_BYTES: u64 = 4096;

/// How to log in to a registry: `--username` with the password on standard input, or else the
/// Docker config file (`docker login` writes it).
#[derive(Debug, Args)]
pub struct RegistryLogin {
    /// The registry username; the password is read from standard input (--password-stdin).
    /// Without it, credentials come from $DOCKER_CONFIG/config.json or ~/.docker/config.json.
    #[arg(long, requires = "password_stdin", value_name = "USER")]
    username: Option<String>,
    /// Read the registry password (or token) from standard input, so it never appears in the
    /// process list or shell history.
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

impl RegistryLogin {
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        let Some(username) = &self.username else {
            return Ok(Credentials::DockerConfig);
        };
        let mut password = String::new();
        std::io::stdin()
            .take(MAX_PASSWORD_BYTES + 1)
            .read_to_string(&mut password)
            .context("reading the registry password from standard input (--password-stdin)")?;
        if password.len() as u64 > MAX_PASSWORD_BYTES {
            anyhow::bail!(
                "the password on standard input is longer than {MAX_PASSWORD_BYTES} bytes; \
                 give the password or token alone"
            );
        }
        let password = password.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            anyhow::bail!(
                "--password-stdin read an empty password; pipe it in, as in \
                 `cat token | mecha plugin push ... --username USER --password-stdin`"
            );
        }
        Ok(Credentials::Login {
            username: username.clone(),
            password,
        })
    }
}

#[derive(Debug, Args)]
pub struct Push {
    /// The plugin component (.wasm, built for wasm32-wasip2).
    file: PathBuf,
    /// Where to publish it: oci://HOST/REPO:TAG.
    reference: String,
    /// A minisign signature of the component (`minisign -Sm FILE` writes FILE.minisig), pushed
    /// beside it under the tag sha256-<manifest digest>.minisig, where `install` looks for it.
    #[arg(long, value_name = "FILE.minisig")]
    signature: Option<PathBuf>,
    #[command(flatten)]
    login: RegistryLogin,
    /// Allow plain http:// to a registry that is not loopback.
    #[arg(long)]
    insecure: bool,
    /// Print what was published as JSON: the plugin's `name`, `version`, `world` and `sha256`,
    /// the `reference` pushed to, the manifest's `digest`, the `pinned` reference to install,
    /// and the `signature` tag if one was pushed.
    #[arg(long)]
    json: bool,
}

/// What `push --json` prints.
#[derive(serde::Serialize)]
struct Published<'a> {
    name: &'a str,
    version: &'a str,
    world: World,
    sha256: &'a str,
    reference: &'a str,
    digest: &'a str,
    pinned: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
}

impl Push {
    pub async fn run(self, home: &Home) -> anyhow::Result<()> {
        let wasm = component_file::read(&self.file)?;
        let label = self.file.display().to_string();
        let plugin = super::loader(home)?
            .load(&label, &wasm, Origin::Installed(self.file.clone()))
            .await
            .with_context(|| format!("{label} would not install, so it is not pushed"))?;
        let signature = match &self.signature {
            Some(path) => {
                let metadata = std::fs::metadata(path)
                    .with_context(|| format!("reading the signature {}", path.display()))?;
                if metadata.len() > MAX_SIGNATURE_BYTES {
                    anyhow::bail!(
                        "{} is larger than {MAX_SIGNATURE_BYTES} bytes, which no minisign \
                         signature is; give the .minisig file `minisign -S` wrote",
                        path.display()
                    );
                }
                Some(
                    std::fs::read(path)
                        .with_context(|| format!("reading the signature {}", path.display()))?,
                )
            }
            None => None,
        };
        let credentials = self.login.credentials()?;
        let pushed = oci::push(
            &self.reference,
            &wasm,
            signature.as_deref(),
            &credentials,
            self.insecure,
        )
        .await
        .with_context(|| format!("pushing {label} to {}", self.reference))?;
        let mut text = format!(
            "pushed {} {} to {}\n",
            plugin.info.name, plugin.info.version, self.reference
        );
        if let Some(tag) = &pushed.signature_tag {
            text.push_str(&format!("signature: {tag}\n"));
        }
        text.push_str(&format!(
            "digest: {}\ninstall it with: mecha plugin install {}",
            pushed.digest, pushed.pinned
        ));
        let published = Published {
            name: &plugin.info.name,
            version: &plugin.info.version,
            world: plugin.world,
            sha256: &plugin.sha256,
            reference: &self.reference,
            digest: &pushed.digest,
            pinned: &pushed.pinned,
            signature: pushed.signature_tag.as_deref(),
        };
        print_outcome(self.json, &published, &text)
    }
}
