//! Opens a TCP socket, which no mecha world offers: the host must refuse to load it.

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

struct Sockets;

impl Source for Sockets {
    fn describe() -> PluginInfo {
        source::info("sockets", "0.1.0", "tries to open a socket")
    }

    fn handle_webhook(_request: Request) -> Result<Outcome, Error> {
        std::net::TcpStream::connect("127.0.0.1:9")
            .map_err(|err| Error::Internal(err.to_string()))?;
        Ok(Outcome::Events(Vec::new()))
    }
}

mecha_plugin_sdk::export_source!(Sockets);
