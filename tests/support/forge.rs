//! Local stand-ins for the two forges mecha writes results back to, served on 127.0.0.1 because
//! the end-to-end tests cannot reach the real services:
//!
//! * [`GitHub`] imitates the GitHub REST API (`https://api.github.com`): issue comments, issue
//!   labels and commit statuses, with GitHub's authentication, validation, error bodies,
//!   pagination (`Link`) and rate-limit headers. See `forge/github.rs`.
//! * [`GitLab`] imitates the GitLab REST API v4 (`https://gitlab.com/api/v4`): notes on merge
//!   requests and issues, label updates and commit statuses, with GitLab's `PRIVATE-TOKEN`
//!   authentication, URL-encoded project paths (`group%2Fproject`), Grape-style error bodies,
//!   `x-total`/`x-next-page` pagination and `ratelimit-*` headers. See `forge/gitlab.rs`.
//!
//! Both record every request and take queued faults (see `stand_in.rs`): a [`Fault::Hang`]
//! only delays the answer, which is then the normal one; the other faults replace the answer
//! with the forge's own shape of that failure (GitHub's 403 `API rate limit exceeded`, GitLab's
//! 429 `Retry later`, …). What is particular to forges:
//!
//! * **An open world.** Any repository / project exists, empty, until
//!   `GitHub::only_repos` / `GitLab::only_projects` names the ones that do: the others then
//!   answer 404 like a repository the token cannot see.
//!
//! Each stand-in stops when dropped.

mod github;
mod gitlab;

pub use github::{GitHub, Pull};
pub use gitlab::{GitLab, Noteable};

pub use super::stand_in::{Fault, Request};

use super::stand_in::{
    Call, Core, Reply, Running, StandIn, bind, now, percent_decode, percent_encode, query_pairs,
    serve,
};

/// A page of a list: which items, and the numbers for the pagination headers.
struct Window {
    page: usize,
    per_page: usize,
    /// At least 1, even for an empty list.
    last_page: usize,
}

impl Window {
    fn new(total: usize, page: usize, per_page: usize) -> Window {
        Window {
            page,
            per_page,
            last_page: total.div_ceil(per_page).max(1),
        }
    }

    fn slice<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip((self.page - 1).saturating_mul(self.per_page))
            .take(self.per_page)
            .cloned()
            .collect()
    }
}

/// `raw` with its `page` parameter set to `page` (added last when absent), other parameters
/// kept as sent.
fn with_page(raw: &str, page: usize) -> String {
    let mut parts: Vec<String> = raw
        .split('&')
        .filter(|part| !part.is_empty() && part.split('=').next() != Some("page"))
        .map(str::to_owned)
        .collect();
    parts.push(format!("page={page}"));
    parts.join("&")
}

/// (year, month, day, hour, minute, second, weekday with 0 = Sunday) of a Unix time.
fn civil(secs: u64) -> (i64, u32, u32, u64, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7) as u64;
    (
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        weekday,
    )
}

/// `2026-11-24T08:15:00Z` (GitHub's form).
fn iso8601(secs: u64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `2026-11-24T08:15:00.000Z` (GitLab's form).
fn iso8601_millis(secs: u64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000Z")
}

/// `Tue, 24 Nov 2026 08:15:00 GMT`.
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(secs);
    format!(
        "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} GMT",
        DAYS[wd as usize],
        MONTHS[(mo - 1) as usize]
    )
}

/// A 40-character hexadecimal commit id.
fn is_full_sha(sha: &str) -> bool {
    sha.len() == 40 && sha.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The canonical reason phrase of a status code.
fn reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(iso8601_millis(951_782_400), "2000-02-29T00:00:00.000Z");
    }
}
