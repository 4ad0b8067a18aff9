//! Tries what the sandbox must refuse: connect a TCP socket (to the port in the body's `port`),
//! read a file, list the root directory, read the environment and arguments. It answers one
//! `probe` event whose attrs say what each attempt got, and prints a line to stdout and one to
//! stderr, which the host must write to its log.

use mecha_plugin_sdk::source::{self, Error, Outcome, PluginInfo, Request, Source};

struct Sandbox;

impl Source for Sandbox {
    fn describe() -> PluginInfo {
        source::info("sandbox", "0.1.0", "tries to reach what it was not granted")
    }

    fn handle_webhook(request: Request) -> Result<Outcome, Error> {
        let body = source::json_object(&request.body)?;
        let port = body.get("port").and_then(|port| port.as_u64()).unwrap_or(9);
        let socket = match std::net::TcpStream::connect(("127.0.0.1", port as u16)) {
            Ok(_) => "connected".to_owned(),
            Err(err) => format!("denied: {err}"),
        };
        let file = match std::fs::read("/etc/hostname") {
            Ok(_) => "opened".to_owned(),
            Err(err) => format!("denied: {err}"),
        };
        let listing = match std::fs::read_dir("/") {
            Ok(_) => "listed".to_owned(),
            Err(err) => format!("denied: {err}"),
        };
        println!("sandbox stdout line");
        eprintln!("sandbox stderr line");
        let event = source::event("probe")
            .attr("socket", socket)
            .attr("file", file)
            .attr("listing", listing)
            .attr("env", std::env::vars().count() as i64)
            .attr("args", std::env::args().count() as i64);
        Ok(Outcome::Events(vec![event]))
    }
}

mecha_plugin_sdk::export_source!(Sandbox);
