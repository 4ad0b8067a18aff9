//! `/ui/workers`: the workers with their state and last error, with Start and Stop buttons,
//! which do what `mecha worker start` and `stop` do.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::html::{escape, page};
use super::{SignedIn, see_other, text};
use crate::api::{ApiError, ApiState};
use crate::config::worker::WorkerKind;
use crate::worker::registry::Worker;

pub(super) async fn list(State(state): State<ApiState>, _: SignedIn) -> Result<Response, ApiError> {
    let workers = state.processor.workers.all().await?;
    let redactor = &state.processor.redactor;
    let mut rows = String::from(
        "<table class=\"workers\"><tr><th>worker</th><th>kind</th><th>state</th><th>endpoint</th><th>last error</th><th>restarts</th><th></th></tr>",
    );
    for worker in &workers {
        let name = escape(worker.name());
        let kind = match worker.def.kind() {
            WorkerKind::Managed => "docker",
            WorkerKind::Adapter => "adapter",
            WorkerKind::Live => "live",
        };
        let action = match worker.state {
            crate::store::WorkerState::Offline => "start",
            _ => "stop",
        };
        rows.push_str(&format!(
            r#"<tr><td>{name}</td><td>{kind}</td><td class="{state}">{state}</td><td>{}</td><td>{}</td><td>{restarts}</td>
<td><form method="post" action="/ui/workers/{name}/{action}"><button class="{action}">{action}</button></form></td></tr>"#,
            text(redactor, worker.endpoint.as_deref().unwrap_or("")),
            text(redactor, worker.error.as_deref().unwrap_or("")),
            state = worker.state.as_str(),
            restarts = worker.restarts,
        ));
    }
    rows.push_str("</table>");
    Ok(page("Workers", &rows, true).into_response())
}

/// `POST /ui/workers/{name}/start` and `.../stop`.
pub(super) async fn change(
    State(state): State<ApiState>,
    _: SignedIn,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Some(worker) = state.processor.workers.get(&name).await? else {
        return Err(ApiError::not_found(format!("no worker named {name}")));
    };
    let outcome = match action.as_str() {
        "start" => start(&state, &worker).await,
        "stop" => state.runtimes.of(&worker.def).stop(&worker).await,
        _ => return Err(ApiError::not_found("workers are started or stopped")),
    };
    match outcome {
        Ok(_) => Ok(see_other("/ui/workers")),
        Err(reason) => {
            let reason = text(&state.processor.redactor, &reason);
            Ok((
                StatusCode::CONFLICT,
                page(
                    &format!("Could not {action} {name}"),
                    &format!(
                        r#"<p class="error">{reason}</p><p><a href="/ui/workers">Workers</a></p>"#
                    ),
                    true,
                ),
            )
                .into_response())
        }
    }
}

/// Starts `worker` as `mecha worker start` does; image pulls are not reported to the page.
async fn start(state: &ApiState, worker: &Worker) -> Result<String, String> {
    let mut progress = |_: u64, _: u64| {};
    state
        .runtimes
        .of(&worker.def)
        .start(worker, &mut progress)
        .await
}
