//! The parsers under test, one [`Target`] per entry point: how to generate its inputs and how
//! to call it, emulating what the plugin's `Source` impl does after the host's checks.

mod generic;
mod github;
mod gitlab;
mod hydrate;
mod slack;
mod telegram;

use std::collections::HashSet;

use mecha_plugin_sdk::source::{Error, Event, Header, Request};

use crate::corpus::Corpus;
use crate::rng::Rng;

pub use hydrate::Hydration;

/// One entry point to fuzz.
pub struct Target {
    /// What `--source` selects it by, and what the report calls it.
    pub name: &'static str,
    pub generate: fn(&mut Rng, &Corpus) -> Case,
    pub run: fn(&Case) -> Verdict,
}

/// Every target, in report order.
pub const ALL: &[Target] = &[
    github::PARSE,
    hydrate::HYDRATE,
    generic::PARSE,
    gitlab::PARSE,
    slack::PARSE,
    slack::SIGNATURE,
    telegram::PARSE,
];

/// One generated input.
#[derive(Clone, Debug)]
pub enum Case {
    /// A webhook delivery, and the clock for the parsers that check freshness.
    Delivery { request: Request, now_unix: i64 },
    /// A stored event to hydrate and what the fake API answers.
    Hydration(Hydration),
}

impl Case {
    /// A `POST` with `headers` and `body`, at a clock nobody reads.
    pub fn delivery(headers: Vec<Header>, body: Vec<u8>) -> Case {
        Case::Delivery {
            request: Request {
                method: "POST".into(),
                query: String::new(),
                headers,
                body,
            },
            now_unix: 0,
        }
    }

    /// The same case with the clock at `now_unix`.
    pub fn at(self, now_unix: i64) -> Case {
        match self {
            Case::Delivery { request, .. } => Case::Delivery { request, now_unix },
            hydration => hydration,
        }
    }
}

/// What one call did.
#[derive(Debug)]
pub enum Verdict {
    Accepted,
    Rejected(Rejection),
    /// The call returned, but its result breaks an invariant every caller relies on.
    Broken {
        invariant: &'static str,
        detail: String,
    },
    /// The call panicked; the panic's message and location.
    Panicked(String),
}

/// The kind of [`Error`] a parser rejected an input with.
#[derive(Clone, Copy, Debug)]
pub enum Rejection {
    Unauthorized,
    BadRequest,
    Internal,
}

impl Verdict {
    /// What a failure is recognised by while shrinking it: the panic's location or the broken
    /// invariant. `None` when the call went fine.
    pub fn failure(&self) -> Option<String> {
        match self {
            Verdict::Panicked(message) => {
                Some(message.lines().next().unwrap_or_default().to_owned())
            }
            Verdict::Broken { invariant, .. } => Some((*invariant).to_owned()),
            Verdict::Accepted | Verdict::Rejected(_) => None,
        }
    }
}

/// The verdict on a parser's result: rejected by the kind of its error, otherwise `check`ed.
fn judge<T>(result: Result<T, Error>, check: impl FnOnce(&T) -> Verdict) -> Verdict {
    match result {
        Ok(value) => check(&value),
        Err(Error::Unauthorized(_)) => Verdict::Rejected(Rejection::Unauthorized),
        Err(Error::BadRequest(_)) => Verdict::Rejected(Rejection::BadRequest),
        Err(Error::Internal(_)) => Verdict::Rejected(Rejection::Internal),
    }
}

/// Runs `call` on a delivery; a hydration case here is a fuzzer bug, reported as one.
fn on_delivery(case: &Case, call: impl FnOnce(&Request, i64) -> Verdict) -> Verdict {
    match case {
        Case::Delivery { request, now_unix } => call(request, *now_unix),
        Case::Hydration(_) => Verdict::Broken {
            invariant: "case matches target",
            detail: "a hydration case was given to a webhook parser".into(),
        },
    }
}

/// The invariants of accepted events: the host indexes events by type and attrs by name, so a
/// type must be set and a name must not repeat.
fn check_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Verdict {
    for event in events {
        if event.event_type.is_empty() {
            return Verdict::Broken {
                invariant: "event_type is not empty",
                detail: format!("{event:?}"),
            };
        }
        let mut names = HashSet::with_capacity(event.attrs.len());
        if let Some(attr) = event.attrs.iter().find(|attr| !names.insert(&attr.name)) {
            return Verdict::Broken {
                invariant: "attr names are unique",
                detail: format!("{} appears twice in {event:?}", attr.name),
            };
        }
    }
    Verdict::Accepted
}
