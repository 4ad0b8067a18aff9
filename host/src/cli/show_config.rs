//! `mecha config [NAME]`: stored worker definitions as YAML (or JSON), secrets hidden.

use anyhow::bail;
use clap::Args;

use super::{open_store, redactor};
use crate::config::home::Home;
use crate::worker::view::views;

/// Print worker definitions as stored (sanitized), separated by `---`.
#[derive(Debug, Args)]
pub struct ShowConfig {
    /// Only this worker.
    name: Option<String>,
    /// Print JSON, secrets hidden as in the YAML: the list of definitions, or the one
    /// definition when NAME is given.
    #[arg(long)]
    json: bool,
}

impl ShowConfig {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        let store = open_store(&home).await?;
        let redactor = redactor(&home);
        let workers = views(store.as_ref(), &redactor).await?;
        store.close().await?;
        let selected: Vec<_> = workers
            .into_iter()
            .filter(|worker| self.name.as_ref().is_none_or(|name| *name == worker.name))
            .collect();
        if let (Some(name), true) = (&self.name, selected.is_empty()) {
            bail!("no worker named {name}; `mecha worker ls` lists them");
        }
        if self.json {
            let definitions: Vec<_> = selected.iter().map(|worker| &worker.definition).collect();
            // A worker asked for by name is one document, as in the YAML.
            return match definitions.as_slice() {
                [definition] if self.name.is_some() => super::print_json(definition),
                all => super::print_json(&all),
            };
        }
        let documents: Vec<String> = selected
            .iter()
            .map(|worker| serde_yaml::to_string(&worker.definition))
            .collect::<Result<_, _>>()?;
        print!("{}", documents.join("---\n"));
        Ok(())
    }
}
