//! `/ui/plugins`: the plugins the daemon runs, who signed each, and what each was granted.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::SignedIn;
use super::html::{escape, page};
use crate::api::{ApiError, ApiState};
use crate::plugin::Origin;

pub(super) async fn list(State(state): State<ApiState>, _: SignedIn) -> Result<Response, ApiError> {
    let registry = state.plugins.current();
    // Who signed what is in the lock file; a lock that cannot be read shows no signer.
    let entries = state.installed.entries().unwrap_or_default();
    let mut rows = String::from(
        "<table class=\"plugins\"><tr><th>plugin</th><th>world</th><th>version</th><th>sha256</th><th>origin</th><th>signed by</th><th>may reach</th><th>may read secrets</th></tr>",
    );
    for plugin in registry.iter() {
        let (origin, signer) = match &plugin.origin {
            Origin::Bundled => ("bundled", "part of mecha".to_owned()),
            Origin::Installed(_) => {
                let signer = entries
                    .iter()
                    .find(|entry| entry.current.sha256 == plugin.sha256)
                    .and_then(|entry| entry.current.signer.clone())
                    .unwrap_or_else(|| "nobody (unsigned)".to_owned());
                ("installed", signer)
            }
        };
        let list = |items: &[String]| {
            if items.is_empty() {
                "nothing".to_owned()
            } else {
                escape(&items.join(", "))
            }
        };
        rows.push_str(&format!(
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{origin}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            escape(&plugin.info.name),
            plugin.world,
            escape(&plugin.info.version),
            escape(&plugin.sha256[..12.min(plugin.sha256.len())]),
            escape(&signer),
            list(&plugin.info.hosts),
            list(&plugin.info.secrets),
        ));
    }
    rows.push_str(
        "</table><p>What an installed plugin may reach and read is what was granted to it at \
         install. A signer is a key id of <code>mecha plugin trust ls</code>.</p>",
    );
    Ok(page("Plugins", &rows, true).into_response())
}
