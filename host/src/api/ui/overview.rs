//! `/ui`: the overview: events per minute, tasks by state, what failed and needs attention,
//! workers and their last errors, and the newest events.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::events::event_rows;
use super::html::{escape, page};
use super::{SignedIn, text};
use crate::api::{ApiError, ApiState};
use crate::redact::Redactor;
use crate::store::{EventFilter, Store, TaskFilter, TaskState, WriteBackState, timestamp};

/// The newest events and completed tasks read to count events per minute and to find failed
/// write-backs: a bound on what a page view costs.
const COUNTED: u32 = 1000;

/// Failures listed under "Needs attention", of each kind.
const SHOWN: u32 = 10;

pub(super) async fn overview(
    State(state): State<ApiState>,
    _: SignedIn,
) -> Result<Response, ApiError> {
    let store = &state.processor.store;
    let counts = store.count_tasks().await?;
    let mut cards = String::new();
    for task_state in TaskState::ALL {
        let count = counts
            .iter()
            .find(|(counted, _)| *counted == task_state)
            .map_or(0, |(_, count)| *count);
        cards.push_str(&format!(
            r#"<a class="card" href="/ui/tasks?state={name}">{name}<b>{count}</b></a>"#,
            name = escape(task_state.as_str())
        ));
    }
    let workers = store.list_workers().await?;
    let redactor = &state.processor.redactor;
    let mut rows = String::new();
    for worker in &workers {
        rows.push_str(&format!(
            r#"<tr><td>{}</td><td class="{state}">{state}</td><td>{}</td></tr>"#,
            text(redactor, &worker.name),
            text(redactor, worker.error.as_deref().unwrap_or("")),
            state = worker.state.as_str(),
        ));
    }
    let recent = event_rows(store.as_ref(), redactor, EventFilter::default()).await?;
    let per_minute = per_minute(store.as_ref()).await?;
    let attention = attention(store.as_ref(), redactor).await?;
    let body = format!(
        r#"<h2>Events per minute, the last hour</h2>{per_minute}
<h2>Tasks by state</h2><div class="cards">{cards}</div>
<h2>Needs attention</h2>{attention}
<h2>Workers</h2><table><tr><th>worker</th><th>state</th><th>last error</th></tr>{rows}</table>
<h2>Newest events</h2>{recent}"#
    );
    Ok(page("Overview", &body, true).into_response())
}

/// The events of each of the last 60 minutes, oldest first, as bars; counted among the newest
/// [`COUNTED`] events of the hour.
async fn per_minute(store: &dyn Store) -> Result<String, ApiError> {
    let now = timestamp::now();
    let events = store
        .list_summaries(EventFilter {
            since: Some(now - 3600),
            limit: COUNTED,
            ..EventFilter::default()
        })
        .await?;
    let mut minutes = [0u32; 60];
    for event in &events {
        if let Ok(ago @ 0..60) = usize::try_from((now - event.created_at) / 60) {
            minutes[59 - ago] += 1;
        }
    }
    let highest = minutes.iter().copied().max().unwrap_or(0).max(1);
    let total: u32 = minutes.iter().sum();
    let mut bars = String::from(r#"<div class="minutes">"#);
    for (index, count) in minutes.iter().enumerate() {
        let height = 2 + count * 58 / highest;
        bars.push_str(&format!(
            r#"<span title="{count} events, {ago} min ago" style="height:{height}px"></span>"#,
            ago = 59 - index,
        ));
    }
    let capped = if events.len() as u32 >= COUNTED {
        format!(" (at least; counted among the newest {COUNTED})")
    } else {
        String::new()
    };
    bars.push_str(&format!(
        "</div><p>{total} events in the last hour{capped}.</p>"
    ));
    Ok(bars)
}

/// The newest failed tasks (dead letters) and failed write-backs, with links to retry them.
async fn attention(store: &dyn Store, redactor: &Redactor) -> Result<String, ApiError> {
    let newest = |filter: TaskFilter| {
        store.list_tasks(TaskFilter {
            limit: SHOWN,
            ..filter
        })
    };
    let failed = newest(TaskFilter {
        state: Some(TaskState::Failed),
        ..TaskFilter::default()
    })
    .await?;
    let write_backs = newest(TaskFilter {
        write_back: Some(WriteBackState::Failed),
        ..TaskFilter::default()
    })
    .await?;
    let mut rows = String::new();
    let failures = failed
        .iter()
        .map(|task| (task, "task failed", &task.error))
        .chain(
            write_backs
                .iter()
                .map(|task| (task, "write-back failed", &task.write_back_error)),
        );
    for (task, what, error) in failures {
        rows.push_str(&format!(
            r#"<tr><td><a href="/ui/tasks/{id}">{created}</a></td><td>{what}</td><td>{}</td><td>{}</td></tr>"#,
            text(redactor, &task.worker_name),
            text(redactor, error),
            id = task.id,
            created = timestamp::rfc3339(task.created_at),
        ));
    }
    if rows.is_empty() {
        return Ok("<p>Nothing failed.</p>".to_owned());
    }
    Ok(format!(
        "<table><tr><th>task</th><th>what</th><th>worker</th><th>error</th></tr>{rows}</table>"
    ))
}
