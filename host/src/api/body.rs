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
//!   `http.body_memory_bytes`; a body that would go past it waits for others to finish, up to
//!   its deadline, then gets 503. Each body's first [`UNCOUNTED_BYTES`] are free, so the small
//!   webhooks that are nearly all traffic never wait behind large or slow ones.
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
    if declared.is_some_and(|length| length > limits.max_bytes as u64) {
        return Err(too_large());
    }
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
    let mut body = body;
    let mut bytes: Vec<u8> = Vec::new();
    let mut share = BudgetShare::default();
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
        if needed > bytes.capacity() {
            // Grow as `Vec` would (doubling), but never past the cap or the declared length,
            // and pay the budget for the whole allocation before making it.
            let ceiling = declared.map_or(limits.max_bytes, |length| length as usize);
            let capacity = needed
                .max(bytes.capacity() * 2)
                .min(ceiling.min(limits.max_bytes))
                .max(needed);
            share
                .grow_to(
                    &limits.budget,
                    capacity.saturating_sub(UNCOUNTED_BYTES),
                    deadline,
                )
                .await?;
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
    fn held(&self) -> usize {
        self.0.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Takes from `budget` until this share holds `bytes`, waiting for others to return theirs
    /// until `deadline`.
    async fn grow_to(
        &mut self,
        budget: &BodyBudget,
        bytes: usize,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        let more = bytes.saturating_sub(self.held());
        if more == 0 {
            return Ok(());
        }
        let busy = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is reading too many large bodies at once (http.body_memory_bytes); \
                 retry later",
            )
        };
        let more = u32::try_from(more).map_err(|_| busy())?;
        let permit =
            match tokio::time::timeout_at(deadline, budget.bytes.clone().acquire_many_owned(more))
                .await
            {
                Ok(Ok(permit)) => permit,
                // Timed out, or the semaphore was closed (never done): either way, no memory.
                _ => return Err(busy()),
            };
        match &mut self.0 {
            Some(held) => held.merge(permit),
            None => self.0 = Some(permit),
        }
        Ok(())
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

    #[tokio::test]
    async fn large_bodies_hold_their_share_of_the_budget_until_dropped() {
        let size = UNCOUNTED_BYTES + 1000;
        let limits = limits(2 * size, size);
        let body = read(&limits, &headers(None), Body::from(vec![b'x'; size]))
            .await
            .expect("read");
        let held = size - limits.budget.available();
        assert!(held >= 1000, "the counted part is held: {held}");
        // A second large body cannot get the rest of the budget in time.
        let short = BodyLimits {
            timeout: Duration::from_millis(50),
            ..limits.clone()
        };
        let err = read(&short, &headers(None), Body::from(vec![b'x'; 2 * size]))
            .await
            .expect_err("no budget left");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Small ones still pass.
        read(&short, &headers(None), Body::from(vec![b'x'; 100]))
            .await
            .expect("small bodies are free");
        drop(body);
        assert_eq!(limits.budget.available(), size, "all returned");
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
