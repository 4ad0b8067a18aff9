//! Redaction: the one place that decides what a credential looks like in text, and what of a
//! task or an audit record may leave mecha.
//!
//! Worker replies, task errors, worker error states and log fields can all carry tokens a worker
//! or an upstream echoed back. Everything that leaves mecha through those channels passes through
//! a [`Redactor`], which replaces three kinds of match with `[REDACTED]`:
//!
//! - the credential shapes of the Go mecha (Anthropic, OpenAI, GitHub, Google, GitLab and Slack
//!   tokens, `Bearer` values), matched case-insensitively;
//! - credentials written into a URL (`http://user:password@host`): the whole user part, since a
//!   token is often the user name alone;
//! - the operator's own secrets, as literal values and in their base64 forms (`forms`), so that
//!   a webhook secret or an API key of an unknown shape is caught too.
//!
//! A secret is rarely echoed verbatim only. Text is therefore searched a second time with its
//! JSON escapes and percent-escapes decoded (`escapes`); when that finds what the first search
//! could not, the decoded text is what comes back, redacted. A JSON document (a worker's reply)
//! is decoded properly and redacted value by value (`json`), and tasks and audit records are
//! redacted field by field as they leave the daemon (`records`): the API, the CLI and the
//! write-back all take them from there, so a result is never shown or sent in a form the
//! redactor did not see.
//!
//! A `Redactor` is a handle. Its clones share one compiled set of secrets, and
//! [`Redactor::set_secrets`] adds to that set for all of them (a secret rotated out stays
//! redacted): the daemon hands clones to its
//! worker clients, adapters, plugin log sink and pipeline once, and a reload of `secrets.yml`
//! reaches every one of them. The credential patterns compile once per process.

mod escapes;
mod forms;
mod json;
mod records;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};

use regex::{Regex, RegexBuilder};

/// What every match is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not redacted as literals: a short value ("admin", "12345") is
/// likely to be an ordinary word, and replacing every occurrence would mangle text while hiding
/// nothing worth hiding.
const MIN_LITERAL_CHARS: usize = 8;

/// 64 MiB: room for thousands of literal secrets (each with its encoded forms) in one
/// alternation. The regex crate's default of 10 MiB is sized for hand-written patterns, not for
/// a generated list.
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

/// The user part of a URL (`scheme://` up to the last `@` of the authority); group 1 is what is
/// hidden, so the scheme and the host stay readable. Quotes, backslashes and angle brackets end
/// it, so that a URL inside JSON or HTML does not swallow the text after it.
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b[a-z][a-z0-9+.\-]*://([^\s/?#"'<>\\`]+)@"#)
        .expect("the URL pattern is valid")
});

/// `text` with the user part of every URL in it hidden: `http://[REDACTED]@host`. For messages
/// made where no [`Redactor`] is at hand (configuration errors); a redactor does this too.
pub fn without_url_credentials(text: &str) -> Cow<'_, str> {
    let spans: Vec<Range<usize>> = url_userinfo_spans(text).collect();
    if spans.is_empty() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(replace_spans(text, spans))
    }
}

fn url_userinfo_spans(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    URL_USERINFO
        .captures_iter(text)
        .filter_map(|found| found.get(1).map(|user| user.range()))
}

/// Replaces credentials in text with `[REDACTED]`. Cheap to clone; clones share their secrets.
#[derive(Clone)]
pub struct Redactor {
    current: Arc<RwLock<Arc<Compiled>>>,
    /// Every secret this redactor was given, replaced ones included: a token rotated out is
    /// often still valid (and often rotated because it leaked), and tasks that began before
    /// the reload may still hand it back.
    known: Arc<Mutex<BTreeSet<String>>>,
}

/// One set of secrets, compiled.
struct Compiled {
    credentials: Regex,
    literals: Literals,
}

/// The operator's secrets and their forms, in the fastest form that could be built.
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
        let known: BTreeSet<String> = secrets.into_iter().collect();
        Redactor {
            current: Arc::new(RwLock::new(Arc::new(Compiled::new(
                known.iter().cloned(),
                size_limit,
            )))),
            known: Arc::new(Mutex::new(known)),
        }
    }

    /// Adds `secrets` to those of this redactor and of every clone of it, from the next call on;
    /// the secrets they replace stay redacted too, for the life of the process. The new set is
    /// compiled before the swap, so redaction never waits for it.
    pub fn set_secrets(&self, secrets: impl IntoIterator<Item = String>) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known.extend(secrets);
        let compiled = Arc::new(Compiled::new(known.iter().cloned(), LITERAL_SIZE_LIMIT));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = compiled;
    }

    /// The current set; held for one whole redaction, so a reload never splits one.
    fn compiled(&self) -> Arc<Compiled> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `text` with every credential and configured secret replaced by `[REDACTED]`, searched
    /// as written and with its escapes decoded; borrowed when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.compiled().redact(text)
    }
}

impl Compiled {
    fn new(secrets: impl IntoIterator<Item = String>, size_limit: usize) -> Compiled {
        let mut values: Vec<String> = secrets
            .into_iter()
            .filter(|value| value.chars().count() >= MIN_LITERAL_CHARS)
            .flat_map(|value| forms::forms(&value))
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
        Compiled {
            credentials: CREDENTIALS.clone(),
            literals,
        }
    }

    /// Redacts `text` as written; then, if decoding its escapes reveals a credential the first
    /// pass could not see, returns the decoded text redacted instead.
    fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let direct = self.redact_literal(text);
        if let Some(decoded) = escapes::decode(&direct)
            && !self.spans(&decoded).is_empty()
        {
            return Cow::Owned(self.redact_literal(&decoded).into_owned());
        }
        direct
    }

    /// One pass over `text` as written.
    fn redact_literal<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(replace_spans(text, spans))
    }

    fn spans(&self, text: &str) -> Vec<Range<usize>> {
        let mut spans: Vec<Range<usize>> = self
            .credentials
            .find_iter(text)
            .map(|found| found.range())
            .collect();
        spans.extend(url_userinfo_spans(text));
        match &self.literals {
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
        spans
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
        let literals = match &self.compiled().literals {
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
        assert!(matches!(redactor.compiled().literals, Literals::Plain(_)));
        assert_eq!(
            redactor.redact("a secret-value-0007 b secret-value-0049"),
            "a [REDACTED] b [REDACTED]"
        );
    }

    #[test]
    fn clones_follow_new_secrets_and_keep_the_replaced_ones() {
        let redactor = Redactor::new(["first-secret-value".to_owned()]);
        let held_elsewhere = redactor.clone();
        redactor.set_secrets(["second-secret-value".to_owned()]);
        assert_eq!(
            held_elsewhere.redact("first-secret-value second-secret-value"),
            "[REDACTED] [REDACTED]"
        );
    }

    #[test]
    fn url_credentials_are_hidden_with_the_whole_user_part() {
        let redactor = Redactor::patterns_only();
        for (text, expected) in [
            (
                "health check of http://agent:pa55word@10.0.0.1:80 failed",
                "health check of http://[REDACTED]@10.0.0.1:80 failed",
            ),
            (
                "https://tok3n@github.com/x",
                "https://[REDACTED]@github.com/x",
            ),
            ("http://u:p@ss@host/x", "http://[REDACTED]@host/x"),
            (
                r#"{"a":"http://host/x","b":"me@example.com"}"#,
                r#"{"a":"http://host/x","b":"me@example.com"}"#,
            ),
            (
                "mail me@example.com or see http://host/a@b",
                "mail me@example.com or see http://host/a@b",
            ),
        ] {
            assert_eq!(redactor.redact(text), expected, "{text}");
            assert_eq!(without_url_credentials(text), expected, "{text}");
        }
    }

    #[test]
    fn secrets_are_found_behind_escapes_and_in_base64() {
        let redactor = Redactor::new(["p@ss/w0rd-secret".to_owned()]);
        for text in [
            r"worker said p@ss\/w0rd-secret",
            "url ?key=p%40ss%2Fw0rd-secret&x=1",
            "basic cEBzcy93MHJkLXNlY3JldA==",
            "in a longer blob P3BAc3MvdzByZC1zZWNyZXQ=",
        ] {
            let redacted = redactor.redact(text);
            assert!(redacted.contains(REDACTED), "{text} -> {redacted}");
            assert!(!redacted.contains("w0rd"), "{text} -> {redacted}");
        }
        // Escapes that hide nothing are left as they were.
        assert!(matches!(
            redactor.redact(r"line\nnext 100%"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let redactor = Redactor::new(["canary-secret-value".to_owned()]);
        assert!(!format!("{redactor:?}").contains("canary"));
    }
}
