//! `/ui/tasks` and `/ui/tasks/{id}`: tasks, and one task with its prompt, result and policy
//! decision.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::html::{escape, filters, page};
use super::{LISTED, SignedIn, gone, id, optional, see_other, text};
use crate::api::{ApiError, ApiState};
use crate::pipeline::operator::{self, OperatorError};
use crate::store::timestamp::rfc3339;
use crate::store::{Store, TaskFilter, TaskId, TaskState, WriteBackState};

#[derive(Deserialize)]
pub(super) struct TasksQuery {
    state: Option<String>,
    worker: Option<String>,
}

pub(super) async fn list(
    State(state): State<ApiState>,
    _: SignedIn,
    Query(query): Query<TasksQuery>,
) -> Result<Response, ApiError> {
    let worker = query.worker.filter(|worker| !worker.is_empty());
    let task_state: Option<TaskState> = optional("state", query.state.as_deref())?;
    let redactor = &state.processor.redactor;
    let filters = filters(
        &[(
            "worker",
            "worker",
            &redactor.redact(worker.as_deref().unwrap_or("")),
        )],
        &TaskState::ALL.map(TaskState::as_str),
        task_state.map(TaskState::as_str),
    );
    let rows = task_rows(
        state.processor.store.as_ref(),
        TaskFilter {
            state: task_state,
            worker,
            limit: LISTED,
            ..TaskFilter::default()
        },
    )
    .await?;
    Ok(page("Tasks", &format!("{filters}{rows}"), true).into_response())
}

/// The table of the tasks `filter` selects, newest first.
pub(super) async fn task_rows(store: &dyn Store, filter: TaskFilter) -> Result<String, ApiError> {
    let tasks = store.list_tasks(filter).await?;
    let mut rows = String::from(
        "<table><tr><th>created</th><th>worker</th><th>state</th><th>attempts</th><th>write-back</th></tr>",
    );
    for task in &tasks {
        rows.push_str(&format!(
            r#"<tr><td><a href="/ui/tasks/{id}">{created}</a></td><td>{worker}</td><td class="{state}">{state}</td><td>{attempts}</td><td>{write_back}</td></tr>"#,
            id = task.id,
            created = rfc3339(task.created_at),
            worker = escape(&task.worker_name),
            state = task.state.as_str(),
            attempts = task.attempts,
            write_back = task.write_back.as_str(),
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
    let id: TaskId = self::id(&id)?;
    let processor = &state.processor;
    let Some(task) = processor.store.get_task(&id).await? else {
        return Ok(gone("task"));
    };
    let redactor = &processor.redactor;
    let task = redactor.task(task);
    let event = match &task.event_id {
        Some(event) => format!(r#"<a href="/ui/events/{event}">{event}</a>"#),
        None => "none (sent through the API)".to_owned(),
    };
    let retry = if task.state == TaskState::Failed || task.write_back == WriteBackState::Failed {
        format!(
            r#"<form method="post" action="/ui/tasks/{id}/retry"><button class="retry">Retry</button>
<span>sends it again with a fresh retry budget (or tries its write-back again)</span></form>"#
        )
    } else {
        String::new()
    };
    let decision = if task.decision.is_empty() {
        "not decided".to_owned()
    } else {
        task.decision.clone()
    };
    let body = format!(
        r#"<table>
<tr><th>id</th><td>{id}</td></tr><tr><th>worker</th><td>{}</td></tr>
<tr><th>event</th><td>{event}</td></tr><tr><th>state</th><td class="{state}">{state}</td></tr>
<tr><th>attempts</th><td>{attempts}</td></tr><tr><th>created</th><td>{created}</td></tr>
<tr><th>write-back</th><td>{write_back}</td></tr><tr><th>error</th><td>{}</td></tr>
<tr><th>write-back error</th><td>{}</td></tr></table>
{retry}
<h2>Prompt</h2><pre>{}</pre>
<h2>Result</h2><pre>{}</pre>
<h2>Policy decision</h2><pre>{}</pre>"#,
        text(redactor, &task.worker_name),
        text(redactor, &task.error),
        text(redactor, &task.write_back_error),
        text(redactor, &task.prompt),
        text(redactor, &task.result),
        text(redactor, &decision),
        state = task.state.as_str(),
        attempts = task.attempts,
        created = rfc3339(task.created_at),
        write_back = task.write_back.as_str(),
    );
    Ok(page(&format!("Task for {}", task.worker_name), &body, true).into_response())
}

/// `POST /ui/tasks/{id}/retry`: sends a failed task again (or retries its failed write-back),
/// then shows it.
pub(super) async fn retry(
    State(state): State<ApiState>,
    _: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: TaskId = self::id(&id)?;
    match operator::retry_task(&state.processor, &id).await {
        Ok(_) => Ok(see_other(&format!("/ui/tasks/{id}"))),
        Err(OperatorError::TaskNotFound) => Err(ApiError::not_found("task not found")),
        Err(err @ OperatorError::NotFailed { .. }) => {
            Err(ApiError::new(StatusCode::CONFLICT, err.to_string()))
        }
        Err(err) => Err(ApiError::internal(&err)),
    }
}
