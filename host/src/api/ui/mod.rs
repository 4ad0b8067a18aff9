//! `/ui`: the dashboard, served by the daemon from its own memory (no asset files, no build
//! step). Pages are rendered on the server from the store and the audit log, with every value
//! escaped and redacted on its way into the page.
//!
//! - `/ui`: the overview, tasks by state, workers and their health, and the newest events
//!   (`overview.rs`);
//! - `/ui/events`: events, filtered by source and state; `/ui/events/{id}`: one event with its
//!   trace (the audit log's stages in order, with the time from each to the next), its tasks,
//!   attrs and body, and a Replay button (`events.rs`);
//! - `/ui/events/live`: new events as server-sent events, which the events page adds as they
//!   arrive (`live.rs`);
//! - `/ui/tasks`: tasks, filtered by state and worker; `/ui/tasks/{id}`: one task with its
//!   prompt, result, policy decision and error, and a Retry button when it failed (`tasks.rs`);
//! - `/ui/workers`: workers with their state and last error, and Start and Stop buttons
//!   (`workers.rs`); `/ui/plugins`: the plugins running, with what each may reach and read
//!   (`plugins.rs`).
//!
//! The buttons are forms posted to the page's own origin: the session cookie is `SameSite=Strict`
//! and the origin checks (`api::origin`) refuse other sites' requests, so no other page can press
//! them.
//!
//! Access is [`session`]'s: `GET`/`POST /ui/login` (the form field `api_key`), and the one-time
//! links `POST /ui/links` makes for `mecha dashboard`.

mod events;
pub mod html;
mod live;
mod overview;
mod plugins;
pub mod session;
mod tasks;
mod workers;

use axum::extract::{Form, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::redact::Redactor;
use html::{escape, page};
use session::Sessions;

/// Rows on a page of a list.
const LISTED: u32 = 100;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/ui", get(overview::overview))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/events", get(events::list))
        .route("/ui/events/live", get(live::stream))
        .route("/ui/events/{id}", get(events::show))
        .route("/ui/events/{id}/replay", post(events::replay))
        .route("/ui/tasks", get(tasks::list))
        .route("/ui/tasks/{id}", get(tasks::show))
        .route("/ui/tasks/{id}/retry", post(tasks::retry))
        .route("/ui/workers", get(workers::list))
        .route("/ui/workers/{name}/{action}", post(workers::change))
        .route("/ui/plugins", get(plugins::list))
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

/// A request with an open session: taking it as an argument makes a handler a page that
/// sends everyone else to the sign-in form.
pub(super) struct SignedIn(String);

impl axum::extract::FromRequestParts<ApiState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &ApiState,
    ) -> Result<SignedIn, Response> {
        match session(&parts.headers, &state.ui) {
            Some(token) => Ok(SignedIn(token)),
            None => Err(see_other("/ui/login")),
        }
    }
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

/// The query parameter `name` parsed (a state), or none when absent or empty.
fn optional<T: std::str::FromStr>(name: &str, text: Option<&str>) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    text.filter(|text| !text.is_empty())
        .map(|text| {
            text.parse::<T>()
                .map_err(|err| ApiError::bad_request(format!("{name}: {err}")))
        })
        .transpose()
}

/// A page's id from its path.
fn id<T: std::str::FromStr>(text: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|err| ApiError::bad_request(err.to_string()))
}

/// The page of a record that is not stored (any more).
fn gone(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        page(
            &format!("No such {what}"),
            "<p>It may have been removed by retention.</p>",
            true,
        ),
    )
        .into_response()
}

/// `value` redacted, then escaped.
fn text(redactor: &Redactor, value: &str) -> String {
    escape(&redactor.redact(value))
}
