//! The store's contract, checked on both backends: every test here runs once on a SQLite file
//! and once on a fresh PostgreSQL database (started by `mecha-test-postgres`), through the
//! traits only, so the two cannot drift apart in what callers see. The last tests are
//! PostgreSQL's own: several stores on one database, as several daemons share it.

use std::sync::Arc;

use serde_json::json;

use super::*;

/// Declares `async fn name(store: Arc<dyn Store>)` as a module with one test per backend.
macro_rules! on_both_backends {
    ($($(#[doc = $doc:literal])* async fn $name:ident($store:ident) $body:block)*) => {$(
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            async fn check($store: Arc<dyn Store>) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store =
                    SqliteStore::open(&dir.path().join("mecha.db"), Durability::Full).unwrap();
                check(Arc::new(store)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(url) = postgres_database().await {
                    check(Arc::new(PostgresStore::open(&url).await.unwrap())).await;
                }
            }
        }
    )*};
}

/// A fresh database on the test process's PostgreSQL, or `None` (after saying why) where there
/// is none outside CI.
pub(super) async fn postgres_database() -> Option<String> {
    tokio::task::spawn_blocking(|| {
        mecha_test_postgres::available().then(|| mecha_test_postgres::shared().fresh_database())
    })
    .await
    .unwrap()
}

/// A small `issues` event from `source`, shared by the store's tests.
pub(super) fn event(source: &str, delivery: Option<&str>, dedup_key: Option<&str>) -> NewEvent {
    let mut attrs = serde_json::Map::new();
    attrs.insert("number".into(), json!(7));
    NewEvent {
        source: source.into(),
        event_type: "issues".into(),
        delivery_id: delivery.map(Into::into),
        dedup_key: dedup_key.map(Into::into),
        actor: "octocat".into(),
        subject: "acme/widgets#7".into(),
        attrs,
        raw: br#"{"number":7}"#.to_vec(),
    }
}

/// `new` as stored, which must not be a duplicate.
pub(super) async fn inserted(store: &dyn Store, new: NewEvent) -> EventRecord {
    match store.insert(new).await.unwrap() {
        InsertOutcome::Inserted(record) => record,
        InsertOutcome::Duplicate { existing } => panic!("unexpected duplicate of {existing}"),
    }
}

async fn event_ids(store: &dyn Store, filter: EventFilter) -> Vec<EventId> {
    let records = store.list(filter).await.unwrap();
    records.into_iter().map(|record| record.id).collect()
}

async fn task(store: &dyn Store, worker: &str, event_id: Option<&EventId>) -> TaskRecord {
    let new = NewTask {
        worker_name: worker.into(),
        prompt: format!("review for {worker}"),
        context: json!({"pr": 7}),
        event_id: event_id.cloned(),
        trace_id: "trace-1".into(),
        max_retries: 2,
    };
    match store.create_task(new).await.unwrap() {
        CreateTaskOutcome::Created(record) => record,
        CreateTaskOutcome::Duplicate { existing } => panic!("unexpected duplicate of {existing}"),
    }
}

fn lease(owner: &str) -> Lease {
    Lease {
        owner: owner.into(),
        until: i64::MAX,
    }
}

fn task_ids(tasks: &[TaskRecord]) -> Vec<TaskId> {
    tasks.iter().map(|task| task.id.clone()).collect()
}

fn all_logs() -> LogFilter {
    LogFilter {
        limit: MAX_LIST_LIMIT,
        ..LogFilter::default()
    }
}

on_both_backends! {
    /// Inserted events read back whole, newest first, filtered by state and source, limited.
    async fn events_read_back_as_stored(store) {
        let first = inserted(&*store, event("github", Some("d-1"), None)).await;
        let second = inserted(&*store, event("gitlab", Some("d-2"), None)).await;
        let mut large = event("github", Some("d-3"), None);
        large.raw = body::noise(300_000, 7);
        let third = inserted(&*store, large).await;
        let mut empty = event("github", None, None);
        empty.raw.clear();
        let fourth = inserted(&*store, empty).await;

        assert_eq!(store.get(&first.id).await.unwrap(), Some(first.clone()));
        assert_eq!(store.get(&third.id).await.unwrap(), Some(third.clone()));
        assert_eq!(store.get(&fourth.id).await.unwrap().unwrap().raw, b"");
        assert_eq!(store.get(&EventId::generate().unwrap()).await.unwrap(), None);
        assert_eq!(
            event_ids(&*store, EventFilter::default()).await,
            [&fourth.id, &third.id, &second.id, &first.id].map(Clone::clone)
        );
        let summaries = store.list_summaries(EventFilter::default()).await.unwrap();
        let sizes: Vec<u64> = summaries.iter().map(|summary| summary.raw_bytes).collect();
        assert_eq!(sizes, [0, 300_000, first.raw.len() as u64, first.raw.len() as u64]);

        store
            .transition(&third.id, EventState::Received, EventState::Matched)
            .await
            .unwrap();
        let github_received = EventFilter {
            state: Some(EventState::Received),
            source: Some("github".into()),
            limit: 10,
            ..EventFilter::default()
        };
        assert_eq!(
            event_ids(&*store, github_received).await,
            [fourth.id.clone(), first.id.clone()]
        );
        let one = EventFilter { limit: 0, ..EventFilter::default() };
        assert_eq!(event_ids(&*store, one).await, [fourth.id]);
    }

    /// Events are found by type, actor, subject, received time, and by text in any of those
    /// or the delivery id, in any case; the text's `%` and `_` are only themselves.
    async fn events_are_found_by_their_fields_and_by_text(store) {
        let mut opened = event("github", Some("gh-100"), None);
        opened.event_type = "pull_request.opened".into();
        opened.actor = "Octocat".into();
        opened.subject = "acme/widgets".into();
        let opened = inserted(&*store, opened).await;
        let mut pushed = event("gitlab", Some("gl_7%"), None);
        pushed.event_type = "push".into();
        pushed.actor = "hubot".into();
        pushed.subject = "acme/gadgets".into();
        let pushed = inserted(&*store, pushed).await;
        let found = |filter: EventFilter| event_ids(&*store, filter);

        let exact = |event_type: Option<&str>, actor: Option<&str>, subject: Option<&str>| {
            EventFilter {
                event_type: event_type.map(Into::into),
                actor: actor.map(Into::into),
                subject: subject.map(Into::into),
                ..EventFilter::default()
            }
        };
        assert_eq!(found(exact(Some("push"), None, None)).await, vec![pushed.id.clone()]);
        assert_eq!(found(exact(None, Some("Octocat"), None)).await, vec![opened.id.clone()]);
        assert_eq!(found(exact(None, Some("octocat"), None)).await, [], "exact, as stored");
        assert_eq!(found(exact(None, None, Some("acme/gadgets"))).await, vec![pushed.id.clone()]);
        for (text, expected) in [
            ("OCTO", vec![opened.id.clone()]),
            ("acme/", vec![pushed.id.clone(), opened.id.clone()]),
            ("opened", vec![opened.id.clone()]),
            ("gh-1", vec![opened.id.clone()]),
            ("_7%", vec![pushed.id.clone()]),
            ("%", vec![pushed.id.clone()]),
            ("gh_1", vec![]),
            ("nothing like it", vec![]),
        ] {
            let filter = EventFilter { text: Some(text.into()), ..EventFilter::default() };
            assert_eq!(found(filter).await, expected, "{text:?}");
        }
        let now = opened.created_at;
        let window = |since: Option<i64>, until: Option<i64>| EventFilter {
            since,
            until,
            ..EventFilter::default()
        };
        assert_eq!(found(window(Some(now - 60), None)).await.len(), 2);
        assert_eq!(found(window(Some(now + 60), None)).await, []);
        assert_eq!(found(window(None, Some(now - 60))).await, []);
        assert_eq!(found(window(Some(now - 60), Some(now + 60))).await.len(), 2);
        let combined = EventFilter {
            source: Some("github".into()),
            text: Some("acme".into()),
            ..EventFilter::default()
        };
        assert_eq!(found(combined).await, [opened.id]);
    }

    /// A delivery id is unique per source; a dedup key is held until its event ends.
    async fn duplicates_are_reported_not_raised(store) {
        let first = inserted(&*store, event("github", Some("d-1"), None)).await;
        assert_eq!(
            store.insert(event("github", Some("d-1"), None)).await.unwrap(),
            InsertOutcome::Duplicate { existing: first.id.clone() }
        );
        inserted(&*store, event("gitlab", Some("d-1"), None)).await;
        inserted(&*store, event("github", None, None)).await;
        inserted(&*store, event("github", None, None)).await;

        let key = Some("acme/widgets#7");
        let held = inserted(&*store, event("github", Some("k-1"), key)).await;
        assert_eq!(
            store.insert(event("github", Some("k-2"), key)).await.unwrap(),
            InsertOutcome::Duplicate { existing: held.id.clone() }
        );
        store.transition(&held.id, EventState::Received, EventState::Matched).await.unwrap();
        assert!(matches!(
            store.insert(event("github", Some("k-3"), key)).await.unwrap(),
            InsertOutcome::Duplicate { .. }
        ));
        store.transition(&held.id, EventState::Matched, EventState::Failed).await.unwrap();
        inserted(&*store, event("github", Some("k-4"), key)).await;
    }

    /// Moves and attrs are guarded by the event's current state.
    async fn event_changes_are_guarded(store) {
        let record = inserted(&*store, event("github", None, None)).await;
        assert!(matches!(
            store.transition(&record.id, EventState::Matched, EventState::Dispatched).await,
            Err(Error::InvalidTransition { .. })
        ));
        let mut attrs = serde_json::Map::new();
        attrs.insert("diff".into(), json!("+added"));
        assert!(store.set_attrs(&record.id, attrs.clone()).await.unwrap());
        assert_eq!(store.get(&record.id).await.unwrap().unwrap().attrs, attrs);
        store.transition(&record.id, EventState::Received, EventState::Skipped).await.unwrap();
        assert!(!store.set_attrs(&record.id, serde_json::Map::new()).await.unwrap());
        assert_eq!(store.get(&record.id).await.unwrap().unwrap().state, EventState::Skipped);
        let empty_source = store.insert(event("", None, None)).await.unwrap_err();
        assert!(matches!(empty_source, Error::Query { .. }), "{empty_source}");
    }

    /// The same signed body again is a replay, whatever its delivery id; other sources and
    /// other bodies are not.
    async fn a_signed_body_sent_again_is_a_replay(store) {
        let digest = SignedDigest::from([7; 32]);
        let SignedInsert::Stored(outcomes) = store
            .insert_signed("github", digest, vec![event("github", Some("d-1"), None)])
            .await
            .unwrap()
        else {
            panic!("the first request is stored");
        };
        let InsertOutcome::Inserted(first) = &outcomes[0] else { panic!("inserted") };
        assert_eq!(
            store
                .insert_signed("github", digest, vec![event("github", Some("d-2"), None)])
                .await
                .unwrap(),
            SignedInsert::Replayed { existing: first.id.clone() }
        );
        assert!(matches!(
            store
                .insert_signed("github-2", digest, vec![event("github-2", Some("d-2"), None)])
                .await
                .unwrap(),
            SignedInsert::Stored(_)
        ));
        assert!(matches!(
            store
                .insert_signed("github", [8; 32].into(), vec![event("github", Some("d-3"), None)])
                .await
                .unwrap(),
            SignedInsert::Stored(_)
        ));
        assert_eq!(event_ids(&*store, EventFilter::default()).await.len(), 3);
    }

    /// One task per (event, worker); an event's tasks and its move are stored together or not
    /// at all.
    async fn tasks_are_created_once_per_event_and_worker(store) {
        let parent = inserted(&*store, event("github", Some("d-1"), None)).await;
        let direct = task(&*store, "reviewer", None).await;
        assert_eq!(store.get_task(&direct.id).await.unwrap(), Some(direct.clone()));
        let created = store
            .create_tasks_for_event(
                &parent.id,
                EventState::Received,
                EventState::Dispatched,
                vec![
                    NewTask { worker_name: "a".into(), ..NewTask::default() },
                    NewTask { worker_name: "b".into(), ..NewTask::default() },
                ],
            )
            .await
            .unwrap();
        assert_eq!(created.created.len(), 2);
        assert_eq!(created.created[0].dedup_key, format!("{}:a", parent.id));
        assert_eq!(
            store.get_task(&created.created[1].id).await.unwrap().as_ref(),
            Some(&created.created[1])
        );
        let again = NewTask {
            worker_name: "a".into(),
            event_id: Some(parent.id.clone()),
            ..NewTask::default()
        };
        assert_eq!(
            store.create_task(again).await.unwrap(),
            CreateTaskOutcome::Duplicate { existing: created.created[0].id.clone() }
        );

        // A bad task (no worker) stores nothing and leaves the event where it was.
        let other = inserted(&*store, event("github", Some("d-2"), None)).await;
        let refused = store
            .create_tasks_for_event(
                &other.id,
                EventState::Received,
                EventState::Dispatched,
                vec![
                    NewTask { worker_name: "a".into(), ..NewTask::default() },
                    NewTask::default(),
                ],
            )
            .await
            .unwrap_err();
        assert!(matches!(refused, Error::Query { .. }), "{refused}");
        assert_eq!(store.get(&other.id).await.unwrap().unwrap().state, EventState::Received);
        let of_other = TaskFilter { event_id: Some(other.id.clone()), ..TaskFilter::default() };
        assert!(store.list_tasks(of_other).await.unwrap().is_empty());
        // And from the wrong state nothing happens either.
        assert!(matches!(
            store
                .create_tasks_for_event(&other.id, EventState::Matched, EventState::Dispatched,
                    vec![NewTask { worker_name: "a".into(), ..NewTask::default() }])
                .await,
            Err(Error::InvalidTransition { .. })
        ));
        let states = store.task_states(&parent.id).await.unwrap();
        assert_eq!(states, [(TaskState::Pending, WriteBackState::None); 2]);
    }

    /// Task lists filter by state, worker and event, newest first, in pages; counts go by state.
    async fn task_lists_filter_and_page(store) {
        let parent = inserted(&*store, event("github", None, None)).await;
        let a = task(&*store, "a", None).await;
        let b = task(&*store, "b", Some(&parent.id)).await;
        let c = task(&*store, "a", None).await;
        let all = store.list_tasks(TaskFilter::default()).await.unwrap();
        assert_eq!(task_ids(&all), [c.id.clone(), b.id.clone(), a.id.clone()]);
        let of_a = TaskFilter { worker: Some("a".into()), ..TaskFilter::default() };
        assert_eq!(task_ids(&store.list_tasks(of_a).await.unwrap()), [c.id.clone(), a.id.clone()]);
        let of_event = TaskFilter { event_id: Some(parent.id.clone()), ..TaskFilter::default() };
        assert_eq!(task_ids(&store.list_tasks(of_event).await.unwrap()), std::slice::from_ref(&b.id));
        let page = TaskFilter { limit: 1, before: Some(c.id.clone()), ..TaskFilter::default() };
        assert_eq!(task_ids(&store.list_tasks(page).await.unwrap()), std::slice::from_ref(&b.id));
        let unknown = TaskFilter { before: Some(TaskId::generate().unwrap()), ..TaskFilter::default() };
        assert!(store.list_tasks(unknown).await.unwrap().is_empty());
        store.claim_task(&a.id, lease("here")).await.unwrap();
        let dispatched = TaskFilter { state: Some(TaskState::Dispatched), ..TaskFilter::default() };
        assert_eq!(task_ids(&store.list_tasks(dispatched).await.unwrap()), std::slice::from_ref(&a.id));
        assert_eq!(task_ids(&store.pending_tasks().await.unwrap()), [b.id.clone(), c.id.clone()]);
        let later = timestamp::now() + 1;
        assert_eq!(task_ids(&store.unclaimed_tasks(later, 10).await.unwrap()), [b.id.clone(), c.id.clone()]);
        assert_eq!(task_ids(&store.unclaimed_tasks(later, 1).await.unwrap()), std::slice::from_ref(&b.id));
        assert!(store.unclaimed_tasks(b.created_at, 10).await.unwrap().is_empty());
        store.claim_task(&b.id, lease("here")).await.unwrap();
        store.schedule_retry(&b.id, "here", 0, "boom".into()).await.unwrap();
        assert_eq!(task_ids(&store.unclaimed_tasks(later, 10).await.unwrap()), [c.id], "a retry is the due scan's");
        let mut counts = store.count_tasks().await.unwrap();
        counts.sort_by_key(|(state, _)| state.as_str());
        assert_eq!(counts, [(TaskState::Dispatched, 1), (TaskState::Pending, 2)]);
    }

    /// A task is claimed once, ended only by its lease's holder, and retried, deferred,
    /// failed and requeued from the right states only.
    async fn each_move_happens_once_and_only_from_its_state(store) {
        let record = task(&*store, "reviewer", None).await;
        let claimed = store.claim_task(&record.id, lease("here")).await.unwrap();
        assert_eq!(claimed.state, TaskState::Dispatched);
        assert_eq!(claimed.lease, Some(lease("here")));
        assert!(claimed.dispatched_at.is_some());
        assert!(matches!(
            store.claim_task(&record.id, lease("there")).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
        assert!(matches!(
            store.complete_task(&record.id, "there", "{}".into()).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
        store.defer_task(&record.id, "here", 0, "busy".into()).await.unwrap();
        let deferred = store.get_task(&record.id).await.unwrap().unwrap();
        assert_eq!((deferred.state, deferred.attempts, deferred.lease), (TaskState::Pending, 0, None));

        store.claim_task(&record.id, lease("here")).await.unwrap();
        store.schedule_retry(&record.id, "here", i64::MAX, "boom".into()).await.unwrap();
        let retried = store.get_task(&record.id).await.unwrap().unwrap();
        assert_eq!((retried.attempts, retried.error.as_str()), (1, "boom"));
        assert!(matches!(
            store.claim_task(&record.id, lease("here")).await,
            Err(Error::InvalidTaskTransition { .. })
        ), "not claimed before its retry time");
        assert!(store.due_tasks(i64::MAX - 1, 10).await.unwrap().is_empty());
        assert_eq!(task_ids(&store.due_tasks(i64::MAX, 10).await.unwrap()), std::slice::from_ref(&record.id));

        let other = task(&*store, "reviewer", None).await;
        store.fail_task(&other.id, None, "no such worker".into()).await.unwrap();
        let failed = store.get_task(&other.id).await.unwrap().unwrap();
        assert_eq!((failed.state, failed.error.as_str()), (TaskState::Failed, "no such worker"));
        assert!(failed.completed_at.is_some());
        store.requeue_failed(&other.id).await.unwrap();
        let requeued = store.get_task(&other.id).await.unwrap().unwrap();
        assert_eq!((requeued.state, requeued.attempts, requeued.error.as_str()), (TaskState::Pending, 0, ""));
        assert!(matches!(
            store.requeue_failed(&other.id).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
        let claimed = store.claim_task(&other.id, lease("here")).await.unwrap();
        store.fail_task(&claimed.id, Some("here"), "broke".into()).await.unwrap();
        assert_eq!(store.get_task(&other.id).await.unwrap().unwrap().state, TaskState::Failed);
    }

    /// Only the holder renews; ended and reclaimed leases are released, counting an attempt,
    /// and a task on its last attempt fails.
    async fn leases_are_renewed_by_their_holder_and_released_when_they_end(store) {
        let ending = task(&*store, "reviewer", None).await;
        let held = task(&*store, "reviewer", None).await;
        let mine = task(&*store, "reviewer", None).await;
        store.claim_task(&ending.id, Lease { owner: "there".into(), until: 1_000 }).await.unwrap();
        store.claim_task(&held.id, lease("there")).await.unwrap();
        store.claim_task(&mine.id, lease("here")).await.unwrap();
        assert!(matches!(
            store.renew_lease(&ending.id, Lease { owner: "here".into(), until: 5_000 }).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
        store.renew_lease(&ending.id, Lease { owner: "there".into(), until: 2_000 }).await.unwrap();
        let released = store.release_leases(1_500, Some("here".into())).await.unwrap();
        assert_eq!(task_ids(&released), std::slice::from_ref(&mine.id));
        let released = store.release_leases(2_500, None).await.unwrap();
        assert_eq!(task_ids(&released), std::slice::from_ref(&ending.id));
        assert_eq!((released[0].state, released[0].attempts), (TaskState::Pending, 1));
        store.claim_task(&ending.id, Lease { owner: "there".into(), until: 3_000 }).await.unwrap();
        let released = store.release_leases(3_500, None).await.unwrap();
        assert_eq!(released[0].state, TaskState::Failed, "its second and last attempt");
        assert!(released[0].error.starts_with("retries exhausted after 2 attempts"), "{}", released[0].error);
        assert_eq!(store.get_task(&held.id).await.unwrap().unwrap().state, TaskState::Dispatched);
    }

    /// A completed event task's write-back is due at once, claimed by one daemon for a try,
    /// retried, failed and requeued.
    async fn a_write_back_goes_from_pending_to_done_or_failed(store) {
        let parent = inserted(&*store, event("github", None, None)).await;
        let record = task(&*store, "reviewer", Some(&parent.id)).await;
        let other = task(&*store, "reviewer", None).await;
        store.claim_task(&record.id, lease("here")).await.unwrap();
        let until = |owner: &str, until: i64| Lease { owner: owner.into(), until };
        assert!(store.claim_write_backs(until("here", 0), i64::MAX, 10).await.unwrap().is_empty());
        store.complete_task(&record.id, "here", r#"{"review":"ok"}"#.into()).await.unwrap();
        assert!(store.completed_task_exists(&parent.id, "reviewer").await.unwrap());
        assert!(!store.completed_task_exists(&parent.id, "other").await.unwrap());
        // A direct task has nothing to write back.
        store.claim_task(&other.id, lease("here")).await.unwrap();
        store.complete_task(&other.id, "here", "{}".into()).await.unwrap();
        let now = timestamp::now_ms();

        // One daemon's scan takes it for a try; another's finds it taken until the claim ends,
        // or until its holder restarts.
        let claimed = store.claim_write_backs(until("here", now + 60_000), now, 10).await.unwrap();
        assert_eq!(task_ids(&claimed), std::slice::from_ref(&record.id));
        assert_eq!(claimed[0].result, r#"{"review":"ok"}"#);
        assert_eq!(claimed[0].lease, Some(until("here", now + 60_000)));
        assert!(store.claim_write_backs(until("there", now + 60_000), now + 59_999, 10).await.unwrap().is_empty());
        assert!(store.release_leases(now, Some("there".into())).await.unwrap().is_empty());
        assert!(store.claim_write_backs(until("there", now + 60_000), now + 59_999, 10).await.unwrap().is_empty());
        store.release_leases(now, Some("here".into())).await.unwrap();
        let retaken = store.claim_write_backs(until("there", now + 60_000), now + 1, 10).await.unwrap();
        assert_eq!(task_ids(&retaken), std::slice::from_ref(&record.id));
        store.record_write_back(&record.id, WriteBack::Retry {
            decision: r#"{"allowed":[]}"#.into(),
            next_at: i64::MAX - 1,
            error: "github: 502".into(),
        }).await.unwrap();
        assert!(store.claim_write_backs(until("there", now), i64::MAX - 2, 10).await.unwrap().is_empty(), "not before its retry time");
        store.record_write_back(&record.id, WriteBack::Failed {
            decision: r#"{"allowed":[]}"#.into(),
            error: "github: 404".into(),
        }).await.unwrap();
        let failed = store.get_task(&record.id).await.unwrap().unwrap();
        assert_eq!(
            (failed.write_back, failed.write_back_attempts, failed.write_back_error.as_str()),
            (WriteBackState::Failed, 2, "github: 404")
        );
        let failed_write_backs = TaskFilter { write_back: Some(WriteBackState::Failed), ..TaskFilter::default() };
        assert_eq!(task_ids(&store.list_tasks(failed_write_backs.clone()).await.unwrap()), std::slice::from_ref(&record.id));
        assert!(matches!(
            store.record_write_back(&record.id, WriteBack::Done { decision: "{}".into() }).await,
            Err(Error::InvalidTaskTransition { .. })
        ));
        store.requeue_write_back(&record.id).await.unwrap();
        store.record_write_back(&record.id, WriteBack::Done { decision: r#"{"allowed":["comment"]}"#.into() }).await.unwrap();
        let done = store.get_task(&record.id).await.unwrap().unwrap();
        assert_eq!((done.write_back, done.write_back_attempts, done.lease), (WriteBackState::Done, 0, None));
        assert_eq!(done.decision, r#"{"allowed":["comment"]}"#);
        assert_eq!(store.task_states(&parent.id).await.unwrap(), [(TaskState::Completed, WriteBackState::Done)]);
        assert!(store.list_tasks(failed_write_backs).await.unwrap().is_empty());
    }

    /// Workers: added all or none, listed by name, guarded state moves with their audit
    /// record, removal of offline workers only.
    async fn workers_keep_their_definitions_and_guarded_states(store) {
        store.add_workers(vec![("b".into(), json!({"url": "http://b"})), ("a".into(), json!({}))]).await.unwrap();
        assert!(matches!(
            store.add_workers(vec![("c".into(), json!({})), ("a".into(), json!({}))]).await,
            Err(Error::WorkerExists { .. })
        ));
        let names: Vec<String> = store.list_workers().await.unwrap().into_iter().map(|row| row.name).collect();
        assert_eq!(names, ["a", "b"]);
        store.replace_definition("b", json!({"url": "http://b2"})).await.unwrap();
        assert!(matches!(
            store.replace_definition("zz", json!({})).await,
            Err(Error::WorkerNotFound { .. })
        ));
        let entry = AuditEntry::new("w", "worker.start").worker("b");
        store.set_worker_state("b", &[WorkerState::Offline], WorkerState::Online, None, Some(entry)).await.unwrap();
        let b = store.get_worker("b").await.unwrap().unwrap();
        assert_eq!((b.state, b.definition), (WorkerState::Online, json!({"url": "http://b2"})));
        assert!(b.started_at.is_some());
        assert!(matches!(
            store.set_worker_state("b", &[WorkerState::Offline], WorkerState::Online, None, None).await,
            Err(Error::InvalidWorkerTransition { .. })
        ));
        assert!(matches!(
            store.remove_worker("b").await,
            Err(Error::WorkerNotOffline { state: WorkerState::Online, .. })
        ));
        let location = WorkerLocation { container_id: "c0ffee", endpoint: "http://127.0.0.1:9", owner: "here/01" };
        store.set_worker_runtime("b", location, WorkerState::Error, None).await.unwrap();
        assert_eq!(store.get_worker("b").await.unwrap().unwrap().runtime_owner.as_deref(), Some("here/01"));
        store.set_worker_state("b", &WorkerState::ALL, WorkerState::Offline, Some("stopped".into()), None).await.unwrap();
        store.set_worker_restarts("b", 3).await.unwrap();
        let b = store.get_worker("b").await.unwrap().unwrap();
        assert_eq!(
            (b.state, b.error.as_deref(), b.container_id.as_deref(), b.started_at, b.restarts),
            (WorkerState::Offline, Some("stopped"), Some("c0ffee"), None, 3)
        );
        store.set_worker_runtime("b", WorkerLocation::default(), WorkerState::Offline, None).await.unwrap();
        assert_eq!(
            (b.runtime_owner.as_deref(), store.get_worker("b").await.unwrap().unwrap().runtime_owner),
            (Some("here/01"), None)
        );
        store.remove_worker("b").await.unwrap();
        assert!(matches!(store.remove_worker("b").await, Err(Error::WorkerNotFound { .. })));
        assert_eq!(store.get_worker("b").await.unwrap(), None);
        let logs = store.query_logs(LogFilter { worker: Some("b".into()), ..all_logs() }).await.unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].action, "worker.start");
    }

    /// Audit entries keep their order and are found by every filter; `after_id` follows.
    async fn audit_entries_are_filtered_and_followed(store) {
        for (n, action) in ["event.received", "task.created", "task.sent", "task.completed"].iter().enumerate() {
            let entry = AuditEntry::new("t-1", *action)
                .event("e-1")
                .task(format!("k-{n}"))
                .worker("reviewer")
                .attempt(1)
                .outcome(AuditOutcome::Ok)
                .detail(json!({"n": n}));
            store.record_detached(entry);
        }
        store.record(AuditEntry::new("t-2", "event.received").error("boom").outcome(AuditOutcome::Fail)).await.unwrap();
        let all = store.query_logs(all_logs()).await.unwrap();
        let actions: Vec<&str> = all.iter().map(|record| record.action.as_str()).collect();
        assert_eq!(actions, ["event.received", "task.completed", "task.sent", "task.created", "event.received"]);
        assert_eq!((all[0].error.as_str(), all[0].outcome), ("boom", AuditOutcome::Fail));
        assert_eq!(all[1].detail, json!({"n": 3}));
        let tasks = LogFilter { action_prefix: Some("task.".into()), trace: Some("t-1".into()), ..all_logs() };
        assert_eq!(store.query_logs(tasks).await.unwrap().len(), 3);
        let by_task = LogFilter { task: Some("k-2".into()), ..all_logs() };
        assert_eq!(store.query_logs(by_task).await.unwrap()[0].action, "task.sent");
        let by_event = LogFilter { event: Some("e-1".into()), limit: 2, ..all_logs() };
        assert_eq!(store.query_logs(by_event).await.unwrap().len(), 2);
        let after = LogFilter { after_id: Some(all[3].id), ..all_logs() };
        let followed: Vec<i64> = store.query_logs(after).await.unwrap().iter().map(|record| record.id).collect();
        assert_eq!(followed, [all[2].id, all[1].id, all[0].id]);
        let window = LogFilter { since: Some(all[4].ts), until: Some(all[0].ts + 1), ..all_logs() };
        assert_eq!(store.query_logs(window).await.unwrap().len(), 5);
        let none = LogFilter { until: Some(all[4].ts), ..all_logs() };
        assert!(store.query_logs(none).await.unwrap().is_empty());
    }

    /// Retention deletes old entries and finished events, but keeps delivery ids and signed
    /// digests for the redelivery window.
    async fn retention_keeps_what_dedup_needs(store) {
        store.record(AuditEntry::new("t", "event.received")).await.unwrap();
        let finished = inserted(&*store, event("github", None, None)).await;
        let delivered = inserted(&*store, event("github", Some("d-1"), None)).await;
        let open = inserted(&*store, event("github", None, None)).await;
        for id in [&finished.id, &delivered.id] {
            store.transition(id, EventState::Received, EventState::Skipped).await.unwrap();
        }
        store.insert_signed("github", [9; 32].into(), vec![event("github", Some("d-9"), None)]).await.unwrap();
        let later = timestamp::now() + 10;
        assert_eq!(store.prune_logs(timestamp::now_ms() + 10_000).await.unwrap(), 1);
        assert_eq!(store.prune_events(later).await.unwrap(), 1);
        assert_eq!(store.get(&finished.id).await.unwrap(), None);
        assert!(store.get(&delivered.id).await.unwrap().is_some(), "its delivery id is kept");
        assert!(store.get(&open.id).await.unwrap().is_some(), "unfinished events are kept");
        assert_eq!(store.prune_signed_deliveries(later).await.unwrap(), 0);
        assert!(matches!(
            store.insert_signed("github", [9; 32].into(), vec![event("github", Some("d-10"), None)]).await.unwrap(),
            SignedInsert::Replayed { .. }
        ));
    }

    /// After close, writes are refused and reads still work.
    async fn a_closed_store_refuses_writes_and_still_reads(store) {
        let record = inserted(&*store, event("github", Some("d-1"), None)).await;
        store.close().await.unwrap();
        assert!(matches!(store.insert(event("github", None, None)).await, Err(Error::Closed { .. })));
        assert!(matches!(store.record(AuditEntry::new("t", "x")).await, Err(Error::Closed { .. })));
        assert_eq!(store.get(&record.id).await.unwrap(), Some(record));
        store.close().await.unwrap();
    }

    /// Plugin installs are read back in the order of their changes, after a revision; each
    /// publication keeps the components its entry names and drops the others; a publication
    /// naming a component nobody stored changes nothing.
    async fn plugin_installs_are_shared_in_the_order_of_their_changes(store) {
        assert!(store.plugin_installs(0).await.unwrap().is_empty());
        let publication = |name: &str, entry: Option<&str>, named: &[&str], components: &[(&str, &[u8])]| {
            PluginPublication {
                name: name.into(),
                entry: entry.map(Into::into),
                named: named.iter().map(|sha| sha.to_string()).collect(),
                components: components.iter().map(|(sha, bytes)| (sha.to_string(), bytes.to_vec())).collect(),
            }
        };
        let first = store.publish_plugin(publication("echo", Some("{\"v\":1}"), &["a1"], &[("a1", b"one")])).await.unwrap();
        let second = store.publish_plugin(publication("greet", Some("{\"v\":1}"), &["b1"], &[("b1", b"hi")])).await.unwrap();
        assert!(second > first, "{first} {second}");
        assert_eq!(store.missing_components("echo", vec!["a1".into(), "a2".into()]).await.unwrap(), ["a2"]);
        // An upgrade keeps the old version for rollback and adds the new.
        let third = store.publish_plugin(publication("echo", Some("{\"v\":2}"), &["a2", "a1"], &[("a2", b"two")])).await.unwrap();
        let names = |installs: Vec<PluginInstall>| installs.into_iter().map(|install| (install.name, install.entry)).collect::<Vec<_>>();
        assert_eq!(
            names(store.plugin_installs(first).await.unwrap()),
            [("greet".into(), Some("{\"v\":1}".into())), ("echo".into(), Some("{\"v\":2}".into()))]
        );
        assert_eq!(names(store.plugin_installs(third).await.unwrap()), []);
        assert_eq!(store.plugin_component("echo", "a2").await.unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(store.plugin_component("greet", "a2").await.unwrap(), None);

        // Naming what is not stored fails and changes nothing.
        let refused = store.publish_plugin(publication("echo", Some("{\"v\":3}"), &["a3"], &[])).await;
        assert!(matches!(refused, Err(Error::PluginComponentMissing { ref sha256, .. }) if sha256 == "a3"), "{refused:?}");
        assert_eq!(names(store.plugin_installs(third).await.unwrap()), []);
        assert!(store.plugin_component("echo", "a1").await.unwrap().is_some());

        // A removal is a change too, and drops every component of the plugin.
        let removed = store.publish_plugin(publication("echo", None, &[], &[])).await.unwrap();
        let changes = store.plugin_installs(third).await.unwrap();
        assert_eq!(changes, [PluginInstall { revision: removed, name: "echo".into(), entry: None }]);
        assert!(store.missing_components("echo", vec!["a1".into()]).await.unwrap() == ["a1"]);
    }
}

/// Several PostgreSQL stores on one database, as several daemons share it: whichever receives a
/// delivery, a signed body or a dedup key first stores it, the others learn of it; of several
/// claims of one task, one wins.
mod shared_database {
    use super::*;

    /// Three stores on one fresh database, or `None` where PostgreSQL is not installed.
    async fn daemons() -> Option<Vec<Arc<PostgresStore>>> {
        let url = postgres_database().await?;
        // Opened together: their migrations take turns.
        let (a, b, c) = tokio::join!(
            PostgresStore::open(&url),
            PostgresStore::open(&url),
            PostgresStore::open(&url)
        );
        Some(
            [a, b, c]
                .into_iter()
                .map(|store| Arc::new(store.unwrap()))
                .collect(),
        )
    }

    /// Runs `attempt(store, n)` 30 times on each of the stores at once.
    async fn race<T: Send + 'static, F>(
        stores: &[Arc<PostgresStore>],
        attempt: impl Fn(Arc<PostgresStore>) -> F,
    ) -> Vec<T>
    where
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let mut handles = Vec::new();
        for _ in 0..30 {
            for store in stores {
                handles.push(tokio::spawn(attempt(Arc::clone(store))));
            }
        }
        let mut outcomes = Vec::new();
        for handle in handles {
            outcomes.push(handle.await.unwrap());
        }
        outcomes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_redelivery_to_another_daemon_is_a_duplicate() {
        let Some(stores) = daemons().await else {
            return;
        };
        let outcomes = race(&stores, |store| async move {
            store
                .insert(event("github", Some("d-1"), None))
                .await
                .unwrap()
        })
        .await;
        let stored: Vec<_> = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, InsertOutcome::Inserted(_)))
            .collect();
        assert_eq!(stored.len(), 1, "{outcomes:?}");
        let InsertOutcome::Inserted(first) = stored[0] else {
            unreachable!()
        };
        assert!(outcomes.iter().all(|outcome| match outcome {
            InsertOutcome::Inserted(record) => record.id == first.id,
            InsertOutcome::Duplicate { existing } => *existing == first.id,
        }));
    }

    /// Events arriving together share a transaction (`postgres/batch.rs`); one the database
    /// refuses (a NUL in its text) fails alone, and the others, duplicates included, get their
    /// own outcomes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_event_the_database_refuses_fails_alone_among_those_stored_together() {
        let Some(stores) = daemons().await else {
            return;
        };
        let mut handles = Vec::new();
        for n in 0..200 {
            let store = Arc::clone(&stores[n % 2]);
            handles.push(tokio::spawn(async move {
                // Every fifth repeats an earlier delivery.
                let delivery = if n % 5 == 4 { n - 2 } else { n };
                let mut new = event("generic", Some(&format!("d-{delivery}")), None);
                if n == 101 {
                    new.actor = "nul\0".into();
                }
                store.insert(new).await
            }));
        }
        let mut outcomes = Vec::new();
        for handle in handles {
            outcomes.push(handle.await.unwrap());
        }
        assert!(
            matches!(outcomes[101], Err(Error::Query { .. })),
            "{:?}",
            outcomes[101]
        );
        let inserted: Vec<EventId> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Ok(InsertOutcome::Inserted(record)) => Some(record.id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(inserted.len(), 159, "200 requests, 40 repeats, 1 refused");
        let filter = EventFilter {
            limit: 500,
            ..EventFilter::default()
        };
        let mut stored = event_ids(&*stores[1], filter).await;
        stored.sort();
        let mut expected = inserted.clone();
        expected.sort();
        assert_eq!(stored, expected);
        for outcome in &outcomes {
            if let Ok(InsertOutcome::Duplicate { existing }) = outcome {
                assert!(inserted.contains(existing), "{existing}");
            }
        }
    }

    /// An operator's requeue, and leases released, through one daemon's store change the
    /// notices of another's once committed: its due scans look at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn work_made_due_through_one_daemon_notifies_the_others() {
        let Some(stores) = daemons().await else {
            return;
        };
        let mut notices = stores[1].task_notices().expect("PostgreSQL notifies");
        let notified = |notices: &mut tokio::sync::watch::Receiver<u64>| {
            let mut notices = notices.clone();
            async move {
                tokio::time::timeout(std::time::Duration::from_secs(30), notices.changed())
                    .await
                    .expect("notified")
                    .unwrap();
            }
        };
        // The listener counts one when it starts listening.
        notified(&mut notices).await;
        notices.mark_unchanged();

        let record = task(&*stores[0], "reviewer", None).await;
        stores[0]
            .fail_task(&record.id, None, "no such worker".into())
            .await
            .unwrap();
        assert!(
            !notices.has_changed().unwrap(),
            "a failure makes nothing due"
        );
        stores[0].requeue_failed(&record.id).await.unwrap();
        notified(&mut notices).await;
        notices.mark_unchanged();

        let lease = Lease {
            owner: "gone".into(),
            until: 0,
        };
        stores[2].claim_task(&record.id, lease).await.unwrap();
        let released = stores[0]
            .release_leases(timestamp::now_ms(), None)
            .await
            .unwrap();
        assert_eq!(released.len(), 1);
        notified(&mut notices).await;
    }

    /// Publications from several daemons take revisions in commit order with no gap, so a
    /// daemon reading "after the last I applied" while others publish misses none: each read
    /// here, taken while the publications run, is a prefix of the final order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn plugin_installs_from_several_daemons_are_read_without_gaps() {
        let Some(stores) = daemons().await else {
            return;
        };
        let reader = Arc::clone(&stores[0]);
        let watching = tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < 90 {
                let after = seen.last().copied().unwrap_or(0);
                let installs = reader.plugin_installs(after).await.unwrap();
                seen.extend(installs.iter().map(|install| install.revision));
            }
            seen
        });
        let revisions = race(&stores, |store| async move {
            let name = EventId::generate().unwrap().to_string();
            store
                .publish_plugin(PluginPublication {
                    name,
                    entry: Some("{}".into()),
                    ..PluginPublication::default()
                })
                .await
                .unwrap()
        })
        .await;
        let mut sorted = revisions.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=90).collect::<Vec<i64>>());
        let seen = tokio::time::timeout(std::time::Duration::from_secs(60), watching)
            .await
            .expect("the reader saw every publication")
            .unwrap();
        assert_eq!(seen, (1..=90).collect::<Vec<i64>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_dedup_key_and_a_signed_body_are_taken_once() {
        let Some(stores) = daemons().await else {
            return;
        };
        let keyed = race(&stores, |store| async move {
            let delivery = EventId::generate().unwrap().to_string();
            store
                .insert(event("github", Some(&delivery), Some("acme/widgets#7")))
                .await
                .unwrap()
        })
        .await;
        let inserted = keyed
            .iter()
            .filter(|outcome| matches!(outcome, InsertOutcome::Inserted(_)))
            .count();
        assert_eq!(inserted, 1, "{keyed:?}");
        let signed = race(&stores, |store| async move {
            let delivery = EventId::generate().unwrap().to_string();
            store
                .insert_signed(
                    "github",
                    [3; 32].into(),
                    vec![event("github", Some(&delivery), None)],
                )
                .await
                .unwrap()
        })
        .await;
        let stored = signed
            .iter()
            .filter(|outcome| matches!(outcome, SignedInsert::Stored(_)))
            .count();
        assert_eq!(stored, 1, "{signed:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_task_is_claimed_by_one_daemon_only() {
        let Some(stores) = daemons().await else {
            return;
        };
        let record = task(&*stores[0], "reviewer", None).await;
        let id = record.id.clone();
        let claims = race(&stores, move |store| {
            let id = id.clone();
            async move {
                let owner = format!("daemon-{:p}", Arc::as_ptr(&store));
                store
                    .claim_task(&id, lease(&owner))
                    .await
                    .map(|task| task.lease)
            }
        })
        .await;
        let won: Vec<_> = claims
            .iter()
            .filter_map(|claim| claim.as_ref().ok())
            .collect();
        assert_eq!(won.len(), 1, "{claims:?}");
        assert!(
            claims
                .iter()
                .filter(|claim| claim.is_err())
                .all(|claim| matches!(claim, Err(Error::InvalidTaskTransition { .. })))
        );
        let stored = stores[2].get_task(&record.id).await.unwrap().unwrap();
        assert_eq!(&stored.lease, won[0]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_name_the_database_without_its_password() {
        if !mecha_test_postgres::available() {
            return;
        }
        let server = tokio::task::spawn_blocking(mecha_test_postgres::shared)
            .await
            .unwrap();
        let wrong = server.url("no_such_database");
        let error = PostgresStore::open(&wrong)
            .await
            .err()
            .expect("no such database");
        let text = format!("{error} {error:?}");
        assert!(matches!(error, Error::Connect { .. }), "{text}");
        assert!(
            text.contains(&format!("127.0.0.1:{}/no_such_database", server.port())),
            "{text}"
        );
        assert!(!text.contains(server.password()), "{text}");
        let malformed = format!(
            "postgres://mecha:{}@127.0.0.1:notaport/x",
            server.password()
        );
        let error = PostgresStore::open(&malformed)
            .await
            .err()
            .expect("not a port");
        let text = format!("{error} {error:?}");
        assert!(matches!(error, Error::InvalidUrl { .. }), "{text}");
        assert!(!text.contains(server.password()), "{text}");
    }
}
