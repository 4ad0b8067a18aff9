//! Reading a command's output without letting it fill memory.
//!
//! Standard output is the agent's answer, so its beginning is kept; standard error is where the
//! reason for a failure usually ends up, so its end is kept. Both pipes are read to the end
//! either way: a command blocked on a full pipe would never exit.

use tokio::io::{AsyncRead, AsyncReadExt};

/// 10 MiB: the most mecha reads of a worker's reply, so more output could not reach it anyway.
pub const STDOUT_LIMIT: usize = 10 * 1024 * 1024;

/// 4 KiB of standard error: enough for a stack trace's last frames or a CLI's error message.
pub const STDERR_TAIL: usize = 4 * 1024;

/// 8 KiB reads: the size of a pipe's pages is what arrives at once anyway.
const CHUNK: usize = 8 * 1024;

/// The first bytes of a stream.
#[derive(Debug, Default, PartialEq)]
pub struct Head {
    pub bytes: Vec<u8>,
    /// Whether bytes past the limit were discarded.
    pub truncated: bool,
}

/// Reads `reader` to its end, keeping the first `limit` bytes. A read error ends the stream: what
/// arrived before it is still the agent's output.
pub async fn head(reader: Option<impl AsyncRead + Unpin>, limit: usize) -> Head {
    let mut head = Head::default();
    let Some(mut reader) = reader else {
        return head;
    };
    let mut chunk = vec![0; CHUNK];
    while let Ok(read @ 1..) = reader.read(&mut chunk).await {
        let room = limit - head.bytes.len();
        head.bytes.extend_from_slice(&chunk[..read.min(room)]);
        head.truncated |= read > room;
    }
    head
}

/// Reads `reader` to its end, keeping the last `keep` bytes.
pub async fn tail(reader: Option<impl AsyncRead + Unpin>, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut reader) = reader else {
        return kept;
    };
    let mut chunk = vec![0; CHUNK];
    while let Ok(read @ 1..) = reader.read(&mut chunk).await {
        kept.extend_from_slice(&chunk[..read]);
        // Trimmed once it doubles, so each byte is moved at most once on average.
        if kept.len() > 2 * keep {
            kept.drain(..kept.len() - keep);
        }
    }
    kept.drain(..kept.len().saturating_sub(keep));
    kept
}

/// The last `max` bytes of `bytes` as text, starting on a character boundary.
pub fn tail_text(bytes: &[u8], max: usize) -> String {
    let mut start = bytes.len().saturating_sub(max);
    // A character has at most three continuation bytes (0b10xx_xxxx) after its first.
    for _ in 0..3 {
        if bytes
            .get(start)
            .is_none_or(|byte| byte & 0b1100_0000 != 0b1000_0000)
        {
            break;
        }
        start += 1;
    }
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn head_keeps_the_beginning_and_reads_on() {
        let input: Vec<u8> = (0..50_000u32).map(|n| (n % 251) as u8).collect();
        let head = head(Some(&input[..]), 20_000).await;
        assert_eq!(head.bytes, &input[..20_000]);
        assert!(head.truncated);

        let whole = super::head(Some(&input[..]), input.len()).await;
        assert_eq!(whole.bytes, input);
        assert!(!whole.truncated);
    }

    #[tokio::test]
    async fn tail_keeps_the_end() {
        let input: Vec<u8> = (0..50_000u32).map(|n| (n % 251) as u8).collect();
        assert_eq!(
            tail(Some(&input[..]), 4096).await,
            &input[input.len() - 4096..]
        );
        assert_eq!(tail(Some(&b"short"[..]), 4096).await, b"short");
        assert_eq!(tail(None::<&[u8]>, 4096).await, b"");
    }

    #[test]
    fn tail_text_starts_on_a_character() {
        assert_eq!(tail_text("abcdef".as_bytes(), 3), "def");
        assert_eq!(tail_text("abc".as_bytes(), 10), "abc");
        // "é" is two bytes; cutting into it skips its second byte.
        assert_eq!(tail_text("xxé!".as_bytes(), 2), "!");
        assert_eq!(tail_text("xxé!".as_bytes(), 3), "é!");
        assert_eq!(tail_text(b"", 3), "");
    }
}
