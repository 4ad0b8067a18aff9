//! The dispatcher: sends pending tasks to their workers and records what came back.
//!
//! Each worker has a lane: a queue drained by its own task, which runs at most the worker's
//! `concurrency` dispatches at once, takes a token from the worker's rate limit before each
//! (waiting for one, never dropping the task), and holds its tasks while the worker is in
//! `error` until the health monitor brings it back. A global limit caps dispatches across all
//! lanes. One slow or broken worker therefore never delays another.
//!
//! Tasks are durable in the store; the queues only hold ids. Anything lost from memory (a full
//! queue, a crash) is found again by the retry scan or by recovery at start.
//!
//! A task is claimed in the store under a lease before it is sent, so no other dispatcher
//! (another daemon on the same database, or this one's retry scan) can send it too. The sender
//! renews the lease while the worker works; only the lease's holder records the outcome. A lease
//! that runs out (its daemon died) is released by [`Dispatcher::release_leases`], and the task is
//! sent again.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc};

use super::backoff::{Backoff, jitter_unit};
use super::finish::finish_event;
use super::rate_limit::TokenBucket;
use crate::config::worker::RateLimit;
use crate::metrics::{Counter, Metrics, Stage};
use crate::redact::Redactor;
use crate::store::{
    self, AuditEntry, AuditOutcome, Lease, Store, TaskId, TaskRecord, TaskState, WorkerState,
    timestamp,
};
use crate::trace::{SpanId, Tracer, traceparent};
use crate::worker::client::{SendError, TaskRequest};
use crate::worker::registry::{Worker, Workers};
use crate::worker::runtime::Runtimes;
use crate::worker::state::WorkerStates;

/// How the dispatcher behaves.
#[derive(Debug, Clone, Copy)]
pub struct DispatchOptions {
    /// Dispatches in flight across all workers.
    pub global_limit: usize,
    pub backoff: Backoff,
    /// How often a lane whose worker is in `error` checks whether it is back.
    pub error_poll: Duration,
    /// How long a claim holds a task without renewal; renewed every third of it while sent.
    pub lease: Duration,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            global_limit: 64,
            backoff: Backoff::default(),
            error_poll: Duration::from_secs(1),
            lease: Duration::from_secs(30),
        }
    }
}

/// What a dispatcher works with.
pub struct DispatcherParts {
    pub store: Arc<dyn Store>,
    pub workers: Arc<Workers>,
    pub runtimes: Arc<Runtimes>,
    pub metrics: Arc<Metrics>,
    pub redactor: Redactor,
    /// Signalled after each completed task, whose write-back is then due.
    pub completed: Arc<Notify>,
    /// This daemon's id, which holds the leases of the tasks it sends
    /// ([`crate::config::home::Home::daemon_id`]).
    pub holder: String,
    /// Where each stage's span goes besides the audit log.
    pub tracer: Tracer,
}

/// Cheap to clone; all clones feed the same lanes.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    workers: Arc<Workers>,
    runtimes: Arc<Runtimes>,
    metrics: Arc<Metrics>,
    redactor: Redactor,
    completed: Arc<Notify>,
    holder: String,
    tracer: Tracer,
    states: WorkerStates,
    options: DispatchOptions,
    global: Arc<Semaphore>,
    lanes: Mutex<HashMap<String, mpsc::UnboundedSender<TaskId>>>,
    /// Tasks queued or in flight, so the retry scan never queues one twice.
    queued: Mutex<HashSet<TaskId>>,
    /// Set at shutdown: lanes start no new dispatches.
    closing: AtomicBool,
}

/// Removes a task from the queued set when its dispatch ends, however it ends.
struct Queued<'a> {
    inner: &'a Inner,
    task: &'a TaskId,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.inner.forget(self.task);
    }
}

impl Dispatcher {
    pub fn new(parts: DispatcherParts, options: DispatchOptions) -> Dispatcher {
        let DispatcherParts {
            store,
            workers,
            runtimes,
            metrics,
            redactor,
            completed,
            holder,
            tracer,
        } = parts;
        let states = WorkerStates::new(store.clone(), redactor.clone());
        Dispatcher {
            inner: Arc::new(Inner {
                store,
                workers,
                runtimes,
                metrics,
                redactor,
                completed,
                holder,
                tracer,
                states,
                global: Arc::new(Semaphore::new(options.global_limit.max(1))),
                options,
                lanes: Mutex::new(HashMap::new()),
                queued: Mutex::new(HashSet::new()),
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// Queues a task of `worker` for dispatch; a task already queued or in flight is ignored.
    pub fn enqueue_for(&self, task: TaskId, worker: &str) {
        self.inner.enqueue(task, worker);
    }

    /// Every pending task whose retry time has come, queued; run this periodically. Also picks
    /// up tasks made pending by another process (`mecha tasks retry`).
    pub async fn queue_due(&self) -> Result<usize, store::Error> {
        let due = self
            .inner
            .store
            .due_tasks(timestamp::now_ms(), DUE_BATCH)
            .await?;
        let count = due.len();
        for task in due {
            self.inner.enqueue(task.id, &task.worker_name);
        }
        Ok(count)
    }

    /// Releases the leases that ran out (their daemons died while the tasks were in flight) and,
    /// with `reclaim`, this daemon's own leases from before its restart; each task is queued again
    /// or, out of attempts, dead-lettered. Run at start with `reclaim`, then periodically.
    pub async fn release_leases(&self, reclaim: bool) -> Result<usize, store::Error> {
        let reclaim = reclaim.then(|| self.inner.holder.clone());
        let released = self
            .inner
            .store
            .release_leases(timestamp::now_ms(), reclaim)
            .await?;
        self.inner
            .metrics
            .add(Counter::LeasesReleased, released.len() as u64);
        for task in &released {
            tracing::warn!(task = %task.id, worker = %task.worker_name, "a task's lease ran out while it was in flight; it is sent again");
            if task.state == TaskState::Failed {
                self.inner.metrics.increment(Counter::TasksDeadLettered);
                self.inner.metrics.increment(Counter::TasksFailed);
                self.inner.audit(
                    task_entry(task, "task.dead_letter")
                        .outcome(AuditOutcome::Fail)
                        .attempt(task.attempts)
                        .error(&task.error),
                );
                self.inner.finish(task).await;
            } else {
                self.inner.metrics.increment(Counter::TasksRetried);
                self.inner.audit(
                    task_entry(task, "task.retry")
                        .outcome(AuditOutcome::Retry)
                        .attempt(task.attempts)
                        .error(&task.error),
                );
                self.inner.enqueue(task.id.clone(), &task.worker_name);
            }
        }
        Ok(released.len())
    }

    /// Queues the tasks another daemon made and never sent (it died first): tasks still pending,
    /// never tried, a lease after they were made. Run with the lease sweep. A live daemon's
    /// tasks that merely wait in its queue may be taken too; their claims decide who sends them.
    pub async fn adopt_unclaimed(&self) -> Result<usize, store::Error> {
        let age = i64::try_from(self.inner.options.lease.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        let unclaimed = self
            .inner
            .store
            .unclaimed_tasks(timestamp::now().saturating_sub(age), DUE_BATCH)
            .await?;
        let mut adopted = 0;
        for task in &unclaimed {
            if self.inner.enqueue(task.id.clone(), &task.worker_name) {
                adopted += 1;
            }
        }
        self.inner.metrics.add(Counter::TasksAdopted, adopted);
        Ok(unclaimed.len())
    }

    /// How often [`Dispatcher::release_leases`] should run: a quarter of a lease, so a dead
    /// daemon's task waits at most a lease and a quarter.
    pub fn lease_sweep(&self) -> Duration {
        (self.inner.options.lease / 4).max(Duration::from_millis(100))
    }

    /// Tasks being claimed or sent now: the leases this daemon holds, or is about to.
    pub fn in_flight(&self) -> usize {
        let limit = self.inner.options.global_limit.max(1);
        limit.saturating_sub(self.inner.global.available_permits())
    }

    /// Tasks waiting or in flight.
    pub fn queue_depth(&self) -> usize {
        lock(&self.inner.queued).len()
    }

    /// Stops starting dispatches and waits (up to `grace`) for those in flight to record their
    /// answers. Tasks still waiting stay pending in the store for the next start.
    pub async fn drain(&self, grace: Duration) {
        self.inner.closing.store(true, Ordering::Relaxed);
        let limit = self.inner.options.global_limit.max(1) as u32;
        if tokio::time::timeout(grace, self.inner.global.acquire_many(limit))
            .await
            .is_err()
        {
            tracing::warn!(
                "dispatches still in flight at shutdown; their tasks are sent again at the next start"
            );
        }
    }
}

/// The span of the try of `task` under its claim (see [`SpanId::task_try`]); a task not
/// claimed (failed before it could be sent) has one of its own.
fn try_span(task: &TaskRecord) -> SpanId {
    task.lease.as_ref().map_or_else(SpanId::random, |lease| {
        SpanId::task_try(task.id.as_str(), lease.until)
    })
}

/// An audit record about `task`, carrying its trace, worker and event.
fn task_entry(task: &TaskRecord, action: &str) -> AuditEntry {
    let entry = AuditEntry::new(&task.trace_id, action)
        .task(&task.id)
        .worker(&task.worker_name);
    match &task.event_id {
        Some(event) => entry.event(event),
        None => entry,
    }
}

/// How often a lane waiting for its rate limit reads the worker's definition again.
const RATE_RECHECK: Duration = Duration::from_secs(1);

/// Brings the lane's `semaphore` from `size` to `concurrency` permits (a worker's `concurrency`
/// edited while it runs). Growing adds permits; shrinking takes the surplus out of circulation
/// as tasks in flight finish, so that no new task starts until fewer than the new number run:
/// a fresh semaphore would let the old tasks and a new full set run together.
async fn resize(semaphore: &Arc<Semaphore>, size: &mut u32, concurrency: u32) {
    if concurrency > *size {
        semaphore.add_permits((concurrency - *size) as usize);
    } else if concurrency < *size
        && let Ok(surplus) = semaphore.acquire_many(*size - concurrency).await
    {
        surplus.forget();
    }
    *size = concurrency;
}

/// How long after its creation a task may keep waiting on a busy worker: one hour, the longest
/// `Retry-After` mecha honours. Past it, a busy answer counts as a failed attempt, so a worker
/// that is never free ends in the dead-letter queue instead of deferring a task forever.
const BUSY_DEADLINE: Duration = Duration::from_secs(3600);

/// Whether `task` may wait `wait` more on a busy worker within [`BUSY_DEADLINE`].
fn may_wait(task: &TaskRecord, wait: Duration) -> bool {
    // `created_at` is in seconds, the clock here in milliseconds.
    let deadline = task
        .created_at
        .saturating_mul(1000)
        .saturating_add(i64::try_from(BUSY_DEADLINE.as_millis()).unwrap_or(i64::MAX));
    let ready =
        timestamp::now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    ready <= deadline
}

/// 512 due tasks per scan: more than a scan interval's worth at any realistic rate.
const DUE_BATCH: u32 = 512;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Inner {
    /// Queues `task` for `worker`'s lane; false when it was queued or in flight already.
    fn enqueue(self: &Arc<Self>, task: TaskId, worker: &str) -> bool {
        if !lock(&self.queued).insert(task.clone()) {
            return false;
        }
        self.metrics
            .set_queue_depth(lock(&self.queued).len() as u64);
        self.send_to_lane(worker, task);
        true
    }

    fn forget(&self, task: &TaskId) {
        let mut queued = lock(&self.queued);
        queued.remove(task);
        self.metrics.set_queue_depth(queued.len() as u64);
    }

    fn send_to_lane(self: &Arc<Self>, worker: &str, task: TaskId) {
        let mut lanes = lock(&self.lanes);
        let sender = lanes.entry(worker.to_owned()).or_insert_with(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(self.clone().run_lane(worker.to_owned(), receiver));
            sender
        });
        if let Err(returned) = sender.send(task) {
            // The lane ended (it never does while the daemon runs); start a new one.
            let (sender, receiver) = mpsc::unbounded_channel();
            let _ = sender.send(returned.0);
            tokio::spawn(self.clone().run_lane(worker.to_owned(), receiver));
            lanes.insert(worker.to_owned(), sender);
        }
    }

    /// One worker's lane: concurrency, rate limit, and holding tasks while it is in error.
    async fn run_lane(self: Arc<Self>, name: String, mut tasks: mpsc::UnboundedReceiver<TaskId>) {
        let mut slots: Option<(u32, Arc<Semaphore>)> = None;
        let mut bucket: Option<(RateLimit, TokenBucket)> = None;
        while let Some(task) = tasks.recv().await {
            let worker = loop {
                match self.workers.get(&name).await {
                    // Held while the health monitor can bring it back (it has an endpoint to
                    // probe); a worker in error without one fails its tasks below.
                    Ok(Some(worker))
                        if worker.state == WorkerState::Error && worker.endpoint.is_some() =>
                    {
                        tokio::time::sleep(self.options.error_poll).await;
                    }
                    Ok(worker) => break worker,
                    Err(err) => {
                        tracing::warn!(worker = %name, error = %err, "could not read the worker");
                        tokio::time::sleep(self.options.error_poll).await;
                    }
                }
            };
            let Some(worker) = worker else {
                let reason = match self.workers.problem(&name).await {
                    Ok(Some(problem)) => problem,
                    _ => format!("worker {name} not found"),
                };
                if let Ok(Some(record)) = self.store.get_task(&task).await {
                    self.fail(&record, None, &reason).await;
                }
                self.forget(&task);
                continue;
            };
            let concurrency = worker.def.concurrency.max(1);
            let semaphore = match &mut slots {
                Some((size, semaphore)) => {
                    resize(semaphore, size, concurrency).await;
                    semaphore.clone()
                }
                None => {
                    let semaphore = Arc::new(Semaphore::new(concurrency as usize));
                    slots = Some((concurrency, semaphore.clone()));
                    semaphore
                }
            };
            let (limit, bucket) = bucket.get_or_insert_with(|| {
                let limit = worker.def.rate_limit;
                (
                    limit,
                    TokenBucket::new(limit.per_second, limit.burst, Instant::now()),
                )
            });
            let mut current = worker.def.rate_limit;
            loop {
                if current != *limit {
                    *limit = current;
                    bucket.set_rate(current.per_second, current.burst, Instant::now());
                }
                let Err(wait) = bucket.take(Instant::now()) else {
                    break;
                };
                self.metrics.increment(Counter::TasksRateLimited);
                // Woken now and then to read the definition again: a rate raised while the
                // lane waits applies at once, not after the wait the old rate asked for.
                tokio::time::sleep(wait.min(RATE_RECHECK)).await;
                if let Ok(Some(changed)) = self.workers.get(&name).await {
                    current = changed.def.rate_limit;
                }
            }
            let (Ok(slot), Ok(global)) = (
                semaphore.acquire_owned().await,
                self.global.clone().acquire_owned().await,
            ) else {
                self.forget(&task);
                continue;
            };
            if self.closing.load(Ordering::Relaxed) {
                // Shutting down: the task stays pending in the store for the next start.
                self.forget(&task);
                continue;
            }
            let inner = self.clone();
            tokio::spawn(async move {
                // Forgotten even if the dispatch panics, so a retry can queue it again.
                let _queued = Queued {
                    inner: &inner,
                    task: &task,
                };
                inner.dispatch(&task, &worker).await;
                drop((slot, global));
            });
        }
    }

    /// Claims one task, sends it and records the outcome.
    async fn dispatch(&self, id: &TaskId, worker: &Worker) {
        let lease = self.lease();
        let task = match self.store.claim_task(id, lease).await {
            Ok(task) => task,
            // Sent or ended meanwhile (by another daemon, an operator), or not yet due.
            Err(store::Error::InvalidTaskTransition { .. }) => return,
            Err(err) => {
                tracing::warn!(task = %id, error = %err, "could not claim the task; the retry scan will find it");
                return;
            }
        };
        self.metrics.increment(Counter::TasksClaimed);
        let runtime = self.runtimes.of(&worker.def);
        if worker.state == WorkerState::Offline {
            let reason = format!(
                "worker {} is offline; {}, then `mecha tasks retry {id}`",
                worker.name(),
                runtime.how_to_start(worker.name())
            );
            self.fail(&task, Some(&self.holder), &reason).await;
            return;
        }
        let attempt = task.attempts + 1;
        self.audit(task_entry(&task, "task.sent").attempt(attempt));
        let request = TaskRequest {
            id: id.to_string(),
            prompt: task.prompt.clone(),
            context: task.context.clone(),
            traceparent: traceparent(&task.trace_id, try_span(&task)),
        };
        let started = Instant::now();
        let outcome = self.holding(id, runtime.send(worker, id, &request)).await;
        self.metrics.observe(Stage::Dispatch, started.elapsed());
        let Some(outcome) = outcome else {
            tracing::warn!(task = %id, "lost the task's lease while its worker had it; its answer is not recorded");
            return;
        };
        match outcome {
            Ok(reply) => self.complete(&task, &reply.body).await,
            // Alive and saying when to come back: back-pressure, not a failed attempt.
            Err(SendError::Transient {
                reason,
                retry_after: Some(wait),
                worker_down: false,
            }) if may_wait(&task, wait) => self.defer(&task, &reason, wait).await,
            Err(SendError::Transient {
                reason,
                retry_after,
                worker_down,
            }) => {
                if worker_down {
                    self.mark_worker_error(worker, &reason).await;
                }
                self.retry_or_dead_letter(&task, &reason, retry_after).await;
            }
            Err(SendError::Permanent { reason, .. }) => {
                self.fail(&task, Some(&self.holder), &reason).await;
            }
        }
    }

    /// A lease held by this daemon from now on.
    fn lease(&self) -> Lease {
        let length = i64::try_from(self.options.lease.as_millis()).unwrap_or(i64::MAX);
        Lease {
            owner: self.holder.clone(),
            until: timestamp::now_ms().saturating_add(length),
        }
    }

    /// Runs `send` while renewing the lease of task `id` every third of a lease; `None` when a
    /// renewal is refused (the lease ran out and another daemon may have the task now), which
    /// stops waiting for the worker.
    async fn holding<T>(&self, id: &TaskId, send: impl Future<Output = T>) -> Option<T> {
        let mut send = std::pin::pin!(send);
        // The first renewal a third of a lease from now. (An `interval`'s first tick, due at
        // once, would still wait for the timer's next millisecond tick before every send.)
        let period = self.options.lease / 3;
        let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                outcome = &mut send => return Some(outcome),
                _ = renewals.tick() => match self.store.renew_lease(id, self.lease()).await {
                    Ok(()) => {}
                    Err(store::Error::InvalidTaskTransition { .. }) => return None,
                    // The database is unreachable: the lease may still be good; try again.
                    Err(err) => tracing::warn!(task = %id, error = %err, "could not renew a task's lease"),
                },
            }
        }
    }

    async fn complete(&self, task: &TaskRecord, body: &str) {
        // Redacted by its decoded JSON values: an escaped secret is a secret to every reader.
        let body = self.redactor.worker_reply(body);
        if let Err(err) = self.store.complete_task(&task.id, &self.holder, body).await {
            tracing::error!(task = %task.id, error = %err, "could not record a completed task");
            return;
        }
        self.metrics.increment(Counter::TasksCompleted);
        self.audit_try(
            task,
            task_entry(task, "task.completed").attempt(task.attempts + 1),
        );
        self.completed.notify_one();
        self.finish(task).await;
    }

    /// Sends `task` again once the busy worker's `wait` is over (plus up to a tenth more, so
    /// that the tasks it turned away together do not return as one burst), with its attempts
    /// untouched.
    async fn defer(&self, task: &TaskRecord, reason: &str, wait: Duration) {
        let reason = self.redactor.redact(reason).into_owned();
        let wait = wait.mul_f64(1.0 + 0.1 * jitter_unit());
        let next = timestamp::now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        if let Err(err) = self
            .store
            .defer_task(&task.id, &self.holder, next, reason.clone())
            .await
        {
            tracing::error!(task = %task.id, error = %err, "could not defer a task for its busy worker");
            return;
        }
        self.metrics.increment(Counter::TasksDeferred);
        self.audit_try(
            task,
            task_entry(task, "task.deferred")
                .outcome(AuditOutcome::Retry)
                .attempt(task.attempts + 1)
                .error(&reason)
                .detail(serde_json::json!({ "retry_in_ms": wait.as_millis() as u64 })),
        );
    }

    async fn retry_or_dead_letter(
        &self,
        task: &TaskRecord,
        reason: &str,
        retry_after: Option<Duration>,
    ) {
        let reason = self.redactor.redact(reason).into_owned();
        let attempt = task.attempts + 1;
        if attempt >= task.max_retries.max(1) {
            let error = format!("retries exhausted after {attempt} attempts: {reason}");
            if let Err(err) = self
                .store
                .fail_task(&task.id, Some(&self.holder), error.clone())
                .await
            {
                tracing::error!(task = %task.id, error = %err, "could not dead-letter a task");
                return;
            }
            self.metrics.increment(Counter::TasksDeadLettered);
            self.metrics.increment(Counter::TasksFailed);
            self.audit_try(
                task,
                task_entry(task, "task.dead_letter")
                    .outcome(AuditOutcome::Fail)
                    .attempt(attempt)
                    .error(&error),
            );
            self.finish(task).await;
            return;
        }
        let delay = self
            .options
            .backoff
            .delay(attempt, retry_after, jitter_unit());
        let next = timestamp::now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        if let Err(err) = self
            .store
            .schedule_retry(&task.id, &self.holder, next, reason.clone())
            .await
        {
            tracing::error!(task = %task.id, error = %err, "could not schedule a retry");
            return;
        }
        self.metrics.increment(Counter::TasksRetried);
        self.audit_try(
            task,
            task_entry(task, "task.retry")
                .outcome(AuditOutcome::Retry)
                .attempt(attempt)
                .error(&reason)
                .detail(serde_json::json!({ "retry_in_ms": delay.as_millis() as u64 })),
        );
    }

    /// Fails `task` for good: a claimed one as the lease's `holder`, or a pending one (`None`)
    /// that could not be sent at all.
    async fn fail(&self, task: &TaskRecord, holder: Option<&str>, reason: &str) {
        let reason = self.redactor.redact(reason).into_owned();
        if let Err(err) = self.store.fail_task(&task.id, holder, reason.clone()).await {
            tracing::warn!(task = %task.id, error = %err, "could not fail a task");
            return;
        }
        self.metrics.increment(Counter::TasksFailed);
        self.audit_try(
            task,
            task_entry(task, "task.failed")
                .outcome(AuditOutcome::Fail)
                .attempt(task.attempts + 1)
                .error(&reason),
        );
        self.finish(task).await;
    }

    async fn finish(&self, task: &TaskRecord) {
        if let Some(event) = &task.event_id
            && let Err(err) = finish_event(self.store.as_ref(), event).await
        {
            tracing::warn!(event = %event, error = %err, "could not finish an event");
        }
    }

    async fn mark_worker_error(&self, worker: &Worker, reason: &str) {
        let changed = self
            .states
            .set(
                worker.name(),
                &[WorkerState::Online],
                WorkerState::Error,
                reason,
            )
            .await;
        if changed.is_ok() {
            tracing::warn!(worker = %worker.name(), "worker is unreachable; holding its tasks until it is healthy");
        }
    }

    fn audit(&self, entry: AuditEntry) {
        self.tracer.audit(self.store.as_ref(), entry);
    }

    /// Records a stage that ends a try of claimed `task`: its span is the one the worker was
    /// given as its parent.
    fn audit_try(&self, task: &TaskRecord, entry: AuditEntry) {
        self.tracer
            .audit_of(self.store.as_ref(), entry, try_span(task));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker's concurrency lowered from 3 to 1 while 2 of its tasks run: no new task may
    /// start until only one runs, and then only up to the new limit; raised, it applies at once.
    #[tokio::test]
    async fn a_concurrency_change_never_lets_more_run_than_the_new_limit() {
        let semaphore = Arc::new(Semaphore::new(3));
        let first = semaphore.clone().acquire_owned().await.unwrap();
        let second = semaphore.clone().acquire_owned().await.unwrap();
        let resizing = {
            let semaphore = semaphore.clone();
            tokio::spawn(async move {
                let mut size = 3;
                resize(&semaphore, &mut size, 1).await;
                size
            })
        };
        tokio::task::yield_now().await;
        drop(first);
        assert_eq!(resizing.await.unwrap(), 1);
        assert_eq!(
            semaphore.available_permits(),
            0,
            "the task still running fills the new limit"
        );
        drop(second);
        assert_eq!(semaphore.available_permits(), 1);

        let mut size = 1;
        resize(&semaphore, &mut size, 4).await;
        assert_eq!((size, semaphore.available_permits()), (4, 4));
    }
}
