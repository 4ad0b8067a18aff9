//! Managed workers on the real Docker engine: containers started, hardened, sent tasks from
//! webhooks, stopped, removed, restarted after being killed, and one per task for disposable
//! workers. The image is built from scratch around a static `mecha-worker` (echo backend).

use std::time::Duration;

use crate::support::daemon::{Daemon, Home, get_json, send_github, wait_tasks};
use crate::support::docker::{self, IMAGE, containers_of, inspect};
use crate::support::fixtures;

/// Probes and retries in milliseconds, so the tests do not wait for production delays.
const FAST: &str =
    "dispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n";

/// The key mecha and the container share; it must never show in what mecha prints.
const WORKER_KEY: &str = "worker-key-canary-5b1e";

/// Adds the managed worker `yaml` describes (its name on the first line).
fn add(home: &Home, name: &str, yaml: &str) {
    let path = home.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("worker file");
    let (ok, stdout, stderr) = home.mecha(&["worker", "add", path.to_str().expect("utf-8")]);
    assert!(ok, "worker add {name}: {stderr}");
    assert!(
        stdout.contains(&format!("added {name} (managed)")),
        "{stdout}"
    );
}

fn managed_worker(name: &str, workspace: &std::path::Path, extra: &str) -> String {
    format!(
        "name: {name}\ndocker:\n  image: {IMAGE}\n  cwd: {}\n  api_key: {WORKER_KEY}\n{extra}\
         events:\n  - source: github\n    on: [pull_request.opened]\n    prompt: \"Review {{{{ number }}}} for {name}\"\n",
        workspace.display()
    )
}

/// Polls `GET /workers` until `name` is in `state`.
async fn wait_state(daemon: &Daemon, name: &str, state: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..600 {
        let (_, workers) = get_json(daemon, "/workers").await;
        if let Some(worker) = workers
            .as_array()
            .and_then(|all| all.iter().find(|worker| worker["name"] == name))
        {
            if worker["state"] == state {
                return worker.clone();
            }
            last = worker.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{name} never reached {state}; last seen {last}\n{}",
        daemon.log()
    );
}

/// Polls the audit trail of worker `name` until `count` records of `action` exist.
async fn wait_logs(
    daemon: &Daemon,
    name: &str,
    action: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let query = format!("/logs?trace=worker:{name}&action={action}");
    let mut records = Vec::new();
    for _ in 0..600 {
        let (_, logs) = get_json(daemon, &query).await;
        records = logs.as_array().cloned().unwrap_or_default();
        if records.len() >= count {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {count} {action} records, found {records:?}\n{}",
        daemon.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_worker_runs_hardened_takes_a_webhook_task_and_is_removed() {
    if !docker::ready("a_managed_worker_runs_hardened_takes_a_webhook_task_and_is_removed") {
        return;
    }
    docker::clean("boxed");
    let workspace = tempfile::tempdir().expect("workspace");
    let home = Home::new(FAST);
    add(
        &home,
        "boxed",
        &managed_worker("boxed", workspace.path(), ""),
    );

    let (ok, stdout, stderr) = home.mecha(&["worker", "start", "boxed"]);
    assert!(ok, "worker start: {stderr}");
    assert!(
        stdout.starts_with("started boxed (container ") && stdout.contains("at http://127.0.0.1:"),
        "{stdout}"
    );

    // The hardening, as Docker reports it.
    let container = inspect("mecha-worker-boxed").expect("the container exists");
    let config = &container["HostConfig"];
    assert_eq!(container["Config"]["User"], container_user());
    assert_eq!(config["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(
        config["SecurityOpt"],
        serde_json::json!(["no-new-privileges:true"])
    );
    assert_eq!(config["PidsLimit"], 1024);
    let binding = &config["PortBindings"]["8080/tcp"][0];
    assert_eq!(binding["HostIp"], "127.0.0.1", "{binding}");
    let published = &container["NetworkSettings"]["Ports"]["8080/tcp"][0];
    assert_eq!(published["HostIp"], "127.0.0.1", "{published}");
    let mount = format!(
        "{}:/workspace",
        workspace.path().canonicalize().expect("path").display()
    );
    assert_eq!(config["Binds"], serde_json::json!([mount]));
    assert_eq!(container["Config"]["Labels"]["mecha.worker"], "boxed");
    let env: Vec<&str> = container["Config"]["Env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|entry| entry.as_str())
        .collect();
    assert!(env.contains(&"HOME=/tmp"), "{env:?}");

    // Online, and a webhook becomes a task the container answers (the echo backend returns the
    // prompt, and it checks the API key).
    let (ok, listed, _) = home.mecha(&["worker", "ls", "--json"]);
    assert!(ok);
    assert!(
        !listed.contains(WORKER_KEY),
        "the key is never shown: {listed}"
    );
    let daemon = Daemon::start(&home);
    wait_state(&daemon, "boxed", "online").await;
    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&daemon, "pull_request", "docker-1", &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id");
    let done = wait_tasks(&daemon, &format!("event={event_id}&state=completed"), 1).await;
    assert_eq!(done[0]["worker_name"], "boxed");
    assert_eq!(done[0]["result"]["output"], "Review 2 for boxed");
    assert_eq!(done[0]["result"]["metadata"]["backend"], "echo");
    drop(daemon);

    let (ok, stdout, stderr) = home.mecha(&["worker", "stop", "boxed"]);
    assert!(ok, "worker stop: {stderr}");
    assert_eq!(stdout.trim(), "stopped boxed (container)");
    let stopped = inspect("mecha-worker-boxed").expect("kept until removed");
    assert_eq!(stopped["State"]["Running"], false);

    let (ok, stdout, stderr) = home.mecha(&["worker", "remove", "boxed"]);
    assert!(ok, "worker remove: {stderr}");
    assert_eq!(stdout.trim(), "removed boxed");
    assert!(
        inspect("mecha-worker-boxed").is_none(),
        "the container is gone"
    );
    assert!(containers_of("boxed").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_killed_from_outside_is_marked_error_restarted_and_serves_again() {
    if !docker::ready("a_container_killed_from_outside_is_marked_error_restarted_and_serves_again")
    {
        return;
    }
    docker::clean("phoenix");
    let workspace = tempfile::tempdir().expect("workspace");
    let home = Home::new(FAST);
    add(
        &home,
        "phoenix",
        &managed_worker("phoenix", workspace.path(), ""),
    );
    let (ok, _, stderr) = home.mecha(&["worker", "start", "phoenix"]);
    assert!(ok, "worker start: {stderr}");
    let daemon = Daemon::start(&home);
    wait_state(&daemon, "phoenix", "online").await;

    docker::docker(&["kill", "mecha-worker-phoenix"]).expect("docker kill");
    // The worker is in error only until the restarted container answers, which may be quicker
    // than a poll of its state: the audit trail records both moves.
    let restarts = wait_logs(&daemon, "phoenix", "worker.restarted", 1).await;
    assert_eq!(restarts.len(), 1, "one restart: {restarts:?}");
    let failures = wait_logs(&daemon, "phoenix", "worker.state", 1).await;
    assert!(
        failures.iter().any(|record| record["error"]
            .as_str()
            .is_some_and(|error| error.contains("exit code 137"))),
        "the kill is recorded as the reason: {failures:?}"
    );
    wait_state(&daemon, "phoenix", "online").await;

    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&daemon, "pull_request", "docker-2", &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id");
    let done = wait_tasks(&daemon, &format!("event={event_id}&state=completed"), 1).await;
    assert_eq!(done[0]["result"]["output"], "Review 2 for phoenix");
    drop(daemon);
    let (ok, _, stderr) = home.mecha(&["worker", "remove", "phoenix"]);
    assert!(ok, "worker remove: {stderr}");
    assert!(containers_of("phoenix").is_empty());
}

/// Two daemons share one database (here a SQLite file named by the second's `database_url`).
/// The managed worker's container belongs to the daemon whose home started it: only that daemon
/// restarts it when it dies, while both send it tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_worker_is_reconciled_only_by_the_daemon_that_started_it() {
    if !docker::ready("a_managed_worker_is_reconciled_only_by_the_daemon_that_started_it") {
        return;
    }
    docker::clean("twin");
    let workspace = tempfile::tempdir().expect("workspace");
    let owner = Home::new(FAST);
    add(
        &owner,
        "twin",
        &managed_worker("twin", workspace.path(), ""),
    );
    let (ok, _, stderr) = owner.mecha(&["worker", "start", "twin"]);
    assert!(ok, "worker start: {stderr}");
    let database = owner.path().join("mecha.db");
    let other = Home::new(&format!(
        "{FAST}database_url: sqlite://{}\n",
        database.display()
    ));
    let running = Daemon::start(&owner);
    let bystander = Daemon::start(&other);
    wait_state(&bystander, "twin", "online").await;

    docker::docker(&["kill", "mecha-worker-twin"]).expect("docker kill");
    wait_logs(&running, "twin", "worker.restarted", 1).await;
    wait_state(&running, "twin", "online").await;
    // Many health intervals of both daemons: still the one restart, by the owner.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, restarts) = get_json(
        &bystander,
        "/logs?trace=worker:twin&action=worker.restarted",
    )
    .await;
    assert_eq!(restarts.as_array().map(Vec::len), Some(1), "{restarts}");
    assert!(
        !bystander
            .log()
            .contains("restarted a stopped worker container"),
        "{}",
        bystander.log()
    );

    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&bystander, "pull_request", "docker-twin", &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id");
    let done = wait_tasks(&bystander, &format!("event={event_id}&state=completed"), 1).await;
    assert_eq!(done[0]["result"]["output"], "Review 2 for twin");
    drop((running, bystander));
    let (ok, _, stderr) = owner.mecha(&["worker", "remove", "twin"]);
    assert!(ok, "worker remove: {stderr}");
    assert!(containers_of("twin").is_empty());
}

/// A container that cannot come back (allowed a single process, the worker cannot start its
/// threads and exits at once) is restarted at most its `restart` budget of times in a row, and
/// the count survives a `kill -9` of the daemon: the restarted daemon does not give the loop a
/// fresh budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_container_keeps_its_restart_budget_across_a_daemon_restart() {
    if !docker::ready("a_crash_looping_container_keeps_its_restart_budget_across_a_daemon_restart")
    {
        return;
    }
    docker::clean("looper");
    let workspace = tempfile::tempdir().expect("workspace");
    let home = Home::new(
        "dispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 400\n",
    );
    add(
        &home,
        "looper",
        &managed_worker("looper", workspace.path(), "  restart: on-failure:3\n"),
    );
    let (ok, _, stderr) = home.mecha(&["worker", "start", "looper"]);
    assert!(ok, "worker start: {stderr}");
    let daemon = Daemon::start(&home);
    wait_state(&daemon, "looper", "online").await;

    docker::docker(&["update", "--pids-limit", "1", "mecha-worker-looper"]).expect("docker update");
    docker::docker(&["kill", "mecha-worker-looper"]).expect("docker kill");
    let first = wait_logs(&daemon, "looper", "worker.restarted", 1).await;
    daemon.kill();
    let before = first.len();
    assert!(
        before < 3,
        "some of the budget is left for the restarted daemon"
    );

    let daemon = Daemon::start(&home);
    let mut given_up = false;
    for _ in 0..1200 {
        let looper = wait_state(&daemon, "looper", "error").await;
        if looper["error"]
            .as_str()
            .is_some_and(|error| error.contains("restarted 3 times in a row"))
        {
            given_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(given_up, "the loop is given up\n{}", daemon.log());
    // Each restart is numbered within the budget; numbers go on across the daemon restart
    // instead of starting again at 1 (a record may be missing: the kill can fall between a
    // restart and its record).
    let records = wait_logs(&daemon, "looper", "worker.restarted", 2).await;
    let mut attempts: Vec<u64> = records
        .iter()
        .filter_map(|record| record["attempt"].as_u64())
        .collect();
    attempts.sort_unstable();
    let numbered = attempts.len();
    attempts.dedup();
    assert_eq!(attempts.len(), numbered, "no attempt twice: {records:?}");
    assert_eq!(attempts.last(), Some(&3), "{records:?}");
    drop(daemon);
    let (ok, _, stderr) = home.mecha(&["worker", "remove", "looper"]);
    assert!(ok, "worker remove: {stderr}");
    assert!(containers_of("looper").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disposable_worker_runs_each_task_in_a_container_that_is_then_removed() {
    if !docker::ready("a_disposable_worker_runs_each_task_in_a_container_that_is_then_removed") {
        return;
    }
    docker::clean("oneshot");
    let workspace = tempfile::tempdir().expect("workspace");
    let home = Home::new(FAST);
    add(
        &home,
        "oneshot",
        &managed_worker("oneshot", workspace.path(), "  lifecycle: disposable\n"),
    );
    let (ok, stdout, stderr) = home.mecha(&["worker", "start", "oneshot"]);
    assert!(ok, "worker start: {stderr}");
    assert_eq!(
        stdout.trim(),
        "started oneshot (disposable: one container per task)"
    );
    assert!(
        containers_of("oneshot").is_empty(),
        "no container before a task"
    );

    // A container an earlier daemon of this home left behind is removed at start; one of
    // another home's daemon on the same engine is not.
    let owner = format!(
        "mecha.owner={}",
        mecha::config::home::Home::at(home.path()).id()
    );
    for (name, owner) in [
        ("mecha-disposable-oneshot-leftover", owner.as_str()),
        (
            "mecha-disposable-oneshot-foreign",
            "mecha.owner=0000000000000000",
        ),
    ] {
        docker::docker(&[
            "create",
            "--name",
            name,
            "--label",
            "mecha.worker=oneshot",
            "--label",
            "mecha.lifecycle=disposable",
            "--label",
            owner,
            IMAGE,
        ])
        .expect("docker create");
    }
    let daemon = Daemon::start(&home);
    assert_eq!(
        containers_of("oneshot"),
        ["mecha-disposable-oneshot-foreign"],
        "the left-over container is removed before the daemon is ready, the foreign one kept"
    );
    docker::docker(&["rm", "--force", "mecha-disposable-oneshot-foreign"]).expect("docker rm");

    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&daemon, "pull_request", "docker-3", &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().expect("id");
    let done = wait_tasks(&daemon, &format!("event={event_id}&state=completed"), 1).await;
    assert_eq!(done[0]["result"]["output"], "Review 2 for oneshot");
    // Removal follows the answer closely; allow it a moment.
    for _ in 0..100 {
        if containers_of("oneshot").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        containers_of("oneshot").is_empty(),
        "no container is left behind: {:?}",
        containers_of("oneshot")
    );
}

#[test]
fn without_a_docker_engine_commands_say_how_to_fix_it() {
    let workspace = tempfile::tempdir().expect("workspace");
    let home = Home::new(FAST);
    let missing = workspace.path().join("no-docker.sock");
    let yaml = managed_worker(
        "stranded",
        workspace.path(),
        &format!("  host: unix://{}\n", missing.display()),
    );
    add(&home, "stranded", &yaml);
    let (ok, _, stderr) = home.mecha(&["worker", "start", "stranded"]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "cannot reach Docker at unix://{}",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("DOCKER_HOST"),
        "says how to fix it: {stderr}"
    );
    let (ok, stdout, _) = home.mecha(&["doctor"]);
    assert!(!ok, "a managed worker without its engine fails doctor");
    assert!(stdout.contains("[FAIL] cannot reach Docker"), "{stdout}");
    // Other commands are unaffected.
    let (ok, listed, stderr) = home.mecha(&["worker", "ls"]);
    assert!(ok, "{stderr}");
    assert!(listed.contains("stranded"), "{listed}");
}

/// `uid:gid` of the user running the tests, which containers must run as; 65534:65534 (nobody)
/// when that is root, as the workspaces here are root's too (see `tests/security/workers.rs`).
fn container_user() -> String {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        "65534:65534".to_owned()
    } else {
        format!("{uid}:{gid}")
    }
}
