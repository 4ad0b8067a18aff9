//! `/ui`: the dashboard, served by the daemon from its own memory (no asset files, no build
//! step). Pages are rendered on the server from the store and the audit log, with every value
//! escaped and redacted on its way into the page.
//!
//! - `/ui`: the overview, tasks by state, workers and their health, and the newest events;
//! - `/ui/events`: events, filtered by source and state;
//! - `/ui/events/{id}`: one event with its trace, the audit log's stages in order with the time
//!   each took, its attrs and its body.
//!
//! Access is [`session`]'s: `GET`/`POST /ui/login` (the form field `api_key`), and the one-time
//! links `POST /ui/links` makes for `mecha dashboard`.

pub mod html;
pub mod session;

use axum::extract::{Form, Path, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::redact::Redactor;
use crate::store::timestamp::{rfc3339, rfc3339_ms};
use crate::store::{
    AuditRecord, EventFilter, EventId, EventState, LogFilter, Store, TaskFilter, TaskState,
};
use html::{escape, page};
use session::Sessions;

/// Events on a page of the list, and on the overview.
const LISTED: u32 = 100;

/// At most this much of a body is shown on an event's page.
const SHOWN_BODY: usize = 64 * 1024;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/ui", get(overview))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/events", get(events))
        .route("/ui/events/{id}", get(event))
        .route("/ui/links", post(link))
}

/// Whether `path` is a dashboard page, which checks its own session instead of the API key.
/// `/ui/links` is not: it asks for the key, as the API does.
pub fn is_page(path: &str) -> bool {
    (path == "/ui" || path.starts_with("/ui/")) && path != "/ui/links"
}

/// The session the request's cookie names, if it is open.
fn session(headers: &HeaderMap, sessions: &Sessions) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, token)| *name == session::COOKIE && sessions.is_open(token))
        .map(|(_, token)| token.to_owned())
}

/// A redirect to `to` (a path of this site).
fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

/// The page, or the login form for a request without a session.
macro_rules! signed_in {
    ($state:expr, $headers:expr) => {
        if session(&$headers, &$state.ui).is_none() {
            return Ok(see_other("/ui/login"));
        }
    };
}

#[derive(Deserialize)]
struct LinkQuery {
    token: Option<String>,
    /// Where to go once signed in: a dashboard page.
    next: Option<String>,
}

async fn login_form(State(state): State<ApiState>, Query(query): Query<LinkQuery>) -> Response {
    let Some(token) = query.token else {
        return form(StatusCode::OK, "");
    };
    let Some(session) = state.ui.redeem(&token) else {
        return form(
            StatusCode::UNAUTHORIZED,
            "This link was used already or has expired; run `mecha dashboard` again, or sign in \
             with the API key.",
        );
    };
    let next = query
        .next
        .filter(|next| is_page(next))
        .unwrap_or_else(|| "/ui".to_owned());
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, next), (SET_COOKIE, session::cookie(&session))],
    )
        .into_response()
}

fn form(status: StatusCode, message: &str) -> Response {
    let message = if message.is_empty() {
        String::new()
    } else {
        format!(r#"<p class="error">{}</p>"#, escape(message))
    };
    let body = format!(
        r#"{message}<form method="post" action="/ui/login">
<label>API key <input type="password" name="api_key" autocomplete="current-password" autofocus></label>
<button>Sign in</button></form>
<p>The key is <code>api_key</code> in config.yml, or the file <code>api_key</code> in the mecha
directory. <code>mecha dashboard</code> prints a link that signs you in.</p>"#
    );
    (status, page("Sign in", &body, false)).into_response()
}

#[derive(Deserialize)]
struct Login {
    api_key: String,
}

async fn login(State(state): State<ApiState>, Form(login): Form<Login>) -> Response {
    match state.ui.sign_in(&login.api_key, state.api_key.expose()) {
        Some(session) => (
            StatusCode::SEE_OTHER,
            [
                (LOCATION, "/ui".to_owned()),
                (SET_COOKIE, session::cookie(&session)),
            ],
        )
            .into_response(),
        None => form(StatusCode::UNAUTHORIZED, "That is not the API key."),
    }
}

async fn logout(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(token) = session(&headers, &state.ui) {
        state.ui.close(&token);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (LOCATION, "/ui/login".to_owned()),
            (SET_COOKIE, session::expired_cookie()),
        ],
    )
        .into_response()
}

/// `POST /ui/links` (with the API key): a one-time sign-in link, for `mecha dashboard`.
async fn link(State(state): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    let token = state.ui.link().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the system's random source failed; try again",
        )
    })?;
    Ok(Json(
        serde_json::json!({ "path": format!("/ui/login?token={token}") }),
    ))
}

async fn overview(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    signed_in!(state, headers);
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
            r#"<div class="card">{}<b>{count}</b></div>"#,
            escape(task_state.as_str())
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

#[derive(Deserialize)]
struct EventsQuery {
    source: Option<String>,
    state: Option<String>,
}

async fn events(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    signed_in!(state, headers);
    let source = query.source.filter(|source| !source.is_empty());
    let event_state = match query.state.as_deref().filter(|text| !text.is_empty()) {
        Some(text) => Some(
            text.parse::<EventState>()
                .map_err(|err| ApiError::bad_request(format!("state: {err}")))?,
        ),
        None => None,
    };
    let redactor = &state.processor.redactor;
    let mut states = String::from(r#"<option value="">any</option>"#);
    for option in EventState::ALL {
        let selected = if Some(option) == event_state {
            " selected"
        } else {
            ""
        };
        states.push_str(&format!(
            r#"<option{selected}>{}</option>"#,
            option.as_str()
        ));
    }
    let filters = format!(
        r#"<form class="filters" method="get"><label>source <input name="source" value="{}"></label>
<label>state <select name="state">{states}</select></label><button>Filter</button></form>"#,
        text(redactor, source.as_deref().unwrap_or(""))
    );
    let rows = event_rows(
        state.processor.store.as_ref(),
        redactor,
        EventFilter {
            state: event_state,
            source,
            limit: LISTED,
        },
    )
    .await?;
    Ok(page("Events", &format!("{filters}{rows}"), true).into_response())
}

/// The table of the events `filter` selects, newest first.
async fn event_rows(
    store: &dyn Store,
    redactor: &Redactor,
    filter: EventFilter,
) -> Result<String, ApiError> {
    let filter = EventFilter {
        limit: filter.limit.clamp(1, LISTED),
        ..filter
    };
    let events = store
        .list_summaries(filter)
        .await
        .map_err(|err| ApiError::internal(&err))?;
    let mut rows = String::from(
        "<table><tr><th>received</th><th>source</th><th>type</th><th>actor</th><th>subject</th><th>state</th></tr>",
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

async fn event(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    signed_in!(state, headers);
    let id: EventId = id
        .parse()
        .map_err(|err: crate::store::Error| ApiError::bad_request(err.to_string()))?;
    let store = &state.processor.store;
    let Some(event) = store
        .get(&id)
        .await
        .map_err(|err| ApiError::internal(&err))?
    else {
        return Ok((
            StatusCode::NOT_FOUND,
            page(
                "No such event",
                "<p>It may have been removed by retention.</p>",
                true,
            ),
        )
            .into_response());
    };
    let trace = store
        .query_logs(LogFilter {
            event: Some(id.to_string()),
            after_id: Some(0),
            limit: 1000,
            ..LogFilter::default()
        })
        .await
        .map_err(|err| ApiError::internal(&err))?;
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
<h2>Trace</h2>{timeline}
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
        r#"<table class="trace"><tr><th>at</th><th>stage</th><th>took</th><th>outcome</th><th>worker</th><th>attempt</th><th>error</th></tr>"#,
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

/// `value` redacted, then escaped.
fn text(redactor: &Redactor, value: &str) -> String {
    escape(&redactor.redact(value))
}
