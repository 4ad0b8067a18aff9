//! Three daemons on one PostgreSQL database, as an organisation runs them behind a load
//! balancer: signed webhooks spread over all three with redeliveries mixed in, one daemon
//! killed with `kill -9` under load and started again, a schedule every daemon ticks; then no
//! acknowledged event is lost, each event has one task, done once, each write-back posted
//! once, and each tick stored once. The database is a real PostgreSQL the test starts on
//! loopback; GitHub is the API stand-in of `support::forge`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mecha::store::{EventFilter, EventState, PostgresStore, Store, TaskFilter, TaskState};

use crate::support::daemon::{Daemon, GITHUB_SECRET, Home, get_json, running_sha256};
use crate::support::fixtures;
use crate::support::forge::GitHub;
use crate::support::worker::{Answer, TestWorker};

const TOKEN: &str = "ghp_clusterTokenNeverShown0123456789abcd";

/// Webhook requests sent in all, redeliveries included.
const REQUESTS: usize = 1_000;

/// Every tenth request repeats the delivery sent five requests before, to another daemon.
fn delivery_of(request: usize) -> usize {
    if request % 10 == 9 {
        request - 5
    } else {
        request
    }
}

/// The `pull_request.opened` fixture as delivery `n`, for pull request `n + 1`: each event has
/// a pull request of its own, so each write-back posts one comment on its own thread.
fn pull_request(n: usize) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(&fixtures::read(
        "github",
        "pull_request__opened.payload.json",
    ))
    .expect("json");
    json["number"] = (n + 1).into();
    json["pull_request"]["number"] = (n + 1).into();
    serde_json::to_vec(&json).expect("encoded")
}

/// Posts request `request` to `daemon`; the delivery id if it was acknowledged.
async fn post(daemon_url: String, request: usize) -> Option<usize> {
    let delivery = delivery_of(request);
    let response = reqwest::Client::new()
        .post(format!("{daemon_url}/webhook/github"))
        .header("X-GitHub-Event", "pull_request")
        .header("X-GitHub-Delivery", format!("cluster-{delivery}"))
        .header(
            "X-Hub-Signature-256",
            mecha::signature::github_signature(GITHUB_SECRET.as_bytes(), &pull_request(delivery)),
        )
        .header("Content-Type", "application/json")
        .body(pull_request(delivery))
        .send()
        .await
        .ok()?;
    response.status().is_success().then_some(delivery)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_database_lose_and_repeat_nothing_through_a_crash() {
    if !mecha_test_postgres::available() {
        return;
    }
    let url = tokio::task::spawn_blocking(|| mecha_test_postgres::shared().fresh_database())
        .await
        .expect("a database");
    let github = GitHub::start(TOKEN).await;
    let result = serde_json::json!({ "comment": { "body": "reviewed" } }).to_string();
    // 30 ms a task: the killed daemon has tasks in flight when it dies.
    let answer = Answer::Slow {
        after: Duration::from_millis(30),
        body: result,
    };
    let worker = TestWorker::scripted(Vec::new(), answer).await;
    let config = format!(
        "database_url: {url}\n\
         dispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n  lease_ms: 1000\n\
         sources:\n  github:\n    api_url: {base}\n    allow_private_network: true\n\
         responders:\n  github:\n    api_url: {base}\n\
         triggers:\n  heartbeat:\n    schedule: \"@every 2s\"\n",
        base = github.base
    );
    let homes: Vec<Home> = (0..3)
        .map(|_| {
            let home = Home::new(&config);
            home.write_secrets(&format!(
                "github:\n  webhook_secret: {GITHUB_SECRET}\n  token: {TOKEN}\n"
            ));
            home
        })
        .collect();
    // Defined once, through one daemon's CLI: the others see it in the shared database.
    homes[0].add_worker(&format!(
        "name: reviewer\nendpoint: {}\nconcurrency: 8\nrate_limit:\n  per_second: 100000\n  burst: 100000\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: review\n",
        worker.endpoint
    ));
    let started = Instant::now();
    // Started a second apart: a schedule counted from each daemon's start would tick at
    // other instants on each.
    let mut daemons: Vec<Option<Daemon>> = Vec::new();
    for home in &homes {
        daemons.push(Some(Daemon::start(home)));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let mut acknowledged = BTreeSet::new();
    for chunk in (0..REQUESTS).collect::<Vec<_>>().chunks(12) {
        let first = chunk[0];
        if first == 696 {
            daemons[1] = Some(Daemon::start(&homes[1]));
        }
        let mut sends = tokio::task::JoinSet::new();
        for &request in chunk {
            // Round robin over the daemons running, as a load balancer would.
            let running: Vec<&Daemon> = daemons.iter().flatten().collect();
            let daemon = running[request % running.len()];
            sends.spawn(post(daemon.base.clone(), request));
        }
        if first == 396 {
            // Killed under load: requests to it in flight, its tasks at the worker.
            tokio::time::sleep(Duration::from_millis(20)).await;
            daemons[1].take().expect("running").kill();
        }
        while let Some(sent) = sends.join_next().await {
            acknowledged.extend(sent.expect("send task"));
        }
    }

    let store: Arc<dyn Store> = Arc::new(PostgresStore::open(&url).await.expect("the database"));
    let events = match wait_until_finished(&store, acknowledged.len()).await {
        Ok(events) => events,
        Err(stuck) => {
            let logs: Vec<String> = daemons.iter().flatten().map(Daemon::log).collect();
            panic!("{stuck}\n{}", logs.join("\n----\n"));
        }
    };
    let mut stored_deliveries = BTreeMap::new();
    for event in &events {
        *stored_deliveries
            .entry(event.delivery_id.clone())
            .or_insert(0) += 1;
    }
    for delivery in &acknowledged {
        assert_eq!(
            stored_deliveries.get(&format!("cluster-{delivery}")),
            Some(&1),
            "acknowledged delivery {delivery} is stored once"
        );
    }
    assert!(
        events
            .iter()
            .all(|event| event.state == EventState::Completed),
        "{events:?}"
    );

    let tasks = store
        .list_tasks(TaskFilter {
            limit: mecha::store::MAX_LIST_LIMIT,
            ..TaskFilter::default()
        })
        .await
        .expect("tasks");
    assert_eq!(tasks.len(), events.len(), "one task per event");
    let received = worker.received();
    let mut sends_per_task: BTreeMap<String, u32> = BTreeMap::new();
    for request in &received {
        *sends_per_task
            .entry(request["id"].as_str().expect("id").to_owned())
            .or_insert(0) += 1;
    }
    for task in &tasks {
        assert_eq!(task.state, TaskState::Completed, "{task:?}");
        assert_eq!(
            task.write_back,
            mecha::store::WriteBackState::Done,
            "{task:?}"
        );
        let sent = sends_per_task.get(task.id.as_str()).copied().unwrap_or(0);
        // Sent once, or again only after the daemon holding it died with the task in
        // flight: that lost attempt is counted.
        assert!(
            sent >= 1 && sent <= task.attempts + 1,
            "{task:?} was sent {sent} times"
        );
        let number = task.context["number"].as_u64().expect("number");
        let comments = github.comments("Codertocat", "Hello-World", number);
        assert_eq!(comments.len(), 1, "pull request {number}: {comments:?}");
    }
    let resent = received.len() - tasks.len();
    assert!(
        resent <= 64,
        "{resent} tasks sent again, more than were in flight"
    );

    // Each daemon ticked every two seconds; each tick was stored once, by whichever came first.
    let ticks = events_of(&store, "cron").await;
    let ticking = started.elapsed();
    let distinct: BTreeSet<&str> = ticks.iter().map(|tick| tick.delivery_id.as_str()).collect();
    assert_eq!(distinct.len(), ticks.len());
    // One every two seconds, not one every two seconds per daemon.
    assert!(
        !ticks.is_empty() && ticks.len() as u64 <= ticking.as_secs() / 2 + 1,
        "{} ticks in {ticking:?}",
        ticks.len()
    );
    eprintln!(
        "{} requests, {} deliveries acknowledged, {} tasks, {resent} sent again after the crash, {} ticks in {ticking:?}",
        REQUESTS,
        acknowledged.len(),
        tasks.len(),
        ticks.len()
    );
    // Each daemon's /metrics shows its own claims, and no lease held once all is done.
    for daemon in daemons.iter().flatten() {
        let (_, metrics) = get_json(daemon, "/metrics").await;
        let metrics = metrics.as_str().expect("text").to_owned();
        let claimed = metric(&metrics, "mecha_tasks_claimed");
        assert!(claimed > 0, "{metrics}");
        assert_eq!(metric(&metrics, "mecha_leases_held"), 0, "{metrics}");
    }
    for daemon in daemons.into_iter().flatten() {
        let log = daemon.stop();
        assert!(
            !log.contains(mecha_test_postgres::shared().password()),
            "{log}"
        );
    }
}

/// The stored events of `source`, newest first.
async fn events_of(store: &Arc<dyn Store>, source: &str) -> Vec<mecha::store::EventSummary> {
    store
        .list_summaries(EventFilter {
            source: Some(source.into()),
            limit: mecha::store::MAX_LIST_LIMIT,
            ..EventFilter::default()
        })
        .await
        .expect("events")
}

/// The value of the metric `name` in Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Waits until at least `count` webhook events are stored and every one has finished; what is
/// stuck, if they do not within two minutes.
async fn wait_until_finished(
    store: &Arc<dyn Store>,
    count: usize,
) -> Result<Vec<mecha::store::EventSummary>, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let events = events_of(store, "github").await;
        let finished = events
            .iter()
            .all(|event| event.state == EventState::Completed);
        if events.len() >= count && finished {
            return Ok(events);
        }
        if Instant::now() > deadline {
            let mut states: BTreeMap<String, usize> = BTreeMap::new();
            for event in &events {
                *states.entry(event.state.to_string()).or_insert(0) += 1;
            }
            let tasks = store
                .list_tasks(TaskFilter {
                    limit: mecha::store::MAX_LIST_LIMIT,
                    ..TaskFilter::default()
                })
                .await
                .expect("tasks");
            let mut task_states: BTreeMap<String, usize> = BTreeMap::new();
            for task in &tasks {
                *task_states
                    .entry(format!("{}/{}", task.state, task.write_back))
                    .or_insert(0) += 1;
            }
            let stuck: Vec<_> = tasks
                .iter()
                .filter(|task| task.state != TaskState::Completed)
                .take(3)
                .collect();
            return Err(format!(
                "{} of {count} events, by state {states:?}; tasks by state {task_states:?}: {stuck:?}",
                events.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The CLI works against the database `database_url` names, as the daemon does: workers added
/// through one home are listed through another, `mecha doctor` reports the server and the
/// schema, and nothing the CLI prints shows the database's password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_doctor_use_the_configured_postgres_database() {
    if !mecha_test_postgres::available() {
        return;
    }
    let (url, password, port) = tokio::task::spawn_blocking(|| {
        let server = mecha_test_postgres::shared();
        (
            server.fresh_database(),
            server.password().to_owned(),
            server.port(),
        )
    })
    .await
    .expect("a database");
    let config = format!("database_url: {url}\n");
    let (one, other) = (Home::new(&config), Home::new(&config));
    let worker = TestWorker::start("ok").await;
    one.add_worker(&format!(
        "name: shared\nendpoint: {}\nevents:\n  - source: generic\n    on: [job]\n    prompt: job\n",
        worker.endpoint
    ));
    let (ok, listed, stderr) = other.mecha(&["worker", "ls"]);
    assert!(ok, "{stderr}");
    assert!(listed.contains("shared"), "{listed}");

    let (_, report, stderr) = other.mecha(&["doctor"]);
    assert!(
        report.contains(&format!("@127.0.0.1:{port}/"))
            && report.contains("PostgreSQL ")
            && report.contains("schema version ")
            && !report.contains("this mecha expects"),
        "{report}{stderr}"
    );
    for text in [&listed, &report, &stderr] {
        assert!(!text.contains(&password), "{text}");
    }

    // A database that cannot be reached is a clear error without the password.
    let unreachable = format!("postgres://mecha:{password}@127.0.0.1:1/mecha");
    let broken = Home::new(&format!("database_url: {unreachable}\n"));
    let (ok, stdout, stderr) = broken.mecha(&["events", "ls"]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(&password) && !stderr.contains(&password),
        "{stderr}"
    );
    let refused = broken.serve_refused();
    assert!(!refused.contains(&password), "{refused}");
}

/// Waits until every daemon of `daemons` runs `sha256` as the source plugin `name` (`None`:
/// runs none of that name).
async fn wait_running(daemons: &[&Daemon], name: &str, sha256: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for daemon in daemons {
        loop {
            let running = running_sha256(daemon, name, "source").await;
            if running.as_deref() == sha256 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {running:?}, not {sha256:?}\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Plugin installs made through one daemon's home reach every daemon of the database, without
/// a restart: an install, an upgrade, a rollback and a removal; a daemon started later gets
/// them at its start; a plugin installed on a home before it used the database is shared when
/// its daemon starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_installs_made_through_one_daemon_reach_the_others() {
    if !mecha_test_postgres::available() {
        return;
    }
    let url = tokio::task::spawn_blocking(|| mecha_test_postgres::shared().fresh_database())
        .await
        .expect("a database");
    let config = format!("database_url: {url}\n");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("versioned.wasm");
    let text = |path: &std::path::Path| path.to_str().expect("utf-8").to_owned();

    // Installed while this home still had its own database.
    let late = Home::new("");
    let tally = crate::support::plugins::path("tally");
    let (ok, _, stderr) = late.mecha(&["plugin", "install", "--yes", &text(&tally)]);
    assert!(ok, "{stderr}");
    late.write_config(&config);

    let first = Home::new(&config);
    let second = Home::new(&config);
    let a = Daemon::start(&first);
    let b = Daemon::start(&second);

    std::fs::copy(crate::support::plugins::versioned(1), &file).expect("copied");
    let one = mecha::digest::sha256_hex(&std::fs::read(&file).expect("read"));
    let (ok, stdout, stderr) = first.mecha(&["plugin", "install", "--yes", &text(&file)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("shared with every daemon"), "{stdout}");
    wait_running(&[&a, &b], "versioned", Some(&one)).await;
    // The second home holds it as installed, with what was granted through the first.
    let entry = second
        .installed("versioned")
        .expect("installed on the second home");
    assert_eq!(entry["sha256"], one);

    std::fs::copy(crate::support::plugins::versioned(2), &file).expect("copied");
    let two = mecha::digest::sha256_hex(&std::fs::read(&file).expect("read"));
    let (ok, _, stderr) = first.mecha(&["plugin", "upgrade", "versioned", "--yes"]);
    assert!(ok, "{stderr}");
    wait_running(&[&a, &b], "versioned", Some(&two)).await;
    assert_eq!(
        second.installed("versioned").expect("installed")["hosts"],
        serde_json::json!(["https://api.upgrade.example"])
    );

    // A rollback through the second home reaches the first: the version kept for it was
    // shared with the upgrade.
    let (ok, _, stderr) = second.mecha(&["plugin", "rollback", "versioned"]);
    assert!(ok, "{stderr}");
    wait_running(&[&a, &b], "versioned", Some(&one)).await;

    // A daemon started now gets what was shared before, and shares what it had.
    let c = Daemon::start(&late);
    wait_running(&[&c], "versioned", Some(&one)).await;
    let tally_sha = mecha::digest::sha256_hex(&std::fs::read(&tally).expect("read"));
    wait_running(&[&a, &b, &c], "tally", Some(&tally_sha)).await;

    let (ok, _, stderr) = first.mecha(&["plugin", "rm", "versioned"]);
    assert!(ok, "{stderr}");
    wait_running(&[&a, &b, &c], "versioned", None).await;
    assert!(second.installed("versioned").is_none());
    for daemon in [a, b, c] {
        let log = daemon.stop();
        assert!(!log.contains("could not apply"), "{log}");
    }
}
