//! Redaction: the one place that decides what a credential looks like in text.
//!
//! Worker replies, task errors, worker error states and log fields can all carry tokens a worker
//! or an upstream echoed back. Everything that leaves mecha through those channels passes through
//! a [`Redactor`], which replaces two kinds of match with `[REDACTED]`:
//!
//! - the credential shapes of the Go mecha (Anthropic, OpenAI, GitHub, Google, GitLab and Slack
//!   tokens, `Bearer` values), matched case-insensitively;
//! - the operator's own secrets, as literal values, so that a webhook secret or an API key of an
//!   unknown shape is caught too.
//!
//! The patterns compile once per process; a `Redactor` holds its compiled expressions behind an
//! `Arc`, so cloning one into every worker client and adapter costs a reference count.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, LazyLock};

use regex::{Regex, RegexBuilder};

/// What every match is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not redacted as literals: a short value ("admin", "12345") is
/// likely to be an ordinary word, and replacing every occurrence would mangle text while hiding
/// nothing worth hiding.
const MIN_LITERAL_CHARS: usize = 8;

/// 64 MiB: room for thousands of literal secrets in one alternation. The regex crate's default of
/// 10 MiB is sized for hand-written patterns, not for a generated list.
const LITERAL_SIZE_LIMIT: usize = 64 << 20;

/// The credential shapes of reference 11.2, one alternation. A token prefix must start a word
/// (ASCII boundary) so that `task-dispatcher-for-workers` is not taken for an `sk-` key.
const CREDENTIAL_PATTERNS: &[&str] = &[
    r"sk-ant-[A-Za-z0-9_-]+",
    r"sk-[A-Za-z0-9_-]{20,}",
    r"ghp_[A-Za-z0-9]+",
    r"ghs_[A-Za-z0-9]+",
    r"ghr_[A-Za-z0-9]+",
    r"gho_[A-Za-z0-9]+",
    r"ghu_[A-Za-z0-9]+",
    r"ghes_[A-Za-z0-9]+",
    r"github_pat_[A-Za-z0-9_]+",
    r"AIza[A-Za-z0-9_-]{30,}",
    r"ya29\.[A-Za-z0-9_.-]+",
    r"glpat-[A-Za-z0-9_-]+",
    r"Bearer\s+[A-Za-z0-9._-]{20,}",
];

/// Slack incoming-webhook URLs: the path is the credential. No word boundary: it follows `//`.
const SLACK_WEBHOOK_PATTERN: &str = r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+";

static CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    let prefixed = CREDENTIAL_PATTERNS.join("|");
    let pattern = format!(r"(?i)(?-u:\b)(?:{prefixed})|{SLACK_WEBHOOK_PATTERN}");
    // The pattern is a constant, checked by the tests; it cannot fail at run time.
    Regex::new(&pattern).expect("the credential patterns are valid")
});

/// Replaces credentials in text with `[REDACTED]`. Cheap to clone.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

struct Inner {
    credentials: Regex,
    literals: Literals,
}

/// The operator's secrets, in the fastest form that could be built.
enum Literals {
    None,
    /// One escaped alternation, longest value first, so the longest secret at a position wins.
    Regex(Regex),
    /// The alternation was too large to compile: each value is searched on its own.
    Plain(Vec<String>),
}

impl Redactor {
    /// A redactor for the credential patterns and for each of `secrets` (values shorter than 8
    /// characters are skipped, as they would match ordinary words).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        Redactor::with_size_limit(secrets, LITERAL_SIZE_LIMIT)
    }

    /// A redactor for the credential patterns alone.
    pub fn patterns_only() -> Redactor {
        Redactor::new(std::iter::empty())
    }

    fn with_size_limit(secrets: impl IntoIterator<Item = String>, size_limit: usize) -> Redactor {
        let mut values: Vec<String> = secrets
            .into_iter()
            .filter(|value| value.chars().count() >= MIN_LITERAL_CHARS)
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        let literals = if values.is_empty() {
            Literals::None
        } else {
            let alternation = values
                .iter()
                .map(|value| regex::escape(value))
                .collect::<Vec<_>>()
                .join("|");
            match RegexBuilder::new(&alternation)
                .size_limit(size_limit)
                .build()
            {
                Ok(regex) => Literals::Regex(regex),
                Err(err) => {
                    tracing::warn!(
                        secrets = values.len(),
                        error = %err,
                        "secrets too many for one expression; redacting them one by one"
                    );
                    Literals::Plain(values)
                }
            }
        };
        Redactor {
            inner: Arc::new(Inner {
                credentials: CREDENTIALS.clone(),
                literals,
            }),
        }
    }

    /// `text` with every credential and configured secret replaced by `[REDACTED]`; borrowed
    /// when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut spans: Vec<Range<usize>> = self
            .inner
            .credentials
            .find_iter(text)
            .map(|found| found.range())
            .collect();
        match &self.inner.literals {
            Literals::None => {}
            Literals::Regex(regex) => {
                spans.extend(regex.find_iter(text).map(|found| found.range()))
            }
            Literals::Plain(values) => {
                for value in values {
                    spans.extend(
                        text.match_indices(value.as_str())
                            .map(|(start, found)| start..start + found.len()),
                    );
                }
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(replace_spans(text, spans))
    }
}

/// Replaces each span of `text` with the marker. Spans from different expressions may overlap (a
/// secret that also looks like a token, or that extends past one); overlapping spans are merged
/// so that no tail of a secret survives between two markers.
fn replace_spans(text: &str, mut spans: Vec<Range<usize>>) -> String {
    spans.sort_by_key(|span| span.start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut current: Option<Range<usize>> = None;
    for span in spans {
        match &mut current {
            Some(open) if span.start <= open.end => open.end = open.end.max(span.end),
            _ => {
                if let Some(done) = current.replace(span) {
                    out.push_str(&text[copied..done.start]);
                    out.push_str(REDACTED);
                    copied = done.end;
                }
            }
        }
    }
    if let Some(done) = current {
        out.push_str(&text[copied..done.start]);
        out.push_str(REDACTED);
        copied = done.end;
    }
    out.push_str(&text[copied..]);
    out
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let literals = match &self.inner.literals {
            Literals::None => 0,
            Literals::Regex(_) => 1,
            Literals::Plain(values) => values.len(),
        };
        f.debug_struct("Redactor")
            .field("literal_expressions", &literals)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(text: &str) -> String {
        Redactor::patterns_only().redact(text).into_owned()
    }

    #[test]
    fn each_credential_pattern_is_redacted() {
        let cases = [
            "sk-ant-api03-AbC_dEf-123",
            "sk-proj-abcdefghijklmnopqrstuvwxyz",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghr_16C7e42F292c6912E7710c838347Ae178B4a",
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghes_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "AIzaSyD-abcdefghijklmnopqrstuvwxyz012345",
            "ya29.a0AfH6SMBx-abc_def.ghi",
            "glpat-xxxxXXXX1234_-abcd",
            "Bearer abcdefghij0123456789.-_",
            "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
        ];
        for token in cases {
            let text = format!("error: token={token} rejected");
            assert_eq!(
                redacted(&text),
                "error: token=[REDACTED] rejected",
                "pattern for {token}"
            );
        }
    }

    #[test]
    fn patterns_ignore_case() {
        assert_eq!(redacted("BEARER ABCDEFGHIJ0123456789XYZ"), "[REDACTED]");
        assert_eq!(redacted("GHP_abc123"), "[REDACTED]");
        assert_eq!(
            redacted("authorization: bearer abcdefghij0123456789"),
            "authorization: [REDACTED]"
        );
    }

    #[test]
    fn short_or_embedded_lookalikes_are_left_alone() {
        for text in [
            "Bearer short-token",
            "sk-tooshort",
            "AIzaShort",
            "the bearer of this letter is welcome",
            "see task-dispatcher-for-the-workers and disk-usage-of-the-runner-hosts",
            "pip install scikit-learn; risk-assessment-framework-v2",
            "ghp and gho are GitHub prefixes; glpat is GitLab's",
            "Plain English, numbers 12345 and URLs https://example.com/services/abc",
        ] {
            assert!(
                matches!(Redactor::patterns_only().redact(text), Cow::Borrowed(_)),
                "false positive in {text:?}"
            );
        }
    }

    #[test]
    fn literal_secrets_are_redacted_longest_first() {
        let redactor = Redactor::new([
            "hunter2-hunter2".to_owned(),
            "hunter2-hunter2-hunter2".to_owned(),
            "short".to_owned(),
        ]);
        assert_eq!(
            redactor.redact("a hunter2-hunter2-hunter2 b hunter2-hunter2 c short"),
            "a [REDACTED] b [REDACTED] c short"
        );
    }

    #[test]
    fn overlapping_secret_and_pattern_leave_no_tail() {
        let redactor = Redactor::new(["ghp_abcdefgh and more".to_owned()]);
        assert_eq!(
            redactor.redact("x ghp_abcdefgh and more ghp_abcdefghXYZ y"),
            "x [REDACTED] [REDACTED] y"
        );
        let redactor = Redactor::new(["ghp_abc".to_owned(), "abcdefgh".to_owned()]);
        assert_eq!(redactor.redact("ghp_abcdefgh"), "[REDACTED]");
    }

    #[test]
    fn literal_metacharacters_are_escaped() {
        let redactor = Redactor::new(["a.b*c+d(e)[f]".to_owned()]);
        assert_eq!(redactor.redact("x a.b*c+d(e)[f] y"), "x [REDACTED] y");
        assert_eq!(redactor.redact("x aXbbbcd y"), "x aXbbbcd y");
    }

    #[test]
    fn unicode_text_and_secrets() {
        let redactor = Redactor::new(["pässwörd-geheim".to_owned()]);
        assert_eq!(
            redactor.redact("ключ pässwörd-geheim → ghp_abc123 ✓"),
            "ключ [REDACTED] → [REDACTED] ✓"
        );
        assert_eq!(redacted("日本語のテキスト"), "日本語のテキスト");
    }

    #[test]
    fn too_many_secrets_for_one_expression_are_still_redacted() {
        let secrets: Vec<String> = (0..50).map(|n| format!("secret-value-{n:04}")).collect();
        let redactor = Redactor::with_size_limit(secrets, 64);
        assert!(matches!(redactor.inner.literals, Literals::Plain(_)));
        assert_eq!(
            redactor.redact("a secret-value-0007 b secret-value-0049"),
            "a [REDACTED] b [REDACTED]"
        );
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let redactor = Redactor::new(["canary-secret-value".to_owned()]);
        assert!(!format!("{redactor:?}").contains("canary"));
    }
}
