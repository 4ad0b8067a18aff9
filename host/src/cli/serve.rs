//! `mecha serve`.

use std::net::SocketAddr;

use clap::Args;

use crate::config::home::Home;
use crate::config::secrets::Secret;
use crate::daemon::{self, Overrides};

/// Run the daemon until Ctrl-C or SIGTERM.
///
/// Settings come from flags, then $MECHA_HOME/config.yml, then defaults (127.0.0.1:21212).
/// Webhooks arrive at POST /webhook/<source>; a source whose secret is missing from
/// secrets.yml answers 503 saying which secret to set.
#[derive(Debug, Args)]
pub struct Serve {
    /// Address to listen on, e.g. 127.0.0.1:21212.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// API key required on the API and on webhooks of sources that verify nothing. Prefer
    /// MECHA_API_KEY or config.yml: command lines are visible to other users.
    #[arg(long, env = "MECHA_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

impl Serve {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        let overrides = Overrides {
            addr: self.addr,
            api_key: self.api_key.filter(|key| !key.is_empty()).map(Secret::new),
        };
        daemon::serve(home, overrides).await?;
        Ok(())
    }
}
