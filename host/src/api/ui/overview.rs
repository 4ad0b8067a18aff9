//! `/ui`: the overview.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::events::event_rows;
use super::html::{escape, page};
use super::{sign_in_first, text};
use crate::api::{ApiError, ApiState};
use crate::store::{EventFilter, TaskFilter, TaskState};

pub(super) async fn overview(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(redirect) = sign_in_first(&state, &headers) {
        return Ok(redirect);
    }
    let store = &state.processor.store;
    let mut cards = String::new();
    for task_state in TaskState::ALL {
        let tasks = store
            .list_tasks(TaskFilter {
                state: Some(task_state),
                limit: 1000,
                ..TaskFilter::default()
            })
            .await
            .map_err(|err| ApiError::internal(&err))?;
        let count = if tasks.len() >= 1000 {
            "1000+".to_owned()
        } else {
            tasks.len().to_string()
        };
        cards.push_str(&format!(
            r#"<a class="card" href="/ui/tasks?state={name}">{name}<b>{count}</b></a>"#,
            name = escape(task_state.as_str())
        ));
    }
    let workers = store
        .list_workers()
        .await
        .map_err(|err| ApiError::internal(&err))?;
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
    let body = format!(
        r#"<h2>Tasks by state</h2><div class="cards">{cards}</div>
<h2>Workers</h2><table><tr><th>worker</th><th>state</th><th>last error</th></tr>{rows}</table>
<h2>Newest events</h2>{recent}"#
    );
    Ok(page("Overview", &body, true).into_response())
}
