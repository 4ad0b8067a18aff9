//! Write-back: a completed task's result, filtered by its worker's policies, written to the
//! provider its event came from by the responder plugin of that name (reference section 8).
//!
//! A completed event task's write-back is `pending` from the moment it completes (the same
//! database write), so nothing is lost to a crash: the loop here finds every pending write-back
//! that is due, including those a crash interrupted. Each try passes the task's id as the
//! responder's marker, which the responder leaves on what it posts and looks for before posting,
//! so a try repeated after a crash never posts twice. Retryable failures (rate limits, 5xx,
//! timeouts) are retried with backoff, never sooner than a rate-limited provider's
//! `Retry-After` (which the gate keeps from the call's answers); after [`MAX_ATTEMPTS`] tries,
//! or at once for a failure a retry cannot fix, the write-back is `failed` and its event
//! `write_back_failed`, until an operator retries it (`mecha tasks retry`,
//! `POST /task/{id}/retry`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use super::api_access::{ApiRequest, api_access};
use super::backoff::{Backoff, jitter_unit};
use super::finish::finish_event;
use super::plugin_event;
use super::policy_chain::{self, Decision};
use crate::config::secrets::Secrets;
use crate::config::server::{ResponderConfig, ServerConfig};
use crate::plugin::host::http::Origin;
use crate::plugin::limits::Limits;
use crate::plugin::loader::Runner;
use crate::plugin::responder::{ResponderCall, ResponderPlugin};
use crate::plugin::{LivePlugins, PluginRegistry};
use crate::redact::Redactor;
use crate::store::{
    self, AuditEntry, AuditOutcome, Lease, Store, TaskId, TaskRecord, WriteBack, timestamp,
};
use crate::trace::{SpanId, Tracer};
use crate::worker::registry::Workers;
use crate::worker::retry_after::parse_retry_after;

/// 5 tries, as the Go mecha's write-back retry allows before giving up.
pub const MAX_ATTEMPTS: u32 = 5;

/// 60 s per write-back call: several API requests, each allowed 30 s to answer.
const RESPONDER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a claimed write-back is left to its try before any daemon may try it again: the
/// responder's time limit, and a little more for recording the outcome.
const CLAIM: Duration = Duration::from_secs(RESPONDER_TIMEOUT.as_secs() + 30);

/// 64 due write-backs per scan.
const DUE_BATCH: u32 = 64;

/// Where a source's events are written back to.
enum Destination {
    Ready {
        plugin: Arc<ResponderPlugin>,
        call: ResponderCall,
    },
    /// The responder exists but cannot run; write-backs to it are skipped, saying why.
    Unconfigured(String),
}

pub struct WriteBacks {
    store: Arc<dyn Store>,
    workers: Arc<Workers>,
    /// The responders and policies the daemon runs now.
    plugins: Arc<LivePlugins>,
    config: ServerConfig,
    /// By source instance name; replaced whole when `secrets.yml` is reloaded or the plugins
    /// change, so a try in progress keeps the token and responder it started with.
    destinations: RwLock<Arc<BTreeMap<String, Arc<Destination>>>>,
    redactor: Redactor,
    backoff: Backoff,
    /// Tasks whose write-back is being tried, so the scan never runs one twice at once.
    in_flight: Mutex<HashSet<TaskId>>,
    /// This daemon's id, which holds the write-backs it tries.
    holder: String,
    tracer: Tracer,
}

/// What [`WriteBacks`] is made of.
pub struct WriteBackParts {
    pub store: Arc<dyn Store>,
    pub workers: Arc<Workers>,
    pub plugins: Arc<LivePlugins>,
    pub config: ServerConfig,
    pub redactor: Redactor,
    pub backoff: Backoff,
    /// This daemon's id ([`crate::config::home::Home::daemon_id`]).
    pub holder: String,
    /// Where each stage's span goes besides the audit log.
    pub tracer: Tracer,
}

impl WriteBacks {
    pub fn new(parts: WriteBackParts, secrets: &Secrets) -> WriteBacks {
        let destinations = RwLock::new(Arc::new(destinations(
            &parts.plugins.current(),
            &parts.config,
            secrets,
        )));
        WriteBacks {
            store: parts.store,
            workers: parts.workers,
            plugins: parts.plugins,
            config: parts.config,
            destinations,
            redactor: parts.redactor,
            backoff: parts.backoff,
            in_flight: Mutex::new(HashSet::new()),
            holder: parts.holder,
            tracer: parts.tracer,
        }
    }

    /// Uses the responder tokens of `secrets`, and the responders installed now, from the next
    /// try on (a reload of `secrets.yml`, a plugin installed or removed).
    pub fn rebuild(&self, secrets: &Secrets) {
        let rebuilt = Arc::new(destinations(&self.plugins.current(), &self.config, secrets));
        *self
            .destinations
            .write()
            .unwrap_or_else(PoisonError::into_inner) = rebuilt;
    }

    fn destinations(&self) -> Arc<BTreeMap<String, Arc<Destination>>> {
        self.destinations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tries every write-back that is due; returns how many were tried.
    ///
    /// The due write-backs are claimed, in one write, before they are tried: another daemon
    /// scanning the same database takes others, or none, and a try cut short by a crash is due
    /// again when its claim ends (it lasts as long as a try may take).
    pub async fn run_due(self: &Arc<Self>) -> Result<usize, store::Error> {
        let now = timestamp::now_ms();
        let lease = Lease {
            owner: self.holder.clone(),
            until: now + i64::try_from(CLAIM.as_millis()).unwrap_or(i64::MAX),
        };
        let claimed = self.store.claim_write_backs(lease, now, DUE_BATCH).await?;
        let mut tried = 0;
        for task in claimed {
            if !lock(&self.in_flight).insert(task.id.clone()) {
                continue;
            }
            tried += 1;
            let this = self.clone();
            tokio::spawn(async move {
                this.write_back(&task).await;
                lock(&this.in_flight).remove(&task.id);
            });
        }
        Ok(tried)
    }

    /// Records a stage in the audit log and as a span.
    fn audit(&self, entry: AuditEntry) {
        self.tracer.audit(self.store.as_ref(), entry);
    }

    /// Records the end of a write-back try whose requests went out under `span`.
    fn audit_of(&self, entry: AuditEntry, span: SpanId) {
        self.tracer.audit_of(self.store.as_ref(), entry, span);
    }

    /// One try at writing back `task`'s result, recorded with the task and in the audit trail.
    async fn write_back(&self, task: &TaskRecord) {
        // The try's span: the responder's requests to the provider are its children.
        let span = SpanId::random();
        let outcome = self.attempt(task, span).await;
        let (decision, result) = match outcome {
            Attempt::Done { decision } => (decision, Ok(())),
            Attempt::Failed {
                decision,
                error,
                retryable,
                retry_after,
            } => (decision, Err((error, retryable, retry_after))),
        };
        let decision_json = decision.as_ref().map(Decision::to_json).unwrap_or_default();
        let change = match result {
            Ok(()) => WriteBack::Done {
                decision: decision_json,
            },
            Err((error, retryable, retry_after)) => {
                let error = self.redactor.redact(&error).into_owned();
                let attempt = task.write_back_attempts + 1;
                let entry = entry(task, "writeback.failed")
                    .outcome(AuditOutcome::Fail)
                    .attempt(attempt)
                    .error(&error);
                if retryable && attempt < MAX_ATTEMPTS {
                    let delay = self.backoff.delay(attempt, retry_after, jitter_unit());
                    let next_at =
                        timestamp::now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                    self.audit_of(
                        entry
                            .outcome(AuditOutcome::Retry)
                            .detail(serde_json::json!({ "retry_in_ms": delay.as_millis() as u64 })),
                        span,
                    );
                    WriteBack::Retry {
                        decision: decision_json,
                        next_at,
                        error,
                    }
                } else {
                    let error = if retryable {
                        format!("retries exhausted after {attempt} attempts: {error}")
                    } else {
                        error
                    };
                    self.audit_of(entry, span);
                    WriteBack::Failed {
                        decision: decision_json,
                        error,
                    }
                }
            }
        };
        if let Err(err) = self.store.record_write_back(&task.id, change).await {
            tracing::warn!(task = %task.id, error = %err, "could not record a write-back");
            return;
        }
        if let Some(event) = &task.event_id
            && let Err(err) = finish_event(self.store.as_ref(), event).await
        {
            tracing::warn!(event = %event, error = %err, "could not finish an event");
        }
    }

    async fn attempt(&self, task: &TaskRecord, span: SpanId) -> Attempt {
        let done = |decision| Attempt::Done { decision };
        let Some(event_id) = &task.event_id else {
            return done(None);
        };
        let event = match self.store.get(event_id).await {
            Ok(Some(event)) => event,
            // Pruned by retention: there is nothing left to answer.
            Ok(None) => return done(None),
            Err(err) => return Attempt::retry(None, err.to_string()),
        };
        // Redacted again with the current secrets, by its decoded values, before the policies
        // and the responder see it: what is posted is what the redactor saw.
        let Some(proposed) = self.redactor.worker_result(&task.result) else {
            // Not a result object: the task succeeded, there is nothing to write back.
            return done(None);
        };
        let policy = match self.workers.get(&task.worker_name).await {
            Ok(worker) => worker.and_then(|worker| worker.def.policy.clone()),
            Err(err) => return Attempt::retry(None, err.to_string()),
        };
        let stored = plugin_event::stored_event(&event);
        let (allowed, decision) = policy_chain::apply(
            &self.plugins.current(),
            &self.config,
            policy.as_ref(),
            &stored,
            policy_chain::task_result(&proposed),
        )
        .await;
        self.audit(
            entry(task, "policy.applied")
                .outcome(if decision.denied_any() {
                    AuditOutcome::Deny
                } else {
                    AuditOutcome::Ok
                })
                .detail(serde_json::to_value(&decision).unwrap_or_default()),
        );
        let decision = Some(decision);
        let destinations = self.destinations();
        let (plugin, call) = match destinations.get(&event.source).map(Arc::as_ref) {
            Some(Destination::Ready { plugin, call }) => (plugin, call),
            Some(Destination::Unconfigured(reason)) => {
                self.audit(
                    entry(task, "writeback.skipped")
                        .outcome(AuditOutcome::Skip)
                        .detail(serde_json::json!({ "reason": reason })),
                );
                return done(decision);
            }
            // No responder for this source (e.g. a generic webhook): nowhere to write.
            None => return done(decision),
        };
        let responded = plugin
            .respond(
                call,
                &stored,
                &allowed,
                task.id.as_str(),
                self.tracer.traceparent(&task.trace_id, span),
            )
            .await;
        // A provider's rate limit says when to come back; the backoff waits at least that.
        let retry_after = responded
            .as_ref()
            .ok()
            .and_then(|responded| responded.retry_after.as_deref())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        match responded.map(|responded| responded.answer) {
            Ok(Ok(receipt)) => {
                let actions: Vec<serde_json::Value> = receipt
                    .actions
                    .iter()
                    .map(|action| {
                        serde_json::json!({ "action": action.action, "reference": action.reference })
                    })
                    .collect();
                self.audit_of(
                    entry(task, "writeback.done").detail(
                        serde_json::json!({ "responder": plugin.name(), "actions": actions }),
                    ),
                    span,
                );
                done(decision)
            }
            Ok(Err(refused)) => Attempt::Failed {
                decision,
                error: format!("{}: {}", plugin.name(), refused.message),
                retryable: refused.retryable,
                retry_after,
            },
            // A crash or a deadline may be the provider's slowness: worth another try.
            Err(err) => Attempt::retry(decision, err.to_string()),
        }
    }
}

/// How one try went.
enum Attempt {
    Done {
        decision: Option<Decision>,
    },
    Failed {
        decision: Option<Decision>,
        error: String,
        retryable: bool,
        /// The wait the provider asked for, at least which the next try waits.
        retry_after: Option<Duration>,
    },
}

impl Attempt {
    fn retry(decision: Option<Decision>, error: String) -> Attempt {
        Attempt::Failed {
            decision,
            error,
            retryable: true,
            retry_after: None,
        }
    }
}

/// An entry about write-back try `write_back_attempts + 1` of `task`.
fn entry(task: &TaskRecord, action: &str) -> AuditEntry {
    let entry = AuditEntry::new(&task.trace_id, action)
        .task(&task.id)
        .worker(&task.worker_name)
        .attempt(task.write_back_attempts + 1);
    match &task.event_id {
        Some(event) => entry.event(event),
        None => entry,
    }
}

/// Each source's responder, ready with its grant, or why it cannot run. A responder answers
/// the source of its own name unless its configuration lists `sources`; a responder that lists
/// a source wins over the one named after it.
fn destinations(
    registry: &PluginRegistry,
    config: &ServerConfig,
    secrets: &Secrets,
) -> BTreeMap<String, Arc<Destination>> {
    let mut by_name = BTreeMap::new();
    let mut listed = BTreeMap::new();
    for loaded in registry.iter() {
        let Runner::Responder(plugin) = &loaded.runner else {
            continue;
        };
        let name = loaded.info.name.as_str();
        let settings = config.responder(name);
        let limits = Limits::from_config(&config.plugins.get(name).cloned().unwrap_or_default());
        let destination = Arc::new(destination(
            plugin.clone(),
            name,
            &settings,
            limits,
            &loaded.info.hosts,
            secrets,
        ));
        if let Destination::Unconfigured(reason) = destination.as_ref() {
            tracing::info!(responder = %name, %reason, "write-back disabled");
        }
        match &settings.sources {
            Some(sources) => {
                for source in sources {
                    listed.insert(source.clone(), destination.clone());
                }
            }
            None => {
                by_name.insert(name.to_owned(), destination);
            }
        }
    }
    by_name.extend(listed);
    by_name
}

/// The responder `name` ready to run, or why it cannot. `declared` are the origins the plugin
/// declared (and was granted): the first is its API's default, the others are where it may
/// answer without the token unless `response_origins` says otherwise.
fn destination(
    plugin: Arc<ResponderPlugin>,
    name: &str,
    config: &ResponderConfig,
    defaults: Limits,
    declared: &[String],
    secrets: &Secrets,
) -> Destination {
    let field = format!("responders.{name}");
    let request = ApiRequest {
        plugin: name,
        section: name,
        field: &field,
        api_url: config.api_url.as_deref(),
        plugin_default: declared.first().map(String::as_str),
        auth: config.auth,
        allow_private_network: config.allow_private_network,
        purpose: "to write results back",
    };
    let mut access = match api_access(&request, secrets) {
        Ok(access) => access,
        Err(reason) => return Destination::Unconfigured(reason),
    };
    let response_origins = config
        .response_origins
        .as_deref()
        .unwrap_or(declared.get(1..).unwrap_or_default());
    for url in response_origins {
        match Origin::parse(url) {
            Ok(origin) => access.grant.origins.push(origin),
            Err(reason) => {
                return Destination::Unconfigured(format!("{field}.response_origins: {reason}"));
            }
        }
    }
    let mut settings = config.settings.clone();
    settings.insert("api_url".to_owned(), access.api_url);
    Destination::Ready {
        plugin,
        call: ResponderCall {
            settings: Arc::new(settings),
            grant: Arc::new(access.grant),
            limits: Limits {
                timeout: config
                    .timeout_ms
                    .map_or(RESPONDER_TIMEOUT, Duration::from_millis),
                memory_mib: config.memory_mib.unwrap_or(defaults.memory_mib),
                ..defaults
            },
        },
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
