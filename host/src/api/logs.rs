//! `GET /logs`: the audit trail, filtered as in `mecha logs`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::config::worker::duration::parse_age;
use crate::redact::Redactor;
use crate::store::{AuditRecord, LogFilter, Store, timestamp};

pub fn router() -> Router<ApiState> {
    Router::new().route("/logs", get(list))
}

#[derive(Deserialize)]
struct LogQuery {
    trace: Option<String>,
    event: Option<String>,
    task: Option<String>,
    worker: Option<String>,
    action: Option<String>,
    /// How far back, e.g. `90s`, `15m`, `1h`, `7d`.
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(store): State<Arc<dyn Store>>,
    State(redactor): State<Redactor>,
    Query(query): Query<LogQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let nonempty = |value: Option<String>| value.filter(|text| !text.is_empty());
    let back = |field: &str, text: Option<String>| -> Result<Option<i64>, ApiError> {
        nonempty(text)
            .map(|text| {
                parse_age(&text)
                    .map(|age| {
                        timestamp::now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX)
                    })
                    .map_err(|err| ApiError::bad_request(format!("{field}: {err}")))
            })
            .transpose()
    };
    let filter = LogFilter {
        trace: nonempty(query.trace),
        event: nonempty(query.event),
        task: nonempty(query.task),
        worker: nonempty(query.worker),
        action_prefix: nonempty(query.action),
        since: back("since", query.since)?,
        until: back("until", query.until)?,
        limit: query.limit.unwrap_or(100),
        after_id: None,
    };
    let records = store.query_logs(filter).await?;
    // With the current secrets: one added since a record was written is hidden in it too.
    Ok(Json(
        records
            .into_iter()
            .map(|record| redactor.audit_record(record))
            .collect(),
    ))
}
