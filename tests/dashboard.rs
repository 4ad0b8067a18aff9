//! The dashboard (`/ui`) of a real daemon: signing in with the API key or a one-time link from
//! `mecha dashboard`, the events list and its search, an event's trace with every stage in
//! order, Replay and Retry clicked in a real browser, and a canary secret, present in the
//! webhook, absent from every page. Debian's Chromium, headless, renders
//! each page to a screenshot under `target/dashboard/` for a person to look at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::daemon::{Daemon, Home, send_github, target_dir, wait_tasks};
use crate::support::fixtures;
use crate::support::worker::{Answer, TestWorker};

const API_KEY: &str = "dashboard-api-key-0d9e8f";
const CANARY: &str = "canary-dashboard-secret-93ab51";

/// A browser's part the test needs: no redirects followed (the test reads each step), and the
/// session cookie kept once the daemon sets it.
struct Browser {
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookie: None,
        }
    }

    /// Sends `request` with the cookie, and keeps a cookie the answer sets.
    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.expect("sent");
        if let Some(set) = response
            .headers()
            .get("set-cookie")
            .and_then(|value| value.to_str().ok())
        {
            self.cookie = set.split(';').next().map(str::to_owned);
        }
        response
    }

    async fn page(&mut self, daemon: &Daemon, path: &str) -> (u16, String) {
        let request = self.client.get(daemon.url(path));
        let response = self.send(request).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    async fn post(
        &mut self,
        daemon: &Daemon,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let body: Vec<String> = form
            .iter()
            .map(|(name, value)| {
                let value = percent_encoding::utf8_percent_encode(
                    value,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                format!("{name}={value}")
            })
            .collect();
        let request = self
            .client
            .post(daemon.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"));
        self.send(request).await
    }
}

/// A one-time sign-in link from `mecha dashboard`, leading to `next`.
fn link(home: &Home, daemon: &Daemon, next: &str) -> String {
    let addr = daemon.url("").trim_start_matches("http://").to_owned();
    let (ok, stdout, stderr) = home.mecha(&["dashboard", "--json", "--addr", &addr]);
    assert!(ok, "{stderr}");
    let reply: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    format!("{}&next={next}", reply["url"].as_str().expect("url"))
}

/// Renders `url` in headless Chromium to `file`; `false` where Chromium is not installed
/// outside CI.
fn screenshot(url: &str, file: &Path) -> bool {
    let Ok(output) = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,1100",
        ])
        .arg(format!("--screenshot={}", file.display()))
        .arg(url)
        .output()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is needed for the dashboard's screenshots (Debian's chromium)"
        );
        return false;
    };
    assert!(
        output.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_with_the_key_and_shows_each_event_with_its_trace() {
    let worker = TestWorker::start("reviewed").await;
    let broken = TestWorker::scripted(Vec::new(), Answer::Status(500)).await;
    let home = Home::new(&format!(
        "api_key: {API_KEY}\ndispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n"
    ));
    home.write_secrets(&format!(
        "github:\n  webhook_secret: {}\ntokens:\n  openai:\n    main: {CANARY}\n",
        crate::support::daemon::GITHUB_SECRET
    ));
    home.add_worker(&format!(
        "name: reviewer\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: \"Review {{{{.title}}}}\"\n",
        worker.endpoint
    ));
    home.add_worker(&format!(
        "name: broken\nendpoint: {}\nmax_retries: 1\n",
        broken.endpoint
    ));
    let tally = crate::support::plugins::path("tally");
    let (ok, _, stderr) =
        home.mecha(&["plugin", "install", "--yes", tally.to_str().expect("utf-8")]);
    assert!(ok, "{stderr}");
    let daemon = Daemon::start(&home);
    let mut browser = Browser::new();

    // Without a session every page leads to the sign-in form, which a wrong key does not pass.
    let (status, _) = browser.page(&daemon, "/ui/events").await;
    assert_eq!(status, 303);
    let (status, form) = browser.page(&daemon, "/ui/login").await;
    assert_eq!(status, 200);
    assert!(form.contains(r#"name="api_key""#), "{form}");
    let wrong = browser
        .post(&daemon, "/ui/login", &[("api_key", "not-the-key")])
        .await;
    assert_eq!(wrong.status().as_u16(), 401);
    let signed_in = browser
        .post(&daemon, "/ui/login", &[("api_key", API_KEY)])
        .await;
    assert_eq!(signed_in.status().as_u16(), 303);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(API_KEY), "the cookie is not the key");
    // The API itself still asks for the key: a session opens pages only.
    let (status, _) = browser.page(&daemon, "/events").await;
    assert_eq!(status, 401);

    // A pull request whose title carries the canary.
    let mut payload: serde_json::Value = serde_json::from_slice(&fixtures::read(
        "github",
        "pull_request__opened.payload.json",
    ))
    .expect("json");
    payload["pull_request"]["title"] = format!("Leaks {CANARY}").into();
    let body = serde_json::to_vec(&payload).expect("json");
    let (status, event) = send_github(&daemon, "pull_request", "dashboard-1", &body).await;
    assert_eq!(status, 202, "{event}");
    let id = event["id"].as_str().expect("id").to_owned();
    wait_tasks(&daemon, &format!("event={id}&state=completed"), 1).await;
    // The last stages are audited just after the task's state.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, events) = browser.page(&daemon, "/ui/events?source=github").await;
    assert_eq!(status, 200);
    assert!(events.contains(&format!("/ui/events/{id}")), "{events}");
    let (_, none) = browser.page(&daemon, "/ui/events?source=gitlab").await;
    assert!(
        !none.contains(&format!("/ui/events/{id}")),
        "filtered by source"
    );

    let (status, shown) = browser.page(&daemon, &format!("/ui/events/{id}")).await;
    assert_eq!(status, 200);
    let stages = [
        "event.received",
        "event.matched",
        "task.created",
        "task.sent",
        "task.completed",
    ];
    let mut last = 0;
    for stage in stages {
        let at = shown[last..]
            .find(&format!(r#"<td class="action">{stage}</td>"#))
            .unwrap_or_else(|| panic!("{stage} after the stages before it:\n{shown}"));
        last += at;
    }
    assert!(shown.contains("Leaks [REDACTED]"), "{shown}");

    let (status, overview) = browser.page(&daemon, "/ui").await;
    assert_eq!(status, 200);
    assert!(overview.contains("reviewer"), "{overview}");

    // Whatever a page shows, the canary and the API key are not in it.
    let (_, all_tasks) = browser.page(&daemon, "/ui/tasks").await;
    for (path, text) in [
        ("/ui", &overview),
        ("/ui/events", &events),
        ("/ui/events/{id}", &shown),
        ("/ui/tasks", &all_tasks),
    ] {
        assert!(!text.contains(CANARY), "{path} shows the canary");
        assert!(!text.contains(API_KEY), "{path} shows the API key");
    }

    // The event's page lists its task; Replay processes the event again as a new one.
    assert!(shown.contains("/ui/tasks/"), "{shown}");
    let replayed = browser
        .post(&daemon, &format!("/ui/events/{id}/replay"), &[])
        .await;
    assert_eq!(replayed.status().as_u16(), 303);
    let copy = replayed
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .expect("the replay's page")
        .to_owned();
    assert!(
        copy.starts_with("/ui/events/") && !copy.ends_with(&id),
        "{copy}"
    );
    // Its audit entries are written just after the answer.
    let mut copy_page = String::new();
    for _ in 0..200 {
        copy_page = browser.page(&daemon, &copy).await.1;
        if copy_page.contains(r#"<td class="action">event.replayed</td>"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        copy_page.contains(r#"<td class="action">event.replayed</td>"#),
        "{copy_page}"
    );

    // A task that failed shows its error and a Retry button, which sends it again.
    let response = daemon
        .client()
        .post(daemon.url("/task"))
        .header("content-type", "application/json")
        .body(r#"{"prompt":"try","worker":"broken"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 202);
    let failed = wait_tasks(&daemon, "worker=broken&state=failed", 1).await;
    let task = failed[0]["id"].as_str().expect("id").to_owned();
    let (_, task_page) = browser.page(&daemon, &format!("/ui/tasks/{task}")).await;
    assert!(
        task_page.contains(r#"<button class="retry">"#),
        "{task_page}"
    );
    assert!(task_page.contains("try"), "the prompt: {task_page}");
    // The overview lists it under what needs attention, and counts the hour's events.
    let (_, overview) = browser.page(&daemon, "/ui").await;
    assert!(
        overview.contains(&format!(r#"<a href="/ui/tasks/{task}">"#))
            && overview.contains("task failed"),
        "{overview}"
    );
    assert!(overview.contains("2 events in the last hour"), "{overview}");
    assert!(
        overview.contains(r#"href="/ui/tasks?state=failed">failed<b>1</b>"#),
        "the failed task counted: {overview}"
    );
    let sent_before = broken.received().len();
    let retried = browser
        .post(&daemon, &format!("/ui/tasks/{task}/retry"), &[])
        .await;
    assert_eq!(retried.status().as_u16(), 303);
    broken.wait_for(sent_before + 1).await;
    let (_, tasks_page) = browser.page(&daemon, "/ui/tasks?worker=broken").await;
    assert!(
        tasks_page.contains(&format!("/ui/tasks/{task}")),
        "{tasks_page}"
    );

    // Workers: a Stop button, a Start button once stopped, and Stop again once started.
    let (_, workers) = browser.page(&daemon, "/ui/workers").await;
    assert!(
        workers.contains(r#"action="/ui/workers/reviewer/stop""#),
        "{workers}"
    );
    for (pressed, offered) in [("stop", "start"), ("start", "stop")] {
        let answer = browser
            .post(&daemon, &format!("/ui/workers/reviewer/{pressed}"), &[])
            .await;
        assert_eq!(answer.status().as_u16(), 303, "{pressed}");
        let (_, workers) = browser.page(&daemon, "/ui/workers").await;
        assert!(
            workers.contains(&format!(r#"action="/ui/workers/reviewer/{offered}""#)),
            "{workers}"
        );
    }
    // Plugins, with what each may reach and read.
    let (status, plugins) = browser.page(&daemon, "/ui/plugins").await;
    assert_eq!(status, 200);
    assert!(
        plugins.contains("<td>github</td><td>source</td>"),
        "{plugins}"
    );
    assert!(plugins.contains("part of mecha"), "{plugins}");
    let tally_row = plugins
        .split("<tr>")
        .find(|row| row.starts_with("<td>tally</td>"))
        .expect("the installed plugin's row");
    assert!(
        tally_row.contains("installed") && tally_row.contains("nobody (unsigned)"),
        "{tally_row}"
    );
    for (path, text) in [("/ui/workers", &workers), ("/ui/plugins", &plugins)] {
        assert!(!text.contains(CANARY), "{path} shows the canary");
        assert!(!text.contains(API_KEY), "{path} shows the API key");
    }

    // A one-time link signs a browser in once.
    let once = link(&home, &daemon, "/ui");
    let mut fresh = Browser::new();
    let path = once.trim_start_matches(&daemon.url(""));
    let (status, _) = fresh.page(&daemon, path).await;
    assert_eq!(status, 303);
    let (status, _) = fresh.page(&daemon, "/ui").await;
    assert_eq!(status, 200, "signed in by the link");
    let (status, _) = Browser::new().page(&daemon, path).await;
    assert_eq!(status, 401, "a link works once");

    // Signing out ends the session.
    let signed_in_cookie = browser.cookie.clone();
    let stream = browser
        .client
        .get(daemon.url("/ui/events/live"))
        .header("cookie", signed_in_cookie.clone().expect("a session"))
        .send()
        .await
        .expect("a live stream");
    assert_eq!(stream.status().as_u16(), 200);
    let out = browser.post(&daemon, "/ui/logout", &[]).await;
    assert_eq!(out.status().as_u16(), 303);
    browser.cookie = signed_in_cookie;
    let (status, _) = browser.page(&daemon, "/ui").await;
    assert_eq!(status, 303);
    // A live stream opened by the session ends with it.
    tokio::time::timeout(Duration::from_secs(30), stream.text())
        .await
        .expect("the live stream ended with its session")
        .expect("its body");

    // Screenshots for a person to look at, each page signed in by a link of its own.
    let dir: PathBuf = target_dir().join("dashboard");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    for (name, next) in [
        ("overview", "/ui".to_owned()),
        ("events", "/ui/events".to_owned()),
        ("event", format!("/ui/events/{id}")),
        ("tasks", "/ui/tasks".to_owned()),
        ("task", format!("/ui/tasks/{task}")),
        ("workers", "/ui/workers".to_owned()),
        ("plugins", "/ui/plugins".to_owned()),
    ] {
        let file = dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&file);
        if !screenshot(&link(&home, &daemon, &next), &file) {
            return;
        }
        let png = std::fs::read(&file).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    }
}

/// A headless Chromium driven over WebDriver by Debian's `chromedriver`, which this process
/// starts on loopback and stops when dropped.
struct Chrome {
    driver: std::process::Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Chrome {
    /// `None` where chromedriver is not installed outside CI.
    async fn start() -> Option<Chrome> {
        let port = crate::support::daemon::free_port();
        let driver = match std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(driver) => driver,
            Err(err) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "chromedriver is needed for the live dashboard test (Debian's chromium-driver): {err}"
                );
                return None;
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1100"
            ]}
        }}});
        let mut chrome = Chrome {
            driver,
            base,
            session: String::new(),
            http,
        };
        let created = chrome.call("POST", "/session", capabilities).await;
        chrome.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a WebDriver session: {created}"))
            .to_owned();
        Some(chrome)
    }

    /// A WebDriver command; its `value`.
    async fn call(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.to_string()),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        let text = request
            .send()
            .await
            .expect("chromedriver answers")
            .text()
            .await
            .expect("a reply");
        let reply: serde_json::Value = serde_json::from_str(&text).expect("json");
        reply["value"].clone()
    }

    async fn open(&self, url: &str) {
        let path = format!("/session/{}/url", self.session);
        self.call("POST", &path, serde_json::json!({ "url": url }))
            .await;
    }

    /// What `script` (a function body) returns in the page.
    async fn run(&self, script: &str) -> serde_json::Value {
        let path = format!("/session/{}/execute/sync", self.session);
        self.call(
            "POST",
            &path,
            serde_json::json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// What `script` returns, once `done` holds for it (within 15 s).
    async fn wait_for(
        &self,
        script: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut value = serde_json::Value::Null;
        for _ in 0..300 {
            value = self.run(script).await;
            if done(&value) {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("`{script}` gave {value} for 15 s");
    }

    /// Waits until the page shown is at `path`.
    async fn wait_for_url(&self, path: &str) {
        self.wait_for("return location.pathname", |shown| shown == path)
            .await;
    }

    /// The WebDriver reference of the first element `css` selects.
    async fn element(&self, css: &str) -> String {
        let path = format!("/session/{}/element", self.session);
        let found = self
            .call(
                "POST",
                &path,
                serde_json::json!({ "using": "css selector", "value": css }),
            )
            .await;
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    /// Clicks the first element `css` selects, as a person would.
    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        let path = format!("/session/{}/element/{element}/click", self.session);
        self.call("POST", &path, serde_json::json!({})).await;
    }

    /// Types `text` into the first field `css` selects.
    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        let path = format!("/session/{}/element/{element}/value", self.session);
        self.call("POST", &path, serde_json::json!({ "text": text }))
            .await;
    }

    async fn screenshot(&self, file: &Path) {
        use base64::Engine;
        let path = format!("/session/{}/screenshot", self.session);
        let png = self.call("GET", &path, serde_json::Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a PNG");
        std::fs::write(file, png).expect("screenshot written");
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// In a real browser: the open events page shows a signed webhook as it arrives; a click opens
/// its trace with every stage in order; its failed task is retried with the Retry button and
/// completes; the Replay button processes the event again; the search box finds events by text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_webhook_appears_live_and_is_traced_retried_replayed_and_found() {
    // The worker refuses its first task for good (400), then answers.
    let worker = TestWorker::scripted(
        vec![Answer::Status(400)],
        Answer::Ok(serde_json::json!({ "output": "reviewed" }).to_string()),
    )
    .await;
    let home = Home::new(&format!(
        "api_key: {API_KEY}\ndispatch:\n  retry_base_ms: 50\n  retry_max_ms: 200\n  health_interval_ms: 100\n"
    ));
    home.add_worker(&format!(
        "name: reviewer\nendpoint: {}\nevents:\n  - source: github\n    on: [pull_request.opened]\n    prompt: review\n",
        worker.endpoint
    ));
    let daemon = Daemon::start(&home);
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let dir = target_dir().join("dashboard");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    chrome.open(&link(&home, &daemon, "/ui/events")).await;
    let title = chrome.run("return document.title").await;
    assert_eq!(title, "Events · mecha", "signed in by the link");
    // The page is open, with its stream, before the webhook is sent.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let body = fixtures::read("github", "pull_request__opened.payload.json");
    let (status, event) = send_github(&daemon, "pull_request", "live-1", &body).await;
    assert_eq!(status, 202, "{event}");
    let id = event["id"].as_str().expect("id").to_owned();
    let live = chrome
        .wait_for(
            "return Array.from(document.querySelectorAll('tr.live a')).map(a => a.getAttribute('href'))",
            |links| links.as_array().is_some_and(|links| !links.is_empty()),
        )
        .await;
    assert_eq!(live, serde_json::json!([format!("/ui/events/{id}")]));
    let row = chrome
        .run("return document.querySelector('tr.live').innerText")
        .await;
    assert!(
        row.as_str()
            .is_some_and(|row| row.contains("pull_request.opened")),
        "{row}"
    );
    chrome.screenshot(&dir.join("live.png")).await;

    // A click on the new row opens the event; once its task has failed, its trace shows every
    // stage in order.
    chrome.click("tr.live a").await;
    chrome.wait_for_url(&format!("/ui/events/{id}")).await;
    let failed = wait_tasks(&daemon, &format!("event={id}&state=failed"), 1).await;
    let task = failed[0]["id"].as_str().expect("task id").to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    chrome.run("location.reload(); return null").await;
    let stages = chrome
        .wait_for(
            "return Array.from(document.querySelectorAll('table.trace td.action')).map(td => td.innerText)",
            |stages| stages.as_array().is_some_and(|stages| stages.iter().any(|stage| stage == "task.failed")),
        )
        .await;
    assert_eq!(
        stages,
        serde_json::json!([
            "event.received",
            "event.matched",
            "task.created",
            "task.sent",
            "task.failed"
        ]),
        "{stages}"
    );
    chrome.screenshot(&dir.join("trace.png")).await;

    // Its task's page, and the Retry button: the task is sent again and completes.
    chrome.click(&format!("a[href='/ui/tasks/{task}']")).await;
    chrome.wait_for_url(&format!("/ui/tasks/{task}")).await;
    chrome.click("button.retry").await;
    wait_tasks(&daemon, &format!("event={id}&state=completed"), 1).await;
    chrome.run("location.reload(); return null").await;
    let shown = chrome
        .wait_for("return document.body.innerText", |text| {
            text.as_str().is_some_and(|text| text.contains("reviewed"))
        })
        .await;
    assert!(
        shown
            .as_str()
            .is_some_and(|text| text.contains("completed")),
        "{shown}"
    );
    assert_eq!(worker.received().len(), 2, "sent again by the retry");
    chrome.screenshot(&dir.join("retried.png")).await;

    // The Replay button on the event's page stores and processes a copy, and shows it.
    chrome.open(&daemon.url(&format!("/ui/events/{id}"))).await;
    chrome.click("button.replay").await;
    let replayed = chrome
        .wait_for("return location.pathname", |path| {
            path.as_str().is_some_and(|path| {
                path.starts_with("/ui/events/") && path != format!("/ui/events/{id}")
            })
        })
        .await;
    let copy = replayed.as_str().expect("path")["/ui/events/".len()..].to_owned();
    wait_tasks(&daemon, &format!("event={copy}&state=completed"), 1).await;
    assert_eq!(
        worker.received().len(),
        3,
        "the copy made a task of its own"
    );

    // The search box finds both by text in their type; text found nowhere finds none.
    chrome.open(&daemon.url("/ui/events")).await;
    chrome.type_into("input[name='q']", "request.OPENED").await;
    chrome.click("form.filters button").await;
    let found = chrome
        .wait_for(
            "return location.search.includes('q=') ? Array.from(document.querySelectorAll('table.events a')).map(a => a.getAttribute('href')) : null",
            |found| found.is_array(),
        )
        .await;
    let mut found: Vec<String> = serde_json::from_value(found).expect("links");
    found.sort();
    let mut expected = vec![format!("/ui/events/{id}"), format!("/ui/events/{copy}")];
    expected.sort();
    assert_eq!(found, expected);
    chrome.screenshot(&dir.join("search.png")).await;
    chrome
        .open(&daemon.url("/ui/events?q=nothing-like-this&type=pull_request.opened"))
        .await;
    let none = chrome
        .run("return document.querySelectorAll('table.events a').length")
        .await;
    assert_eq!(none, 0);

    let path = format!("/session/{}", chrome.session);
    chrome.call("DELETE", &path, serde_json::Value::Null).await;
}
