//! GitHub hydration: before a pull request's prompt is rendered, the github source plugin
//! fetches its diff and changed files through the host's gated outgoing HTTP, from a stand-in
//! for the GitHub API (same routes, media types, `Link` pagination and error bodies as
//! api.github.com). The host adds the token; the hydrated attrs are stored with the event and
//! fill the prompt.

use serde_json::Value;

use crate::support::daemon::{Daemon, GITHUB_SECRET, Home, get_json, send_github};
use crate::support::fixtures;
use crate::support::forge::{Fault, GitHub, Pull};
use crate::support::worker::TestWorker;

const TOKEN: &str = "ghp_hydration_token_canary";
const OWNER: &str = "Codertocat";
const REPO: &str = "Hello-World";

/// 500 KiB: longer diffs are cut.
const DIFF_CAP: usize = 500 * 1024;

/// The pull-request fixture as pull request `number`, with these SHAs (`None`: absent).
fn pull_request(number: u64, base: Option<&str>, head: &str) -> Vec<u8> {
    let mut payload: Value = serde_json::from_slice(&fixtures::read(
        "github",
        "pull_request__opened.payload.json",
    ))
    .expect("fixture");
    payload["number"] = number.into();
    payload["pull_request"]["number"] = number.into();
    payload["pull_request"]["head"]["sha"] = head.into();
    match base {
        Some(base) => payload["pull_request"]["base"]["sha"] = base.into(),
        None => {
            if let Some(base) = payload["pull_request"]["base"].as_object_mut() {
                base.remove("sha");
            }
        }
    }
    serde_json::to_vec(&payload).expect("json")
}

fn sha(seed: u8) -> String {
    format!("{seed:02x}").repeat(20)
}

fn diff_of(file: &str, lines: usize) -> String {
    let mut diff =
        format!("diff --git a/{file} b/{file}\n--- a/{file}\n+++ b/{file}\n@@ -1 +1 @@\n");
    for line in 0..lines {
        diff.push_str(&format!("+line {line} of {file}\n"));
    }
    diff
}

/// The prompt the worker received for pull request `number`.
fn prompt_for(worker: &TestWorker, number: u64) -> String {
    worker
        .received()
        .iter()
        .filter_map(|task| task["prompt"].as_str())
        .find(|prompt| prompt.starts_with(&format!("PR {number}\n")))
        .unwrap_or_else(|| panic!("no prompt for PR {number}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_are_hydrated_with_their_diff_and_files_before_the_prompt() {
    let github = GitHub::start(TOKEN).await;
    // 1: compared by SHAs; 2: no base SHA, so the pulls endpoints, with 250 files on 3 pages;
    // 3: a diff over the cap; 4: the compare endpoint fails.
    github.seed_pull(
        OWNER,
        REPO,
        1,
        Pull {
            base_sha: sha(1),
            head_sha: sha(2),
            diff: diff_of("src/lib.rs", 3),
            files: vec!["src/lib.rs".into(), "README.md".into()],
        },
    );
    let many: Vec<String> = (0..250).map(|n| format!("src/file_{n:03}.rs")).collect();
    github.seed_pull(
        OWNER,
        REPO,
        2,
        Pull {
            base_sha: sha(3),
            head_sha: sha(4),
            diff: diff_of("src/file_000.rs", 1),
            files: many.clone(),
        },
    );
    let huge = diff_of("big.txt", 40_000);
    assert!(huge.len() > DIFF_CAP + 1024);
    github.seed_pull(
        OWNER,
        REPO,
        3,
        Pull {
            base_sha: sha(5),
            head_sha: sha(6),
            diff: huge.clone(),
            files: vec!["big.txt".into()],
        },
    );
    github.seed_pull(
        OWNER,
        REPO,
        4,
        Pull {
            base_sha: sha(7),
            head_sha: sha(8),
            diff: diff_of("x", 1),
            files: vec!["x".into()],
        },
    );

    let worker = TestWorker::start("reviewed").await;
    let home = Home::new(&format!(
        "sources:\n  github:\n    api_url: {base}\n    allow_private_network: true\nresponders:\n  github:\n    api_url: {base}\n    allow_private_network: true\n",
        base = github.base
    ));
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {GITHUB_SECRET}\n  token: {TOKEN}\n"
    ));
    let yaml = format!(
        "name: reviewer\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: \"PR {{{{ number }}}}\\nFILES\\n{{{{ file_list }}}}\\nDIFF\\n{{{{ diff }}}}\"\n",
        worker.endpoint
    );
    home.add_worker(&yaml);
    // The first compare request of PR 4 (its diff) fails with a 500.
    github.fail_next("GET", &format!("compare/{}", sha(7)), Fault::Status(500), 1);
    let daemon = Daemon::start(&home);

    let mut events = Vec::new();
    for (number, base, head) in [
        (1, Some(sha(1)), sha(2)),
        (2, None, sha(4)),
        (3, Some(sha(5)), sha(6)),
        (4, Some(sha(7)), sha(8)),
    ] {
        let body = pull_request(number, base.as_deref(), &head);
        let (status, event) =
            send_github(&daemon, "pull_request", &format!("hydrate-{number}"), &body).await;
        assert_eq!(status, 202, "{event}");
        events.push(event["id"].as_str().expect("id").to_owned());
    }
    worker.wait_for(4).await;

    // 1: the compare endpoint gave both, and the prompt has them.
    let prompt = prompt_for(&worker, 1);
    assert!(
        prompt.contains("FILES\nsrc/lib.rs\nREADME.md\nDIFF\ndiff --git a/src/lib.rs"),
        "{prompt}"
    );
    assert!(prompt.contains("+line 2 of src/lib.rs"), "{prompt}");
    let compare = github
        .requests()
        .into_iter()
        .filter(|request| {
            request
                .path
                .ends_with(&format!("/compare/{}...{}", sha(1), sha(2)))
        })
        .collect::<Vec<_>>();
    assert_eq!(compare.len(), 2, "the diff and the file list");
    for request in &compare {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str()),
            "the host adds the token"
        );
    }
    assert!(
        compare
            .iter()
            .any(|request| request.header("accept") == Some("application/vnd.github.diff"))
    );

    // 2: without a base SHA, the pull request's own diff and its 250 files over 3 pages.
    let prompt = prompt_for(&worker, 2);
    assert!(
        prompt.contains(&format!("FILES\n{}\nDIFF\n", many.join("\n"))),
        "{prompt}"
    );
    let pages: Vec<String> = github
        .requests()
        .into_iter()
        .filter(|request| request.path.contains("/pulls/2/files"))
        .map(|request| request.query)
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        github
            .requests()
            .iter()
            .any(|request| request.path == format!("/repos/{OWNER}/{REPO}/pulls/2"))
    );

    // 3: cut at 500 KiB with a notice.
    let prompt = prompt_for(&worker, 3);
    let diff = prompt.split_once("\nDIFF\n").expect("diff part").1;
    assert!(
        diff.ends_with("\n... (truncated)"),
        "{}",
        &diff[diff.len() - 40..]
    );
    assert_eq!(diff.len(), DIFF_CAP + "\n... (truncated)".len());
    assert!(huge.starts_with(&diff[..DIFF_CAP]));

    // The hydrated attrs are stored with the event.
    let (_, stored) = get_json(&daemon, &format!("/event/{}", events[2])).await;
    assert_eq!(stored["attrs"]["diff_truncated"], true, "{stored}");
    assert_eq!(stored["attrs"]["file_list"], "big.txt");

    // 4: the diff failed; the task ran anyway, with the error stored.
    let (_, stored) = get_json(&daemon, &format!("/event/{}", events[3])).await;
    assert_eq!(stored["attrs"]["diff"], "", "{stored}");
    let error = stored["attrs"]["diff_error"].as_str().expect("diff_error");
    assert!(error.contains("500"), "{error}");
    assert!(prompt_for(&worker, 4).contains("FILES\nx\nDIFF\n"));

    let (_, logs) = get_json(
        &daemon,
        &format!("/logs?trace={}&action=event.hydrated", events[0]),
    )
    .await;
    let records = logs.as_array().expect("records");
    assert_eq!(records.len(), 1, "{logs}");
    assert_eq!(records[0]["outcome"], "ok");
    let log = daemon.log();
    assert!(!log.contains(TOKEN), "the token never reaches the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_nothing_is_fetched() {
    let github = GitHub::start(TOKEN).await;
    let worker = TestWorker::start("reviewed").await;
    let home = Home::new(&format!(
        "sources:\n  github:\n    api_url: {}\n    allow_private_network: true\n",
        github.base
    ));
    let yaml = format!(
        "name: reviewer\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: \"PR {{{{ number }}}}\"\n",
        worker.endpoint
    );
    home.add_worker(&yaml);
    let daemon = Daemon::start(&home);
    let body = pull_request(9, Some(&sha(1)), &sha(2));
    let (status, event) = send_github(&daemon, "pull_request", "no-token", &body).await;
    assert_eq!(status, 202, "{event}");
    let received = worker.wait_for(1).await;
    assert_eq!(received[0]["prompt"], "PR 9");
    assert!(github.requests().is_empty(), "{:?}", github.requests());
    let (_, stored) = get_json(
        &daemon,
        &format!("/event/{}", event["id"].as_str().expect("id")),
    )
    .await;
    assert!(stored["attrs"].get("diff").is_none(), "{stored}");
}
