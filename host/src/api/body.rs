//! Reading request bodies under a size cap, a deadline and a memory budget shared by all
//! connections.
//!
//! A body is buffered whole before a source plugin can verify it, so an unauthenticated sender
//! decides how much memory it takes and for how long. Three limits keep that bounded:
//!
//! - the declared `Content-Length` is checked before anything is read (413 at once), and the
//!   bytes actually read are counted against the same cap (chunked bodies declare nothing);
//! - the whole body must arrive within `http.body_timeout_ms` (408 otherwise);
//! - the buffers of all bodies being read draw from one [`BodyBudget`] of
//!   `http.body_memory_bytes`. Each body's first [`UNCOUNTED_BYTES`] are free, so the small
//!   webhooks that are nearly all traffic never wait behind large or slow ones. Past them, a
//!   body takes its whole share in one piece: its declared length before its first byte is
//!   read, or, without one, `max_body_bytes` once it outgrows the free part. A body that cannot
//!   have its share reads no further and waits for bodies that hold theirs to finish, up to its
//!   deadline, then gets 503. Every holder has all it needs to finish, so waiting always ends.
//!   (Shares grown step by step let concurrent large bodies each hold a part while waiting for
//!   more, stalling one another until their deadlines.)
//!
//! What the budget lent is returned when the [`BufferedBody`] (or the [`BudgetShare`] split
//! from it) is dropped, so it covers the body for as long as the handler keeps it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::ApiError;

/// 64 KiB: real webhooks are a few to tens of KiB, so they are read without touching the
/// budget; at the default 512 connections the free parts add at most 32 MiB.
pub const UNCOUNTED_BYTES: usize = 64 * 1024;

/// The limits every body read obeys. Cloning shares the budget.
#[derive(Clone, Debug)]
pub struct BodyLimits {
    /// The largest body accepted (`max_body_bytes`).
    pub max_bytes: usize,
    /// How long a body may take to arrive (`http.body_timeout_ms`).
    pub timeout: Duration,
    pub budget: BodyBudget,
}

/// Memory for bodies being read, shared by all connections (`http.body_memory_bytes`).
#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

impl BodyBudget {
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Bytes not lent to any body now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// A body read whole, holding its share of the budget.
#[derive(Debug)]
pub struct BufferedBody {
    bytes: Vec<u8>,
    share: BudgetShare,
}

/// The budget a body's buffer took; returned when dropped. Keep it while the bytes live.
#[derive(Debug, Default)]
pub struct BudgetShare(Option<OwnedSemaphorePermit>);

impl BufferedBody {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, and the share to hold until they are dropped.
    pub fn into_parts(self) -> (Vec<u8>, BudgetShare) {
        (self.bytes, self.share)
    }
}

/// Reads `body` whole under `limits`; `headers` are the request's, for its `Content-Length`.
///
/// The budget is taken in one piece, never grown: a body with a declared length takes what it
/// declared (past the free part) before its first byte is read; a body without one is read
/// free up to [`UNCOUNTED_BYTES`] and, once it goes past them, takes enough for the largest
/// body allowed. A body therefore never holds part of the budget while it waits for more, so
/// concurrent large bodies cannot stall one another (hold-and-wait) until their deadlines.
pub async fn read(
    limits: &BodyLimits,
    headers: &HeaderMap,
    body: Body,
) -> Result<BufferedBody, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than the {} byte limit (max_body_bytes)",
                limits.max_bytes
            ),
        )
    };
    let declared = declared_length(headers)?;
    let declared = match declared {
        Some(length) if length > limits.max_bytes as u64 => return Err(too_large()),
        // At most `max_bytes`, so it fits in a usize.
        Some(length) => Some(length as usize),
        None => None,
    };
    let deadline = Instant::now() + limits.timeout;
    let timed_out = || {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} ms (http.body_timeout_ms); send it at once",
                limits.timeout.as_millis()
            ),
        )
    };
    let mut share = BudgetShare::default();
    let mut bytes: Vec<u8> = Vec::new();
    if let Some(length) = declared {
        share
            .take(
                &limits.budget,
                length.saturating_sub(UNCOUNTED_BYTES),
                deadline,
            )
            .await?;
        bytes.reserve_exact(length);
    }
    // What `bytes` may grow to with the share held: everything the budget covers, plus the
    // free part.
    let mut covered = declared.unwrap_or(UNCOUNTED_BYTES);
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(timed_out()),
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                return Err(ApiError::bad_request(format!(
                    "could not read the request body: {err}"
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        let needed = bytes.len() + chunk.len();
        if needed > limits.max_bytes {
            return Err(too_large());
        }
        if needed > covered {
            if declared.is_some() {
                // hyper frames a body by its Content-Length, so this is not reached; refuse
                // rather than go past what the budget covers.
                return Err(ApiError::bad_request(
                    "the body is longer than its Content-Length",
                ));
            }
            // Past the free part without a declared length: take the budget for the largest
            // body allowed, at once.
            share
                .take(
                    &limits.budget,
                    limits.max_bytes.saturating_sub(UNCOUNTED_BYTES),
                    deadline,
                )
                .await?;
            covered = limits.max_bytes;
        }
        if needed > bytes.capacity() {
            // Grow as `Vec` would (doubling), but never past what the budget covers.
            let capacity = needed.max(bytes.capacity() * 2).min(covered);
            bytes.reserve_exact(capacity - bytes.len());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(BufferedBody { bytes, share })
}

/// The declared `Content-Length`, if any; a malformed one is the sender's mistake.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(CONTENT_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("Content-Length is not a number of bytes"))
}

impl BudgetShare {
    /// Takes `bytes` from `budget` in one acquisition, waiting for others to return theirs
    /// until `deadline`. A share is taken at most once per body.
    async fn take(
        &mut self,
        budget: &BodyBudget,
        bytes: usize,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        debug_assert!(self.0.is_none(), "a body takes its share once");
        if bytes == 0 {
            return Ok(());
        }
        let busy = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is reading too many large bodies at once (http.body_memory_bytes); \
                 retry later",
            )
        };
        let bytes = u32::try_from(bytes).map_err(|_| busy())?;
        match tokio::time::timeout_at(deadline, budget.bytes.clone().acquire_many_owned(bytes))
            .await
        {
            Ok(Ok(permit)) => {
                self.0 = Some(permit);
                Ok(())
            }
            // Timed out, or the semaphore was closed (never done): either way, no memory.
            _ => Err(busy()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn limits(max_bytes: usize, budget: usize) -> BodyLimits {
        BodyLimits {
            max_bytes,
            timeout: Duration::from_secs(5),
            budget: BodyBudget::new(budget),
        }
    }

    /// A body whose first frame never comes.
    fn never_ending() -> Body {
        Body::from_stream(futures_util::stream::pending::<
            Result<bytes::Bytes, std::io::Error>,
        >())
    }

    fn headers(length: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(length) = length {
            headers.insert(
                CONTENT_LENGTH,
                HeaderValue::from_str(length).expect("value"),
            );
        }
        headers
    }

    #[tokio::test]
    async fn a_declared_length_past_the_cap_is_refused_before_reading() {
        let limits = limits(100, 1000);
        // A body that would never end: only the header can have refused it.
        let body = never_ending();
        let err = read(&limits, &headers(Some("1000000000000000")), body)
            .await
            .expect_err("refused");
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let err = read(&limits, &headers(Some("lots")), Body::from("x"))
            .await
            .expect_err("refused");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn bodies_past_the_cap_are_refused_without_a_declared_length() {
        let limits = limits(100, 1000);
        let err = read(&limits, &headers(None), Body::from(vec![b'x'; 101]))
            .await
            .expect_err("refused");
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = read(&limits, &headers(None), Body::from(vec![b'x'; 100]))
            .await
            .expect("at the cap");
        assert_eq!(body.bytes().len(), 100);
    }

    /// A body fed by the test, chunk by chunk.
    fn fed_body() -> (
        tokio::sync::mpsc::UnboundedSender<Result<bytes::Bytes, std::io::Error>>,
        Body,
    ) {
        let (send, receive) = tokio::sync::mpsc::unbounded_channel();
        let stream = futures_util::stream::unfold(receive, |mut receive| async move {
            receive.recv().await.map(|chunk| (chunk, receive))
        });
        (send, Body::from_stream(stream))
    }

    /// Lets spawned reads run until the budget has `available` bytes left, or fails the test.
    async fn settle(budget: &BodyBudget, available: usize) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while budget.available() != available {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the budget never had {available} bytes left"));
    }

    #[tokio::test]
    async fn large_bodies_hold_their_share_of_the_budget_until_dropped() {
        let size = UNCOUNTED_BYTES + 1000;
        // Room for both shares below, and 500 bytes more.
        let budget = 1000 + (2 * size - UNCOUNTED_BYTES) + 500;
        let limits = limits(2 * size, budget);
        // Declared: exactly what was declared, past the free part.
        let length = size.to_string();
        let declared = read(
            &limits,
            &headers(Some(&length)),
            Body::from(vec![b'x'; size]),
        )
        .await
        .expect("read");
        assert_eq!(limits.budget.available(), budget - 1000);
        // Undeclared: past the free part, enough for the largest body allowed.
        let undeclared = read(&limits, &headers(None), Body::from(vec![b'x'; size]))
            .await
            .expect("read");
        assert_eq!(undeclared.bytes().len(), size);
        assert_eq!(limits.budget.available(), 500);
        // Small ones are free, whether declared or not, with the budget nearly gone.
        let short = BodyLimits {
            timeout: Duration::from_millis(50),
            ..limits.clone()
        };
        read(&short, &headers(None), Body::from(vec![b'x'; 100]))
            .await
            .expect("small bodies are free");
        read(&short, &headers(Some("100")), Body::from(vec![b'x'; 100]))
            .await
            .expect("small bodies are free");
        // A large one cannot get its share in time.
        let err = read(
            &short,
            &headers(Some(&length)),
            Body::from(vec![b'x'; size]),
        )
        .await
        .expect_err("no budget left");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop((declared, undeclared));
        assert_eq!(limits.budget.available(), budget, "all returned");
    }

    /// Two large bodies that the budget can hold one at a time, arriving interleaved in two
    /// parts each. The first takes its whole share before reading and finishes; the second
    /// waits, and gets its share once the first is done. Shares grown as the bytes arrive
    /// would each have taken part with the first parts, and waited for each other until their
    /// deadlines (503 for both).
    #[tokio::test]
    async fn large_bodies_arriving_together_do_not_stall_each_other() {
        let size = UNCOUNTED_BYTES + 1000;
        let limits = limits(size, 1500);
        let length = size.to_string();
        let parts = || {
            (
                bytes::Bytes::from(vec![b'x'; UNCOUNTED_BYTES + 600]),
                bytes::Bytes::from(vec![b'x'; 400]),
            )
        };
        let mut feeds = Vec::new();
        let mut reads = Vec::new();
        for _ in 0..2 {
            let (feed, body) = fed_body();
            feeds.push(feed);
            reads.push(tokio::spawn({
                let (limits, headers) = (limits.clone(), headers(Some(&length)));
                async move { read(&limits, &headers, body).await }
            }));
            // The first has its share before the second asks.
            settle(&limits.budget, 500).await;
        }
        for feed in &feeds {
            feed.send(Ok(parts().0)).expect("feed");
        }
        for feed in &feeds {
            feed.send(Ok(parts().1)).expect("feed");
        }
        drop(feeds);
        let mut reads = reads.into_iter();
        let first = reads.next().expect("first");
        let second = reads.next().expect("second");
        // The second is still waiting for its share, which the first holds.
        assert!(!second.is_finished());
        let body = first.await.expect("task").expect("the first is read");
        assert_eq!(body.bytes().len(), size);
        drop(body);
        let body = second.await.expect("task").expect("then the second");
        assert_eq!(body.bytes().len(), size);
        drop(body);
        assert_eq!(limits.budget.available(), 1500, "all returned");
    }

    #[tokio::test]
    async fn a_body_that_stalls_gets_408_at_its_deadline() {
        let limits = BodyLimits {
            timeout: Duration::from_millis(50),
            ..limits(100, 1000)
        };
        let body = never_ending();
        let err = read(&limits, &headers(Some("10")), body)
            .await
            .expect_err("stalled");
        assert_eq!(err.status(), StatusCode::REQUEST_TIMEOUT);
    }
}
