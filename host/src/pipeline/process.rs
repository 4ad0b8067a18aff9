//! From a stored event to its tasks: match every worker, render each prompt, create the tasks
//! and move the event in one transaction, then hand the tasks to the dispatcher.
//!
//! Creating the tasks and moving the event happen together, so a crash leaves the event either
//! `received` (and matched again on restart) or `dispatched` with all its tasks, and a task per
//! (event, worker) exists at most once however often an event is processed.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::dispatch::Dispatcher;
use super::matching::{LoopGuard, SkipReason, match_event};
use super::plugin_event::{error_text, json_attrs, stored_event};
use super::sources::SourceTable;
use crate::metrics::{Counter, Metrics, Stage};
use crate::redact::Redactor;
use crate::store::{self, AuditEntry, AuditOutcome, EventRecord, EventState, NewTask, Store};
use crate::template::render_prompt;
use crate::trace::{SpanId, Tracer};
use crate::worker::registry::Workers;

/// Attrs passed to workers in the task's `context`, besides source, actor and subject: the
/// ones an agent needs to find the change it is asked about.
const CONTEXT_ATTRS: &[&str] = &[
    "repo_owner",
    "repo_name",
    "number",
    "ref",
    "diff",
    "file_list",
    "head_sha",
    "sender",
];

/// What processing did with an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Processed {
    /// Tasks created for this many workers.
    Dispatched(usize),
    /// No worker wanted it.
    Skipped,
    /// Workers wanted it, but none of their prompts could be rendered.
    Failed,
    /// It was processed before (e.g. by another recovery pass).
    AlreadyDone,
}

/// The steps between ingest and dispatch, with what they need.
pub struct Processor {
    pub store: Arc<dyn Store>,
    pub workers: Arc<Workers>,
    /// The source instances, whose plugins hydrate their events.
    pub sources: Arc<SourceTable>,
    pub dispatcher: Dispatcher,
    pub guard: LoopGuard,
    pub metrics: Arc<Metrics>,
    pub redactor: Redactor,
    /// Where each stage's span goes besides the audit log.
    pub tracer: Tracer,
}

impl Processor {
    /// Matches `event` (in state `received`) and creates one task per matching worker.
    pub async fn process(&self, event: &EventRecord) -> Result<Processed, store::Error> {
        let started = Instant::now();
        let trace = event.id.to_string();
        self.audit(AuditEntry::new(&trace, "event.received").event(&trace).detail(
            serde_json::json!({ "source": event.source, "type": event.event_type, "delivery_id": event.delivery_id }),
        ));
        let workers = self.workers.all().await?;
        let report = match_event(
            workers.iter().map(|worker| &*worker.def),
            event,
            &self.guard,
        );
        for skip in &report.skipped {
            let reason = match skip.reason {
                SkipReason::AutoFalse => "rule has auto: false",
                SkipReason::LoopGuard => "actor is mecha or a bot (loop guard)",
            };
            self.audit(
                AuditEntry::new(&trace, "event.skipped")
                    .outcome(AuditOutcome::Skip)
                    .event(&trace)
                    .worker(&skip.worker.name)
                    .detail(serde_json::json!({ "reason": reason })),
            );
        }

        let hydrated = if report.matches.is_empty() {
            None
        } else {
            self.hydrate(event, &trace).await
        };
        let event = hydrated.as_ref().unwrap_or(event);

        let mut tasks = Vec::with_capacity(report.matches.len());
        let mut unrendered = 0;
        for found in &report.matches {
            let worker = &found.worker.name;
            match render_prompt(&found.rule.prompt, event) {
                Ok(prompt) => {
                    self.audit(
                        AuditEntry::new(&trace, "event.matched")
                            .event(&trace)
                            .worker(worker)
                            .detail(serde_json::json!({ "rule": found.rule_index })),
                    );
                    tasks.push(NewTask {
                        worker_name: worker.clone(),
                        prompt,
                        context: context(event),
                        event_id: Some(event.id.clone()),
                        trace_id: trace.clone(),
                        max_retries: found.worker.max_retries,
                    });
                }
                Err(err) => {
                    unrendered += 1;
                    self.audit(
                        AuditEntry::new(&trace, "event.matched")
                            .outcome(AuditOutcome::Fail)
                            .event(&trace)
                            .worker(worker)
                            .error(self.redactor.redact(&format!("prompt: {err}"))),
                    );
                }
            }
        }

        if tasks.is_empty() {
            // A prompt that cannot be rendered fails the event; no match at all skips it.
            let outcome = if unrendered > 0 {
                EventState::Failed
            } else {
                EventState::Skipped
            };
            let outcome = self
                .store
                .transition(&event.id, EventState::Received, outcome)
                .await;
            if let Err(store::Error::InvalidTransition { .. }) = outcome {
                return Ok(Processed::AlreadyDone);
            }
            outcome?;
            self.metrics.observe(Stage::Match, started.elapsed());
            return Ok(if unrendered > 0 {
                Processed::Failed
            } else {
                Processed::Skipped
            });
        }

        let created = match self
            .store
            .create_tasks_for_event(
                &event.id,
                EventState::Received,
                EventState::Dispatched,
                tasks,
            )
            .await
        {
            Ok(created) => created,
            Err(store::Error::InvalidTransition { .. }) => return Ok(Processed::AlreadyDone),
            Err(err) => return Err(err),
        };
        self.metrics.observe(Stage::Match, started.elapsed());
        let count = created.created.len();
        self.metrics.add(Counter::TasksCreated, count as u64);
        self.metrics
            .add(Counter::TasksDedupSkipped, created.duplicates.len() as u64);
        for task in &created.created {
            self.audit(
                AuditEntry::new(&trace, "task.created")
                    .event(&trace)
                    .task(task.id.as_str())
                    .worker(&task.worker_name),
            );
        }
        for task in created.created {
            self.dispatcher.enqueue_for(task.id, &task.worker_name);
        }
        Ok(Processed::Dispatched(count))
    }

    /// The event with what its source adds from the provider's API (a pull request's diff),
    /// stored before any prompt is rendered from it; `None` when there is nothing to add. Only
    /// attrs are taken from the plugin: what the provider signed (type, actor, subject) stays
    /// as received. A failed hydration is audited and the event goes on as it is.
    async fn hydrate(&self, event: &EventRecord, trace: &str) -> Option<EventRecord> {
        let source = self.sources.ready(&event.source)?;
        let call = source.hydrate.as_ref()?;
        let entry = AuditEntry::new(trace, "event.hydrated").event(trace);
        // The hydration's span: the source's requests to the provider's API are its children.
        let span = SpanId::random();
        let nothing_added = |entry: AuditEntry| {
            self.audit_of(entry.outcome(AuditOutcome::Skip), span);
            None
        };
        let failure = match source
            .plugin
            .hydrate(
                call,
                &stored_event(event).event,
                self.tracer.traceparent(trace, span),
            )
            .await
        {
            Ok(Ok(hydrated)) => {
                let mut attrs = event.attrs.clone();
                let added: Vec<String> = hydrated
                    .attrs
                    .iter()
                    .map(|attr| attr.name.clone())
                    .filter(|name| !event.attrs.contains_key(name))
                    .collect();
                attrs.extend(json_attrs(hydrated.attrs));
                if attrs == event.attrs {
                    return nothing_added(entry);
                }
                match self.store.set_attrs(&event.id, attrs.clone()).await {
                    Ok(true) => {
                        self.audit_of(entry.detail(serde_json::json!({ "added": added })), span);
                        return Some(EventRecord {
                            attrs,
                            ..event.clone()
                        });
                    }
                    // Processed meanwhile (another recovery pass); creating tasks will say so.
                    Ok(false) => return nothing_added(entry),
                    Err(err) => err.to_string(),
                }
            }
            Ok(Err(err)) => error_text(err),
            Err(err) => err.to_string(),
        };
        let failure = self.redactor.redact(&failure).into_owned();
        tracing::warn!(event = %event.id, source = %event.source, error = %failure, "hydration failed; the event goes on without it");
        self.audit_of(entry.outcome(AuditOutcome::Fail).error(failure), span);
        None
    }

    /// Processes stored events in the background; a failure is logged and the event stays
    /// `received` for recovery to pick up.
    pub fn spawn(self: &Arc<Self>, events: Vec<EventRecord>) {
        if events.is_empty() {
            return;
        }
        let processor = self.clone();
        tokio::spawn(async move {
            for event in events {
                if let Err(err) = processor.process(&event).await {
                    tracing::error!(event = %event.id, error = %err, "could not process an event; it will be retried at the next start");
                }
            }
        });
    }

    /// Records a stage in the audit log and as a span.
    pub(crate) fn audit(&self, entry: AuditEntry) {
        self.tracer.audit(self.store.as_ref(), entry);
    }

    /// Records a stage that called out under `span`.
    fn audit_of(&self, entry: AuditEntry, span: SpanId) {
        self.tracer.audit_of(self.store.as_ref(), entry, span);
    }
}

/// The `context` a worker receives with an event's task.
pub fn context(event: &EventRecord) -> Value {
    let mut context = Map::new();
    context.insert("source".into(), Value::from(event.source.as_str()));
    context.insert("actor".into(), Value::from(event.actor.as_str()));
    context.insert("subject".into(), Value::from(event.subject.as_str()));
    context.insert("type".into(), Value::from(event.event_type.as_str()));
    for name in CONTEXT_ATTRS {
        if let Some(value) = event.attrs.get(*name) {
            context.insert((*name).to_owned(), value.clone());
        }
    }
    Value::Object(context)
}
