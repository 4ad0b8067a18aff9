//! `mecha dashboard`: a one-time link that signs the browser in to the local daemon's
//! dashboard (`/ui`), so that the API key need not be typed or pasted anywhere.

use clap::Args;

use crate::config::home::Home;
use crate::config::server::ServerConfig;

#[derive(Debug, Args)]
pub struct Dashboard {
    /// The daemon's address (default: addr from config.yml).
    #[arg(long)]
    addr: Option<String>,
    /// Print the link as JSON (`{"url": ...}`).
    #[arg(long)]
    json: bool,
}

impl Dashboard {
    pub async fn run(self, home: Home) -> anyhow::Result<()> {
        let config = ServerConfig::load(&home.config_file())?;
        let addr = self.addr.unwrap_or_else(|| config.addr.to_string());
        let base = format!("http://{}", loopback_if_unspecified(&addr));
        let url = format!("{base}/ui/links");
        let text = super::post_to_daemon(&home, &url).await?;
        let reply: serde_json::Value = serde_json::from_str(&text)?;
        let Some(path) = reply["path"].as_str() else {
            anyhow::bail!("the daemon's answer has no link: {text}");
        };
        let link = format!("{base}{path}");
        if self.json {
            println!("{}", serde_json::json!({ "url": link }));
        } else {
            println!("{link}");
            eprintln!("open it within 2 minutes; it signs one browser in, once");
        }
        Ok(())
    }
}

/// `addr` with an unspecified address (`0.0.0.0`, `[::]`) replaced by loopback: the daemon
/// listens there too, and a browser cannot open the unspecified address.
fn loopback_if_unspecified(addr: &str) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(socket) if socket.ip().is_unspecified() => {
            let loopback: std::net::IpAddr = if socket.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            std::net::SocketAddr::new(loopback, socket.port()).to_string()
        }
        _ => addr.to_owned(),
    }
}
