//! Reading HTTP replies under a cap, for the worker client and the adapters' upstream calls.
//!
//! A worker or an LLM server is outside mecha's control: a reply is read chunk by chunk and
//! dropped as soon as it passes the cap, so a runaway body never sits whole in memory.

/// 10 MiB: the reply limit of the worker contract (reference section 3), also applied to what an
/// adapter accepts from its upstream.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Why a capped read stopped.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body is longer than the cap (declared or seen).
    TooLarge,
    /// The connection failed while the body was being read.
    Read(reqwest::Error),
}

/// The whole body of `response`, or [`BodyError::TooLarge`] once more than `cap` bytes arrive.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    let declared = response.content_length().unwrap_or(0);
    if declared > cap as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first `limit` bytes of the body of `response` (or fewer, if it is shorter), for quoting an
/// error reply; the rest is not read. A failure mid-read keeps what arrived.
pub(crate) async fn read_prefix(response: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// `text` cut to at most `max_bytes`, on a character boundary.
pub(crate) fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An error and its causes, joined by `: `. `reqwest` keeps the useful part ("Connection
/// refused") in the source chain, not in the top-level message.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_character_boundaries() {
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(truncate("hello", 3), "hel");
        // "é" is two bytes: cutting inside it backs off to before it.
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("日本", 4), "日");
    }

    #[test]
    fn error_chain_joins_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::other("Connection refused"));
        assert_eq!(error_chain(&error), "outer: Connection refused");
    }
}
