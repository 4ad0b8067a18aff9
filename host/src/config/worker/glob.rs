//! Glob patterns, as used by a rule's `on` entries and its filter values.
//!
//! A pattern without `*`, `?` or `[` is plain text and matches only itself. Otherwise:
//!
//! * `*` matches any run of characters, including none (there are no path separators here:
//!   `pull_request.*` matches `pull_request.opened`);
//! * `?` matches exactly one character;
//! * `[abc]`, `[a-z0-9]` match one character of the class, `[!abc]` or `[^abc]` one character
//!   outside it; a `]` right after the opening `[` (or `[!`) is literal, as is a `-` at either
//!   end. `[*]`, `[?]` and `[[]` match a literal `*`, `?` and `[`.
//!
//! Matching is case-sensitive, per character (not per byte), and runs in O(pattern × text) time
//! without recursion. Configuration refuses malformed patterns through [`check`]; [`matches`]
//! still accepts any string and never panics: an unclosed `[` is then an ordinary character and
//! a reversed range matches nothing.
//!
//! Written here rather than taken from a crate because the grammar is tiny and must be exactly
//! this one (no `**`, no braces, no path semantics).

/// Checks that `pattern` is well formed: every `[` is closed and no range is reversed.
pub fn check(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        if chars[index] == '[' {
            match parse_class(&chars, index) {
                Some(class) => {
                    if let Some((low, high)) = class.ranges().find(|(low, high)| low > high) {
                        return Err(format!(
                            "the range `{low}-{high}` in `{pattern}` is reversed; write `{high}-{low}`"
                        ));
                    }
                    index = class.end;
                    continue;
                }
                None => {
                    return Err(format!(
                        "`{pattern}` has a `[` that is never closed; write `[[]` to match a literal `[`"
                    ));
                }
            }
        }
        index += 1;
    }
    Ok(())
}

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?', '[']) {
        return pattern == text;
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // After a `*`: where the pattern resumes, and the next text position the star may grow to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            if pattern[p] == '*' {
                p += 1;
                backtrack = Some((p, t));
                continue;
            }
            if let Some(next) = match_one(&pattern, p, text[t]) {
                p = next;
                t += 1;
                continue;
            }
        }
        // Mismatch: let the last star swallow one more character, or fail.
        match backtrack {
            Some((resume, star_end)) => {
                p = resume;
                t = star_end + 1;
                backtrack = Some((resume, t));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// If the single-character token at `pattern[p]` (not a `*`) matches `c`, the index after it.
fn match_one(pattern: &[char], p: usize, c: char) -> Option<usize> {
    match pattern[p] {
        '?' => Some(p + 1),
        '[' => match parse_class(pattern, p) {
            Some(class) => class.contains(c).then_some(class.end),
            None => (c == '[').then_some(p + 1),
        },
        literal => (literal == c).then_some(p + 1),
    }
}

/// A parsed `[...]` class: its members lie in `pattern[start..end - 1]`.
struct Class<'p> {
    members: &'p [char],
    negated: bool,
    /// The index just after the closing `]`.
    end: usize,
}

impl Class<'_> {
    /// Ranges and single characters (as `(c, c)`), in order.
    fn ranges(&self) -> impl Iterator<Item = (char, char)> + '_ {
        let mut index = 0;
        std::iter::from_fn(move || {
            let low = *self.members.get(index)?;
            if self.members.get(index + 1) == Some(&'-') && index + 2 < self.members.len() {
                let high = self.members[index + 2];
                index += 3;
                Some((low, high))
            } else {
                index += 1;
                Some((low, low))
            }
        })
    }

    fn contains(&self, c: char) -> bool {
        self.ranges().any(|(low, high)| low <= c && c <= high) != self.negated
    }
}

/// Parses the class opening at `pattern[open]` (a `[`), or `None` when it is never closed.
fn parse_class(pattern: &[char], open: usize) -> Option<Class<'_>> {
    let mut start = open + 1;
    let negated = matches!(pattern.get(start), Some('!' | '^'));
    if negated {
        start += 1;
    }
    // A `]` first in the class is a member, not the end.
    let search_from = if pattern.get(start) == Some(&']') {
        start + 1
    } else {
        start
    };
    let close = search_from + pattern.get(search_from..)?.iter().position(|&c| c == ']')?;
    Some(Class {
        members: &pattern[start..close],
        negated,
        end: close + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_exact_and_case_sensitive() {
        assert!(matches("opened", "opened"));
        assert!(!matches("opened", "Opened"));
        assert!(!matches("opened", "opened "));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
    }

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(matches("pull_request.*", "pull_request.opened"));
        assert!(matches("pull_request.*", "pull_request."));
        assert!(!matches("pull_request.*", "pull_request"));
        assert!(matches("*", ""));
        assert!(matches("*", "anything/at.all"));
        assert!(matches("**", "x"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "a-b-b-c"));
        assert!(!matches("a*b*c", "a-b-b-"));
        assert!(matches("*.opened", "issues.opened"));
        assert!(!matches("*.opened", "issues.opened.x"));
        // Backtracking over a long text stays correct.
        assert!(matches("*a*a*a*b", &format!("{}b", "a".repeat(200))));
        assert!(!matches("*a*a*a*b", &"a".repeat(200)));
    }

    #[test]
    fn question_mark_is_exactly_one_character() {
        assert!(matches("v?", "v1"));
        assert!(!matches("v?", "v"));
        assert!(!matches("v?", "v10"));
        assert!(matches("?", "é"), "one character, not one byte");
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(matches("v[0-9]", "v7"));
        assert!(!matches("v[0-9]", "vx"));
        assert!(matches("[abc]x", "bx"));
        assert!(matches("[!abc]x", "dx"));
        assert!(!matches("[!abc]x", "ax"));
        assert!(matches("[^abc]x", "dx"));
        assert!(matches("[]]", "]"), "a leading ] is a member");
        assert!(matches("[!]]", "x"));
        assert!(!matches("[!]]", "]"));
        assert!(matches("[a-]", "-"), "a trailing - is a member");
        assert!(matches("[*]", "*"));
        assert!(!matches("[*]", "x"));
        assert!(matches("[?]", "?"));
        assert!(matches("[[]", "["));
    }

    #[test]
    fn malformed_patterns_never_panic() {
        for pattern in [
            "[", "[!", "[^", "[]", "a[", "[a-", "[z-a]", "*[", "[[[", "]", "\\",
        ] {
            for text in ["", "[", "a", "z", "[a-", "]"] {
                let _ = matches(pattern, text);
            }
        }
        // An unclosed `[` is an ordinary character.
        assert!(matches("a[", "a["));
        assert!(matches("*[", "x["));
        // A reversed range matches nothing.
        assert!(!matches("[z-a]", "m"));
    }

    #[test]
    fn check_refuses_unclosed_and_reversed() {
        assert!(check("pull_request.*").is_ok());
        assert!(check("[]]").is_ok());
        assert!(check("plain").is_ok());
        assert!(check("a[").expect_err("unclosed").contains("never closed"));
        assert!(check("[!").expect_err("unclosed").contains("never closed"));
        assert!(check("[z-a]").expect_err("reversed").contains("`z-a`"));
    }
}
