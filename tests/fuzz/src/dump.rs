//! Failing cases as text: what `target/fuzz-failures/<source>-<index>.txt` holds and what a
//! replay prints, so that the owner of a parser can read the input without this crate.

use std::fmt::Write;
use std::fs;
use std::io;
use std::path::PathBuf;

use mecha_plugin_sdk::source::Header;

use crate::targets::{Case, Hydration};

/// The directory failures are written to: `fuzz-failures` in `CARGO_TARGET_DIR` when set, else
/// in the workspace's `target`.
pub fn failure_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("fuzz-failures")
}

/// Writes `text` to `<failure dir>/<source>-<index>.txt` and returns the path.
pub fn write_failure(source: &str, index: u64, text: &str) -> io::Result<PathBuf> {
    let dir = failure_dir();
    fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{source}-{index}.txt"));
    fs::write(&path, text)?;
    Ok(path)
}

/// The case as text: every header (escaped) and the body (as is when UTF-8, else escaped).
pub fn describe(case: &Case) -> String {
    let mut text = String::new();
    match case {
        Case::Delivery { request, now_unix } => {
            let _ = writeln!(text, "now_unix: {now_unix}");
            headers(
                &mut text,
                request
                    .headers
                    .iter()
                    .map(|Header { name, value }| (name, value)),
            );
            body(&mut text, "body", &request.body);
        }
        Case::Hydration(hydration) => hydration_text(&mut text, hydration),
    }
    text
}

fn hydration_text(text: &mut String, hydration: &Hydration) {
    let _ = writeln!(text, "api: {:?}", hydration.api);
    let _ = writeln!(text, "event: {:?}", hydration.event);
    for (number, reply) in hydration.replies.iter().enumerate() {
        match reply {
            Err(error) => {
                let _ = writeln!(text, "reply {number}: error {error:?}");
            }
            Ok(response) => {
                let _ = writeln!(text, "reply {number}: status {}", response.status);
                headers(
                    text,
                    response.headers.iter().map(|(name, value)| (name, value)),
                );
                body(text, "body", &response.body);
            }
        }
    }
    let _ = writeln!(text, "further replies: error \"connection refused\"");
}

fn headers<'a>(text: &mut String, headers: impl Iterator<Item = (&'a String, &'a String)>) {
    for (name, value) in headers {
        let _ = writeln!(text, "header {name:?}: {value:?}");
    }
}

fn body(text: &mut String, label: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(utf8) => {
            let _ = writeln!(text, "{label} ({} bytes, UTF-8):\n{utf8}", bytes.len());
        }
        Err(_) => {
            let _ = writeln!(
                text,
                "{label} ({} bytes, not UTF-8, escaped):\n{}",
                bytes.len(),
                bytes.escape_ascii()
            );
        }
    }
}
