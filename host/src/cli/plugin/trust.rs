//! `mecha plugin trust add|ls|rm`: the minisign public keys whose signatures `mecha plugin
//! install` accepts. The keys and the checks are `plugin::trust`'s; this only prints.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::{print_outcome, table};
use crate::config::home::Home;
use crate::plugin::trust::{TrustedKey, TrustedKeys};

#[derive(Debug, Subcommand)]
pub enum Trust {
    /// Trust a minisign public key (the .pub file `minisign -G` writes) to sign plugins.
    Add(Add),
    /// List the trusted keys.
    Ls(List),
    /// Stop trusting a key, by the id `trust ls` shows.
    Rm(Remove),
}

#[derive(Debug, Args)]
pub struct Add {
    /// The minisign public-key file.
    key: PathBuf,
    /// Print the key trusted as JSON: `id` and `comment`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct List {
    /// Print a JSON list of the keys, each with its `id` and `comment`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct Remove {
    /// The key id (16 hex digits, as `mecha plugin trust ls` and minisign show it).
    key_id: String,
    /// Print the key no longer trusted as JSON: `id` and `comment`.
    #[arg(long)]
    json: bool,
}

/// A trusted key as `--json` prints it.
#[derive(serde::Serialize)]
struct Key<'a> {
    id: &'a str,
    comment: &'a str,
}

impl<'a> From<&'a TrustedKey> for Key<'a> {
    fn from(key: &'a TrustedKey) -> Key<'a> {
        Key {
            id: &key.id,
            comment: &key.comment,
        }
    }
}

impl Trust {
    pub fn run(self, home: &Home) -> anyhow::Result<()> {
        let keys = TrustedKeys::in_home(home.root());
        match self {
            Trust::Add(Add { key, json }) => {
                let key = keys.add(&key)?;
                let text = format!("trusted key {} ({})", key.id, key.comment);
                print_outcome(json, &Key::from(&key), &text)
            }
            Trust::Ls(List { json }) => {
                let listed = keys.list()?;
                let rows: Vec<Vec<String>> = listed
                    .iter()
                    .map(|key| vec![key.id.clone(), key.comment.clone()])
                    .collect();
                let text = table::render(&["KEY ID", "COMMENT"], &rows);
                let shown: Vec<Key> = listed.iter().map(Key::from).collect();
                print_outcome(json, &shown, text.trim_end_matches('\n'))
            }
            Trust::Rm(Remove { key_id, json }) => {
                let key = keys.remove(&key_id)?;
                let text = format!("no longer trusting key {} ({})", key.id, key.comment);
                print_outcome(json, &Key::from(&key), &text)
            }
        }
    }
}
