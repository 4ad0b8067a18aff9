//! `GET /ui/events/live`: new events as server-sent events, so that the events page shows a
//! webhook as it arrives, without a reload.
//!
//! Each stream reads the newest events every [`POLL`] and sends those it has not sent, until
//! the session that opened it ends: signing out closes the page's stream too. Reading
//! the store, not a channel inside this daemon, shows what every daemon on a shared database
//! stored; a few operators' pages cost a few indexed reads a second.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};

use super::SignedIn;
use super::session::Sessions;
use crate::api::{ApiError, ApiState};
use crate::redact::Redactor;
use crate::store::timestamp::rfc3339;
use crate::store::{EventFilter, EventId, EventSummary, Store};

/// 500 ms: a webhook shows within half a second.
const POLL: Duration = Duration::from_millis(500);

/// The newest events read at each poll: more than arrive in one under any load an operator
/// watches a page through (the page is a view, not a log; the list has them all).
const NEWEST: u32 = 50;

/// Ids already sent, remembered to tell new events from old.
const REMEMBERED: usize = 500;

pub(super) async fn stream(
    State(state): State<ApiState>,
    SignedIn(session): SignedIn,
) -> Result<Response, ApiError> {
    let store = state.processor.store.clone();
    let redactor = state.processor.redactor.clone();
    // What the page shows already is not new.
    let sent: VecDeque<EventId> = newest(&store)
        .await?
        .into_iter()
        .map(|event| event.id)
        .collect();
    let watcher = Watcher {
        store,
        redactor,
        sessions: state.ui.clone(),
        session,
    };
    Ok(Sse::new(events(watcher, sent))
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn newest(store: &Arc<dyn Store>) -> Result<Vec<EventSummary>, crate::store::Error> {
    store
        .list_summaries(EventFilter {
            limit: NEWEST,
            ..EventFilter::default()
        })
        .await
}

/// What one stream reads with, and the session it serves.
struct Watcher {
    store: Arc<dyn Store>,
    redactor: Redactor,
    sessions: Arc<Sessions>,
    session: String,
}

/// Every event stored from now on, oldest first, as one `event` message each, until the
/// session that opened the stream ends (signed out, or expired).
fn events(
    watcher: Watcher,
    sent: VecDeque<EventId>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let pending: VecDeque<Event> = VecDeque::new();
    stream::unfold(
        (watcher, sent, pending),
        |(watcher, mut sent, mut pending)| async move {
            loop {
                if !watcher.sessions.is_open(&watcher.session) {
                    return None;
                }
                if let Some(next) = pending.pop_front() {
                    return Some((Ok(next), (watcher, sent, pending)));
                }
                tokio::time::sleep(POLL).await;
                // A failed read is tried again at the next poll; the page keeps what it has.
                let Ok(newest) = newest(&watcher.store).await else {
                    continue;
                };
                for event in newest.into_iter().rev() {
                    if sent.contains(&event.id) {
                        continue;
                    }
                    sent.push_back(event.id.clone());
                    if sent.len() > REMEMBERED {
                        sent.pop_front();
                    }
                    pending.push_back(message(&watcher.redactor, &event));
                }
            }
        },
    )
}

/// `event` as the page adds it: its fields redacted (the page escapes them as text).
fn message(redactor: &Redactor, event: &EventSummary) -> Event {
    let field = |value: &str| redactor.redact(value).into_owned();
    let data = serde_json::json!({
        "id": event.id.to_string(),
        "received": rfc3339(event.created_at),
        "source": field(&event.source),
        "type": field(&event.event_type),
        "actor": field(&event.actor),
        "subject": field(&event.subject),
        "state": event.state.as_str(),
    });
    Event::default().event("event").data(data.to_string())
}
