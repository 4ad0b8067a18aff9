//! Cron schedules: the host keeps time, the bundled `cron` trigger plugin turns each due tick
//! into an event, workers get tasks, and a tick that would overlap an unfinished run of the same
//! schedule is skipped and counted.

use std::time::Duration;

use crate::support::daemon::{Daemon, Home, client, get_json, wait_tasks};
use crate::support::worker::{Answer, TestWorker};

/// Starts `worker` as a live worker for cron ticks of the schedule `nightly`.
fn add_cron_worker(home: &Home, worker: &TestWorker) {
    let yaml = format!(
        "name: ticker\nendpoint: {}\nevents:\n  - source: cron\n    on: [tick]\n    filter:\n      schedule: nightly\n    prompt: \"review {{{{ subject }}}} for {{{{ repo_owner }}}} at {{{{ tick_time }}}}\"\n",
        worker.endpoint
    );
    home.add_worker(&yaml);
}

async fn metric(daemon: &Daemon, name: &str) -> u64 {
    let text = client()
        .get(daemon.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("mecha_{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no mecha_{name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_become_events_and_tasks_and_an_overlapping_tick_is_skipped() {
    let home = Home::new(
        "triggers:\n  nightly:\n    schedule: \"@every 1s\"\n    settings:\n      subject: acme/widgets\n      attrs: '{\"repo_owner\": \"acme\"}'\n",
    );
    // Each run takes 2.5 s, so the ticks at +1 s and +2 s of a run find it unfinished.
    let worker = TestWorker::scripted(
        Vec::new(),
        Answer::Slow {
            after: Duration::from_millis(2500),
            body: serde_json::json!({ "output": "done" }).to_string(),
        },
    )
    .await;
    add_cron_worker(&home, &worker);
    let daemon = Daemon::start(&home);

    wait_tasks(&daemon, "worker=ticker&state=completed", 2).await;
    let received = worker.received();
    assert!(received.len() >= 2, "{received:?}");
    let prompt = received[0]["prompt"].as_str().expect("prompt");
    assert!(
        prompt.starts_with("review acme/widgets for acme at 20"),
        "{prompt}"
    );
    assert!(prompt.ends_with('Z'), "{prompt}");

    let (_, page) = get_json(&daemon, "/events?source=cron").await;
    let events = page.as_array().expect("events");
    assert!(events.len() >= 2, "{page}");
    for event in events {
        assert_eq!(event["type"], "tick");
        assert_eq!(event["actor"], "nightly");
        assert_eq!(event["subject"], "acme/widgets");
        assert_eq!(event["attrs"]["schedule"], "nightly");
    }
    assert!(metric(&daemon, "trigger_ticks_skipped").await >= 1);
    assert!(metric(&daemon, "trigger_ticks").await >= 2);
    let (_, logs) = get_json(&daemon, "/logs?action=trigger.skipped").await;
    let skipped = logs.as_array().expect("records");
    assert!(!skipped.is_empty(), "{logs}");
    assert_eq!(skipped[0]["detail"]["schedule"], "nightly");
    assert_eq!(
        skipped[0]["detail"]["reason"],
        "the previous run is unfinished"
    );
    // A skipped tick left no event: while a run was in flight, no second tick event existed.
    let in_flight = events
        .iter()
        .filter(|event| event["state"] != "completed")
        .count();
    assert!(in_flight <= 1, "{page}");
}

#[test]
fn a_bad_schedule_or_zone_stops_the_start_with_the_field_named() {
    for (config, expected) in [
        (
            "triggers:\n  nightly:\n    schedule: \"0 25 * * *\"\n",
            "triggers.nightly.schedule",
        ),
        (
            "triggers:\n  nightly:\n    schedule: \"@daily\"\n    timezone: Mars/Olympus\n",
            "triggers.nightly.timezone: unknown time zone",
        ),
        (
            "triggers:\n  nightly:\n    plugin: nope\n    schedule: \"@daily\"\n",
            "no trigger plugin named nope",
        ),
    ] {
        let stderr = Home::new(config).serve_refused();
        assert!(stderr.contains(expected), "{config}: {stderr}");
    }
}
