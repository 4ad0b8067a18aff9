//! `POST /task`, `GET /task/{id}`, `GET /tasks`, `POST /task/{id}/retry`. Every task answered
//! goes through the redactor's [`crate::redact::Redactor::task`] on its way out.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use std::sync::Arc;

use super::json::JsonBody;
use super::{ApiError, ApiState};
use crate::pipeline::operator::{self, OperatorError, RoundRobin};
use crate::pipeline::process::Processor;
use crate::redact::Redactor;
use crate::store::{EventId, Store, TaskFilter, TaskId, TaskRecord, TaskState, WriteBackState};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/task", post(submit))
        .route("/task/{id}", get(show))
        .route("/task/{id}/retry", post(retry))
        .route("/tasks", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submit {
    prompt: String,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    context: Option<serde_json::Map<String, serde_json::Value>>,
}

fn operator_error(err: OperatorError) -> ApiError {
    match err {
        OperatorError::EmptyPrompt => ApiError::bad_request(err.to_string()),
        OperatorError::UnknownWorker(_)
        | OperatorError::TaskNotFound
        | OperatorError::EventNotFound => ApiError::not_found(err.to_string()),
        OperatorError::NoOnlineWorker => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
        }
        OperatorError::NotFailed { .. } => ApiError::new(StatusCode::CONFLICT, err.to_string()),
        OperatorError::NotCreated => ApiError::internal(&err),
        OperatorError::Store(err) => ApiError::internal(&err),
    }
}

/// A task for the named worker, or for the next online worker in turn.
async fn submit(
    State(processor): State<Arc<Processor>>,
    State(round_robin): State<Arc<RoundRobin>>,
    JsonBody(request): JsonBody<Submit>,
) -> Result<(StatusCode, Json<TaskRecord>), ApiError> {
    let context = serde_json::Value::Object(request.context.unwrap_or_default());
    let task = operator::submit_task(
        &processor,
        &round_robin,
        request.prompt,
        request.worker,
        context,
    )
    .await
    .map_err(operator_error)?;
    Ok((StatusCode::ACCEPTED, Json(processor.redactor.task(task))))
}

fn parse_task_id(id: &str) -> Result<TaskId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found("task not found"))
}

async fn show(
    State(store): State<Arc<dyn Store>>,
    State(redactor): State<Redactor>,
    Path(id): Path<String>,
) -> Result<Json<TaskRecord>, ApiError> {
    let id = parse_task_id(&id)?;
    match store.get_task(&id).await {
        Ok(Some(task)) => Ok(Json(redactor.task(task))),
        Ok(None) => Err(ApiError::not_found("task not found")),
        Err(err) => Err(ApiError::internal(&err)),
    }
}

async fn retry(
    State(processor): State<Arc<Processor>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TaskRecord>), ApiError> {
    let id = parse_task_id(&id)?;
    let task = operator::retry_task(&processor, &id)
        .await
        .map_err(operator_error)?;
    Ok((StatusCode::ACCEPTED, Json(processor.redactor.task(task))))
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    worker: Option<String>,
    event: Option<String>,
    write_back: Option<String>,
    limit: Option<u32>,
    before: Option<String>,
}

/// A page of tasks, newest first; `next_before` fetches the next page.
#[derive(serde::Serialize)]
struct Page {
    tasks: Vec<TaskRecord>,
    next_before: Option<String>,
}

async fn list(
    State(store): State<Arc<dyn Store>>,
    State(redactor): State<Redactor>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let nonempty = |value: Option<String>| value.filter(|text| !text.is_empty());
    let filter = TaskFilter {
        state: nonempty(query.state)
            .map(|text| text.parse::<TaskState>())
            .transpose()
            .map_err(|err| ApiError::bad_request(format!("state: {err}")))?,
        worker: nonempty(query.worker),
        event_id: nonempty(query.event)
            .map(|text| text.parse::<EventId>())
            .transpose()
            .map_err(|err| ApiError::bad_request(format!("event: {err}")))?,
        write_back: nonempty(query.write_back)
            .map(|text| text.parse::<WriteBackState>())
            .transpose()
            .map_err(|err| ApiError::bad_request(format!("write_back: {err}")))?,
        limit: query.limit.unwrap_or(50),
        before: nonempty(query.before)
            .map(|text| text.parse::<TaskId>())
            .transpose()
            .map_err(|err| ApiError::bad_request(format!("before: {err}")))?,
    };
    let limit = filter.effective_limit() as usize;
    let tasks = store.list_tasks(filter).await?;
    let next_before = (tasks.len() == limit)
        .then(|| tasks.last().map(|task| task.id.to_string()))
        .flatten();
    let tasks = redactor.tasks(tasks);
    Ok(Json(Page { tasks, next_before }))
}
