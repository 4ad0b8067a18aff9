//! `/ui/events` and `/ui/events/{id}`: events, and one event with its trace.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::html::{filters, page};
use super::tasks::task_rows;
use super::{LISTED, SignedIn, gone, id, see_other, text};
use crate::api::events::EventQuery;
use crate::api::{ApiError, ApiState};
use crate::pipeline::operator::{self, OperatorError};
use crate::redact::Redactor;
use crate::store::timestamp::{rfc3339, rfc3339_ms};
use crate::store::{AuditRecord, EventFilter, EventId, EventState, LogFilter, Store, TaskFilter};

/// At most this much of a body is shown on an event's page.
const SHOWN_BODY: usize = 64 * 1024;

/// Adds each event `/ui/events/live` sends at the top of the list; its fields go in as text,
/// never as markup.
const LIVE: &str = r#"<script>
const live = new EventSource("/ui/events/live");
live.addEventListener("event", (message) => {
  const event = JSON.parse(message.data);
  const table = document.querySelector("table.events");
  const header = table.rows[0];
  const row = document.createElement("tr");
  row.className = "live";
  const link = document.createElement("a");
  link.href = "/ui/events/" + encodeURIComponent(event.id);
  link.textContent = event.received;
  const first = document.createElement("td");
  first.append(link);
  row.append(first);
  for (const name of ["source", "type", "actor", "subject", "state"]) {
    const cell = document.createElement("td");
    cell.textContent = event[name];
    row.append(cell);
  }
  header.parentNode.insertBefore(row, header.nextSibling);
});
</script>"#;

pub(super) async fn list(
    State(state): State<ApiState>,
    _: SignedIn,
    Query(query): Query<EventQuery>,
) -> Result<Response, ApiError> {
    let redactor = &state.processor.redactor;
    let shown =
        |value: &Option<String>| redactor.redact(value.as_deref().unwrap_or("")).into_owned();
    let fields = [
        ("search", "q", shown(&query.q)),
        ("source", "source", shown(&query.source)),
        ("type", "type", shown(&query.event_type)),
        ("actor", "actor", shown(&query.actor)),
        ("subject", "subject", shown(&query.subject)),
        ("since (UTC)", "since", shown(&query.since)),
        ("until (UTC)", "until", shown(&query.until)),
    ];
    let filter = EventQuery {
        limit: Some(LISTED),
        ..query
    }
    .filter()?;
    let query_is_empty = filter
        == EventFilter {
            limit: LISTED,
            ..EventFilter::default()
        };
    let filters = filters(
        &fields
            .each_ref()
            .map(|(label, name, value)| (*label, *name, value.as_str())),
        &EventState::ALL.map(EventState::as_str),
        filter.state.map(EventState::as_str),
    );
    let rows = event_rows(state.processor.store.as_ref(), redactor, filter).await?;
    // Unfiltered, the list grows as events arrive.
    let live = if query_is_empty { LIVE } else { "" };
    Ok(page("Events", &format!("{filters}{rows}{live}"), true).into_response())
}

/// The table of the events `filter` selects, newest first.
pub(super) async fn event_rows(
    store: &dyn Store,
    redactor: &Redactor,
    filter: EventFilter,
) -> Result<String, ApiError> {
    let filter = EventFilter {
        limit: filter.limit.clamp(1, LISTED),
        ..filter
    };
    let events = store.list_summaries(filter).await?;
    let mut rows = String::from(
        "<table class=\"events\"><tr><th>received</th><th>source</th><th>type</th><th>actor</th><th>subject</th><th>state</th></tr>",
    );
    for event in &events {
        rows.push_str(&format!(
            r#"<tr><td><a href="/ui/events/{id}">{time}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{state}</td></tr>"#,
            text(redactor, &event.source),
            text(redactor, &event.event_type),
            text(redactor, &event.actor),
            text(redactor, &event.subject),
            id = event.id,
            time = rfc3339(event.created_at),
            state = event.state.as_str(),
        ));
    }
    rows.push_str("</table>");
    Ok(rows)
}

pub(super) async fn show(
    State(state): State<ApiState>,
    _: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: EventId = self::id(&id)?;
    let store = &state.processor.store;
    let Some(event) = store.get(&id).await? else {
        return Ok(gone("event"));
    };
    let trace = store
        .query_logs(LogFilter {
            event: Some(id.to_string()),
            after_id: Some(0),
            limit: 1000,
            ..LogFilter::default()
        })
        .await?;
    let tasks = task_rows(
        store.as_ref(),
        TaskFilter {
            event_id: Some(id.clone()),
            limit: LISTED,
            ..TaskFilter::default()
        },
    )
    .await?;
    let redactor = &state.processor.redactor;
    let attrs = serde_json::to_string_pretty(&event.attrs).unwrap_or_default();
    let raw = String::from_utf8_lossy(&event.raw[..event.raw.len().min(SHOWN_BODY)]);
    let cut = if event.raw.len() > SHOWN_BODY {
        format!(
            "<p>The first {SHOWN_BODY} of {} bytes.</p>",
            event.raw.len()
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"<table>
<tr><th>id</th><td>{id}</td></tr><tr><th>source</th><td>{}</td></tr>
<tr><th>type</th><td>{}</td></tr><tr><th>actor</th><td>{}</td></tr>
<tr><th>subject</th><td>{}</td></tr><tr><th>delivery</th><td>{}</td></tr>
<tr><th>state</th><td>{state}</td></tr><tr><th>received</th><td>{received}</td></tr></table>
<form method="post" action="/ui/events/{id}/replay"><button class="replay">Replay</button>
<span>processes the event again, as a new event linked to this one</span></form>
<h2>Trace</h2>{timeline}
<h2>Tasks</h2>{tasks}
<h2>Attrs</h2><pre>{}</pre>
<h2>Body</h2>{cut}<pre>{}</pre>"#,
        text(redactor, &event.source),
        text(redactor, &event.event_type),
        text(redactor, &event.actor),
        text(redactor, &event.subject),
        text(redactor, &event.delivery_id),
        text(redactor, &attrs),
        text(redactor, &raw),
        state = event.state.as_str(),
        received = rfc3339(event.created_at),
        timeline = timeline(redactor, &trace),
    );
    let title = format!("{} {}", event.source, event.event_type);
    Ok(page(&redactor.redact(&title), &body, true).into_response())
}

/// The stages of a trace in order, each with the time until the next.
fn timeline(redactor: &Redactor, trace: &[AuditRecord]) -> String {
    if trace.is_empty() {
        return "<p>No stage was recorded (the audit log may have been pruned).</p>".to_owned();
    }
    let mut rows = String::from(
        r#"<table class="trace"><tr><th>at</th><th>stage</th><th>to the next</th><th>outcome</th><th>worker</th><th>attempt</th><th>error</th></tr>"#,
    );
    for (index, record) in trace.iter().enumerate() {
        let took = trace
            .get(index + 1)
            .map(|next| format!("{} ms", next.ts - record.ts))
            .unwrap_or_default();
        let outcome = record.outcome.as_str();
        rows.push_str(&format!(
            r#"<tr class="stage"><td>{at}</td><td class="action">{}</td><td>{took}</td><td class="{outcome}">{outcome}</td><td>{}</td><td>{attempt}</td><td>{}</td></tr>"#,
            text(redactor, &record.action),
            text(redactor, &record.worker),
            text(redactor, &record.error),
            at = rfc3339_ms(record.ts),
            attempt = if record.attempt > 0 { record.attempt.to_string() } else { String::new() },
        ));
    }
    rows.push_str("</table>");
    rows
}

/// `POST /ui/events/{id}/replay`: processes the event again as a new one, then shows it.
pub(super) async fn replay(
    State(state): State<ApiState>,
    _: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: EventId = self::id(&id)?;
    match operator::replay_event(&state.processor, &id).await {
        Ok(replayed) => Ok(see_other(&format!("/ui/events/{}", replayed.id))),
        Err(OperatorError::EventNotFound) => Err(ApiError::not_found("event not found")),
        Err(err) => Err(ApiError::internal(&err)),
    }
}
