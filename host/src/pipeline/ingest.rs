//! Ingest: one webhook request through its source plugin into the store.
//!
//! Nothing is acknowledged before it is on disk: [`ingest`] returns only after the store's
//! group commit has covered every event the request produced. The event's audit trail starts
//! when it is processed, off the request's path, so an acknowledgement waits for one commit.
//!
//! A request whose signature its source verified is stored with the digest of what was signed
//! ([`EventStore::insert_signed`]): the same signed body sent again, under any delivery id or
//! none, is a replay and is answered like a redelivery, as a duplicate.

use std::time::Instant;

use crate::metrics::{Counter, Metrics, Stage};
use crate::plugin::CallError;
use crate::plugin::bindings::source::{Outcome, types};
use crate::store::{
    self, AuditEntry, AuditLog, AuditOutcome, EventRecord, EventStore, InsertOutcome, NewEvent,
    SignedDigest, SignedInsert,
};
use crate::trace::Tracer;

use super::plugin_event::json_attrs;
use super::sources::SourceInstance;

/// What became of a request.
pub enum Ingested {
    /// Events stored now, and ids of those that were already stored (duplicates), with the
    /// answer the source chose for them, if any.
    Stored {
        stored: Vec<EventRecord>,
        duplicates: Vec<store::EventId>,
        acknowledgement: Option<types::Reply>,
    },
    /// The plugin answered a handshake; nothing was stored.
    Reply(types::Reply),
}

/// Why a request was not ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The plugin refused the request as unauthenticated (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The plugin found the request malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The plugin failed on a well-formed request (500).
    #[error("source {source_name} failed: {message}")]
    Plugin {
        source_name: String,
        message: String,
    },
    /// The plugin trapped, ran out of time or memory (500); the daemon is unaffected.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A source that is exempt from the API key returned events without verifying the request.
    #[error("source {0} accepted a request without verifying it; the request was refused")]
    Unverified(String),
    #[error("could not store the event: {0}")]
    Store(#[from] store::Error),
}

/// Runs the source plugin on `request` and stores what it produced.
pub async fn ingest<S: EventStore + AuditLog + ?Sized>(
    source: &SourceInstance,
    store: &S,
    metrics: &Metrics,
    tracer: &Tracer,
    request: types::Request,
) -> Result<Ingested, IngestError> {
    let started = Instant::now();
    metrics.increment(Counter::WebhooksReceived);
    // The plugin call consumes the request, and its body is copied into the wasm instance:
    // this is that call's own copy. `raw` itself goes to the stored events.
    let raw = request.body.clone();
    let answer = source.plugin.handle_webhook(&source.call, request).await?;
    // A source exempt from the API key answers nothing, not even a handshake, unless it
    // verified the request.
    if source.verifies && !answer.verified && answer.outcome.is_ok() {
        return Err(IngestError::Unverified(source.name.clone()));
    }
    let events = match answer.outcome {
        Ok(Outcome::Reply(reply)) => return Ok(Ingested::Reply(reply)),
        Ok(Outcome::Events(events)) => events,
        Err(types::Error::Unauthorized(message)) => return Err(IngestError::Unauthorized(message)),
        Err(types::Error::BadRequest(message)) => return Err(IngestError::BadRequest(message)),
        Err(types::Error::Internal(message)) => {
            return Err(IngestError::Plugin {
                source_name: source.name.clone(),
                message,
            });
        }
    };
    let (stored, duplicates) = match answer.signed_digest {
        Some(digest) => {
            let digest = SignedDigest::from(digest);
            store_signed(&source.name, digest, events, raw, store, metrics, tracer).await?
        }
        None => store_unsigned(&source.name, events, raw, store, metrics, tracer).await?,
    };
    metrics.observe(Stage::Ingest, started.elapsed());
    Ok(Ingested::Stored {
        stored,
        duplicates,
        acknowledgement: answer.acknowledgement,
    })
}

/// Stores the events a plugin of the source instance `source` produced, keeping `raw` with
/// each; returns those stored now and the ids of those already stored (duplicates).
pub async fn store_events<S: EventStore + AuditLog + ?Sized>(
    source: &str,
    events: Vec<types::Event>,
    raw: &[u8],
    store: &S,
    metrics: &Metrics,
    tracer: &Tracer,
) -> Result<(Vec<EventRecord>, Vec<store::EventId>), store::Error> {
    store_unsigned(source, events, raw.to_vec(), store, metrics, tracer).await
}

/// [`store_events`], taking the body it keeps with the events.
async fn store_unsigned<S: EventStore + AuditLog + ?Sized>(
    source: &str,
    events: Vec<types::Event>,
    raw: Vec<u8>,
    store: &S,
    metrics: &Metrics,
    tracer: &Tracer,
) -> Result<(Vec<EventRecord>, Vec<store::EventId>), store::Error> {
    let mut outcomes = Vec::with_capacity(events.len());
    let bodies = one_body_each(raw, events.len());
    for (event, raw) in events.into_iter().zip(bodies) {
        let delivery = event.delivery_id.clone().unwrap_or_default();
        let outcome = store.insert(new_event(source, event, raw)).await?;
        outcomes.push((delivery, outcome));
    }
    Ok(settle(outcomes, store, metrics, tracer).await)
}

/// Stores the events of a request whose signed message has digest `digest`, or, when the source
/// instance received that signed message before, nothing: the request is a replay and answered
/// as a duplicate of the earlier request's first event.
async fn store_signed<S: EventStore + AuditLog + ?Sized>(
    source: &str,
    digest: SignedDigest,
    events: Vec<types::Event>,
    raw: Vec<u8>,
    store: &S,
    metrics: &Metrics,
    tracer: &Tracer,
) -> Result<(Vec<EventRecord>, Vec<store::EventId>), store::Error> {
    let deliveries: Vec<String> = events
        .iter()
        .map(|event| event.delivery_id.clone().unwrap_or_default())
        .collect();
    let bodies = one_body_each(raw, events.len());
    let new_events = events
        .into_iter()
        .zip(bodies)
        .map(|(event, raw)| new_event(source, event, raw))
        .collect();
    match store.insert_signed(source, digest, new_events).await? {
        SignedInsert::Stored(outcomes) => Ok(settle(
            deliveries.into_iter().zip(outcomes).collect(),
            store,
            metrics,
            tracer,
        )
        .await),
        SignedInsert::Replayed { existing } => {
            metrics.increment(Counter::EventsDedupSkipped);
            tracing::info!(
                %source,
                duplicate_of = %existing,
                "a signed request was received again; answered as a duplicate, nothing stored"
            );
            let trace = existing.to_string();
            let entry = AuditEntry::new(&trace, "event.duplicate")
                .outcome(AuditOutcome::Skip)
                .event(&trace)
                .detail(serde_json::json!({
                    "delivery_id": deliveries.first().cloned().unwrap_or_default(),
                    "reason": "the same signed body was received before",
                }));
            if let Err(err) = tracer.audit_committed(store, entry).await {
                tracing::warn!(error = %err, "could not write an audit record");
            }
            Ok((Vec::new(), vec![existing]))
        }
    }
}

/// Splits insert outcomes (with the delivery id each event came with) into the events stored
/// now and the ids of those they duplicate, auditing each duplicate (a late stage of the
/// trace of the event it repeats).
async fn settle<S: AuditLog + ?Sized>(
    outcomes: Vec<(String, InsertOutcome)>,
    store: &S,
    metrics: &Metrics,
    tracer: &Tracer,
) -> (Vec<EventRecord>, Vec<store::EventId>) {
    let mut stored = Vec::with_capacity(outcomes.len());
    let mut duplicates = Vec::new();
    for (delivery, outcome) in outcomes {
        match outcome {
            InsertOutcome::Inserted(record) => stored.push(record),
            InsertOutcome::Duplicate { existing } => {
                metrics.increment(Counter::EventsDedupSkipped);
                let trace = existing.to_string();
                let entry = AuditEntry::new(&trace, "event.duplicate")
                    .outcome(AuditOutcome::Skip)
                    .event(&trace)
                    .detail(serde_json::json!({ "delivery_id": delivery }));
                if let Err(err) = tracer.audit_committed(store, entry).await {
                    tracing::warn!(error = %err, "could not write an audit record");
                }
                duplicates.push(existing);
            }
        }
    }
    (stored, duplicates)
}

/// `raw` for each of `count` events: copies for all but the last, which takes `raw` itself, so
/// that a request producing one event (nearly all of them) copies its body for none.
fn one_body_each(raw: Vec<u8>, count: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut raw = Some(raw);
    (1..=count).map(move |n| {
        if n == count {
            raw.take().unwrap_or_default()
        } else {
            raw.clone().unwrap_or_default()
        }
    })
}

fn new_event(source: &str, event: types::Event, raw: Vec<u8>) -> NewEvent {
    NewEvent {
        source: source.to_owned(),
        event_type: event.event_type,
        delivery_id: event.delivery_id,
        dedup_key: event.dedup_key,
        actor: event.actor,
        subject: event.subject,
        attrs: json_attrs(event.attrs),
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::one_body_each;

    #[test]
    fn each_event_gets_the_body_and_the_last_takes_it_without_a_copy() {
        let raw = b"body".to_vec();
        let original = raw.as_ptr();
        let bodies: Vec<Vec<u8>> = one_body_each(raw, 3).collect();
        assert_eq!(
            bodies,
            [b"body".to_vec(), b"body".to_vec(), b"body".to_vec()]
        );
        assert_eq!(bodies[2].as_ptr(), original, "the last is the body itself");
        assert_eq!(one_body_each(b"x".to_vec(), 0).count(), 0);
    }
}
