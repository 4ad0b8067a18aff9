//! `mecha config [NAME]`: stored worker definitions as YAML, secrets hidden.

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
        let documents: Vec<String> = selected
            .iter()
            .map(|worker| serde_yaml::to_string(&worker.definition))
            .collect::<Result<_, _>>()?;
        print!("{}", documents.join("---\n"));
        Ok(())
    }
}
