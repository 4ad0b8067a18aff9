//! Workers as the API and the CLI show them: state and definition, with every secret hidden,
//! including credentials written into an endpoint or upstream URL (`http://user:pass@host`).

use serde::Serialize;

use crate::config::worker::WorkerDef;
use crate::redact::{REDACTED, Redactor};
use crate::store::{self, Store, WorkerState};

/// One worker for display. The definition is sanitized: API keys blanked, environment values
/// hidden, token references kept by name.
#[derive(Debug, Serialize)]
pub struct WorkerView {
    pub name: String,
    /// `managed`, `adapter` or `live`; `unknown` when the stored definition is unreadable.
    pub kind: &'static str,
    pub state: WorkerState,
    /// The endpoint to show, with credentials hidden; `null` until one is known.
    pub endpoint: Option<String>,
    /// Why it is in `error`, redacted.
    pub error: Option<String>,
    pub definition: serde_json::Value,
}

/// Every worker, by name, ready to show.
pub async fn views(
    store: &dyn Store,
    redactor: &Redactor,
) -> Result<Vec<WorkerView>, store::Error> {
    let rows = store.list_workers().await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let parsed = serde_json::from_value::<WorkerDef>(row.definition.clone());
            let (kind, definition, endpoint) = match parsed {
                Ok(def) => {
                    // Environment values are the operator's and may hold anything: hidden whole.
                    let sanitized = def.sanitized(&|_| REDACTED.to_owned());
                    let endpoint = row.endpoint.clone().or_else(|| def.endpoint.clone());
                    let mut definition =
                        serde_json::to_value(&sanitized).unwrap_or(serde_json::Value::Null);
                    redactor.redact_value(&mut definition);
                    (def.kind().label(), definition, endpoint)
                }
                Err(_) => ("unknown", serde_json::Value::Null, row.endpoint.clone()),
            };
            WorkerView {
                name: row.name,
                kind,
                state: row.state,
                endpoint: endpoint.map(|endpoint| redactor.redact(&endpoint).into_owned()),
                error: row.error.map(|error| redactor.redact(&error).into_owned()),
                definition,
            }
        })
        .collect())
}
