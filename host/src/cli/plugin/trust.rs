//! `mecha plugin trust add|ls|rm`: the minisign public keys whose signatures `mecha plugin
//! install` accepts. The keys and the checks are `plugin::trust`'s; this only prints.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::table;
use crate::config::home::Home;
use crate::plugin::trust::TrustedKeys;

#[derive(Debug, Subcommand)]
pub enum Trust {
    /// Trust a minisign public key (the .pub file `minisign -G` writes) to sign plugins.
    Add(Add),
    /// List the trusted keys.
    Ls,
    /// Stop trusting a key, by the id `trust ls` shows.
    Rm(Remove),
}

#[derive(Debug, Args)]
pub struct Add {
    /// The minisign public-key file.
    key: PathBuf,
}

#[derive(Debug, Args)]
pub struct Remove {
    /// The key id (16 hex digits, as `mecha plugin trust ls` and minisign show it).
    key_id: String,
}

impl Trust {
    pub fn run(self, home: &Home) -> anyhow::Result<()> {
        let keys = TrustedKeys::in_home(home.root());
        match self {
            Trust::Add(Add { key }) => {
                let key = keys.add(&key)?;
                println!("trusted key {} ({})", key.id, key.comment);
            }
            Trust::Ls => {
                let rows: Vec<Vec<String>> = keys
                    .list()?
                    .into_iter()
                    .map(|key| vec![key.id, key.comment])
                    .collect();
                print!("{}", table::render(&["KEY ID", "COMMENT"], &rows));
            }
            Trust::Rm(Remove { key_id }) => {
                let key = keys.remove(&key_id)?;
                println!("no longer trusting key {} ({})", key.id, key.comment);
            }
        }
        Ok(())
    }
}
