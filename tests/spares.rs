//! A source call served by its plugin's spare instance runs on a pristine instance with its own
//! settings and secrets, and a plugin dropped takes its spare with it. Through the library, with
//! the `tally` test plugin, which counts its calls in a global.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mecha::config::secrets::Secret;
use mecha::plugin::Runtime;
use mecha::plugin::bindings::source::Outcome;
use mecha::plugin::engine::{RuntimeOptions, SPARE_INSTANCES};
use mecha::plugin::host::log::CallFigures;
use mecha::plugin::loader::{Loader, Origin, Runner};
use mecha::plugin::source::{SourceCall, SourcePlugin};
use serde_json::{Value, json};

use crate::support::plugins;
use crate::support::sources::{attrs, request};

/// The tally plugin, loaded into a runtime of its own.
async fn tally() -> (Arc<Runtime>, Arc<SourcePlugin>) {
    let runtime = Arc::new(Runtime::new(RuntimeOptions::with_pool(4)).expect("runtime"));
    let loader = Loader::new(runtime.clone(), None).expect("loader");
    let wasm = std::fs::read(plugins::path("tally")).expect("built");
    let loaded = loader
        .load("tally", &wasm, Origin::Bundled)
        .await
        .expect("loads");
    let Runner::Source(plugin) = loaded.runner else {
        panic!("tally is a source");
    };
    (runtime, plugin)
}

/// The call of a source instance tagged `tag` whose secret `token` is `token`.
fn call(tag: &str, token: &str) -> SourceCall {
    SourceCall {
        settings: Arc::new(BTreeMap::from([("tag".to_owned(), tag.to_owned())])),
        secrets: Arc::new(BTreeMap::from([("token".to_owned(), Secret::new(token))])),
        ..SourceCall::default()
    }
}

/// What tally answered to a request presenting `presented` as its token, and how the call ran.
async fn handle(
    runtime: &Runtime,
    plugin: &SourcePlugin,
    call: &SourceCall,
    presented: &str,
) -> (BTreeMap<String, Value>, CallFigures) {
    let answer = plugin
        .handle_webhook(call, request(&[("x-token", presented.to_owned())], b"{}"))
        .await
        .expect("the call succeeds");
    let Ok(Outcome::Events(events)) = answer.outcome else {
        panic!("tally answers events: {:?}", answer.outcome);
    };
    let [event] = events.as_slice() else {
        panic!("one event: {events:?}");
    };
    let figures = runtime
        .log_sink()
        .take_figures()
        .pop()
        .map(|(_, figures)| figures)
        .expect("the call's figures");
    (attrs(event), figures)
}

#[tokio::test]
async fn a_source_call_on_a_spare_instance_is_its_first_with_its_own_settings_and_secrets() {
    let (runtime, plugin) = tally().await;
    runtime.log_sink().start_tap();
    let (first, figures) = handle(&runtime, &plugin, &call("first", "token-1"), "token-1").await;
    assert_eq!(
        first,
        BTreeMap::from([
            ("calls".to_owned(), json!(1)),
            ("tag".to_owned(), json!("first")),
            ("verified".to_owned(), json!(true)),
        ])
    );
    assert!(!figures.spare, "the first call has no spare to run on");

    // The spare is made in the background; a few calls later, one runs on it (each waits a
    // little longer for it). Every call is the first its instance sees, with its own tag, and
    // with its own secret only: the previous call's token no longer verifies.
    let mut on_spare = 0;
    for round in 1..=20 {
        tokio::time::sleep(Duration::from_millis(10 * round)).await;
        let tag = format!("call-{round}");
        let token = format!("token-{round}");
        let (answer, figures) = handle(&runtime, &plugin, &call(&tag, &token), &token).await;
        assert_eq!(answer["calls"], json!(1), "round {round}: {figures:?}");
        assert_eq!(answer["tag"], json!(tag), "round {round}: {figures:?}");
        assert_eq!(
            answer["verified"],
            json!(true),
            "round {round}: {figures:?}"
        );
        let previous = format!("token-{}", round - 1);
        let (stale, _) = handle(&runtime, &plugin, &call(&tag, &token), &previous).await;
        assert_eq!(stale["calls"], json!(1), "round {round}");
        assert_eq!(stale["verified"], json!(false), "round {round}");
        if figures.spare {
            on_spare += 1;
            assert_eq!(figures.instantiate_us, 0, "{figures:?}");
        }
        if on_spare >= 3 {
            break;
        }
    }
    assert!(
        on_spare >= 3,
        "a source call runs on its spare once it is ready"
    );
}

/// A source's webhook calls and its `hydrate` calls run under different deadlines; the spare
/// one made serves the other, since the deadline starts with the call. Calls alternating two
/// deadlines would otherwise each find a spare made for the other, drop it and instantiate.
#[tokio::test]
async fn a_spare_serves_a_call_with_another_deadline() {
    let (runtime, plugin) = tally().await;
    runtime.log_sink().start_tap();
    let mut on_spare = 0;
    for round in 1..=20u64 {
        tokio::time::sleep(Duration::from_millis(10 * round)).await;
        let mut with_deadline = call("tag", "token");
        with_deadline.limits.timeout = Duration::from_secs(if round % 2 == 0 { 5 } else { 30 });
        let (answer, figures) = handle(&runtime, &plugin, &with_deadline, "token").await;
        assert_eq!(answer["calls"], json!(1), "round {round}: {figures:?}");
        if figures.spare {
            on_spare += 1;
        }
        if on_spare >= 2 {
            break;
        }
    }
    assert!(on_spare >= 2, "calls alternating deadlines run on spares");
}

#[tokio::test]
async fn a_dropped_source_plugin_releases_its_spare() {
    let (runtime, plugin) = tally().await;
    let free = || {
        let taken: Vec<_> = std::iter::from_fn(|| runtime.gate().spare()).collect();
        taken.len()
    };
    assert_eq!(free(), SPARE_INSTANCES as usize, "describe makes no spare");
    handle_once(&plugin).await;
    // The spare's slot is taken while it is made, and held once it is ready.
    assert_eq!(free(), SPARE_INSTANCES as usize - 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(free(), SPARE_INSTANCES as usize - 1);
    drop(plugin);
    // Released at once if the spare was ready, or when its making ends if it was not.
    let mut waited = Duration::ZERO;
    while free() < SPARE_INSTANCES as usize && waited < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    assert_eq!(
        free(),
        SPARE_INSTANCES as usize,
        "the spare went with its plugin"
    );
}

async fn handle_once(plugin: &SourcePlugin) {
    let answer = plugin
        .handle_webhook(&call("tag", "token"), request(&[], b"{}"))
        .await
        .expect("the call succeeds");
    assert!(answer.outcome.is_ok(), "{:?}", answer.outcome);
}
