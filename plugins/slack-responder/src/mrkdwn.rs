//! Markdown to Slack's `mrkdwn`, cut at Slack's message size.
//!
//! Slack has its own markup: `*bold*`, `_italic_`, `~strike~`, `<url|text>` links, no headings,
//! and `&`, `<` and `>` escaped as `&amp;`, `&lt;` and `&gt;` everywhere, code included (Slack
//! would otherwise read `<!channel>` in an answer as a mention of everyone).

use mecha_plugin_sdk::responder::chat::{self, Dialect, escape_entities as escape};

/// 4,000 characters: Slack truncates `text` past 40,000 and advises keeping messages under
/// 4,000, beyond which they are shown collapsed and some clients cut them.
pub const MESSAGE_LIMIT: usize = 4_000;

/// Slack's mrkdwn, with messages of at most `limit` characters.
pub struct Mrkdwn {
    pub limit: usize,
}

impl Dialect for Mrkdwn {
    fn limit(&self) -> usize {
        self.limit
    }

    fn measure(&self, text: &str) -> usize {
        text.chars().count()
    }

    fn escape(&self, text: &str) -> String {
        escape(text)
    }

    fn bold(&self, inner: &str) -> String {
        format!("*{inner}*")
    }

    fn italic(&self, inner: &str) -> String {
        format!("_{inner}_")
    }

    fn strike(&self, inner: &str) -> String {
        format!("~{inner}~")
    }

    fn code(&self, code: &str) -> String {
        format!("`{}`", escape(code))
    }

    /// `<url|text>`. A `|` or `>` in the URL would end it early, so they are percent-encoded;
    /// the text was escaped already, and a `|` in it is harmless after the first.
    fn link(&self, text: &str, url: &str) -> String {
        let url = url
            .replace('|', "%7C")
            .replace('>', "%3E")
            .replace('<', "%3C");
        let url = url.replace('&', "&amp;");
        if text.is_empty() || text == url {
            format!("<{url}>")
        } else {
            format!("<{url}|{text}>")
        }
    }

    /// Slack has no headings; a heading becomes a bold line.
    fn heading(&self, text: &str) -> String {
        format!("*{text}*")
    }

    fn quote(&self, text: &str) -> String {
        format!(">{text}")
    }

    fn bullet(&self, indent: &str, text: &str) -> String {
        format!("{indent}• {text}")
    }

    /// Slack shows no syntax highlighting, so the language is dropped.
    fn open_code(&self, _language: &str) -> String {
        "```\n".to_owned()
    }

    fn close_code(&self, _language: &str) -> String {
        "\n```".to_owned()
    }
}

/// `markdown` as Slack messages of at most [`MESSAGE_LIMIT`] characters.
pub fn messages(markdown: &str) -> Vec<String> {
    chat::messages(
        markdown,
        &Mrkdwn {
            limit: MESSAGE_LIMIT,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(markdown: &str) -> String {
        let messages = messages(markdown);
        assert_eq!(messages.len(), 1, "{messages:?}");
        messages.concat()
    }

    #[test]
    fn markdown_becomes_mrkdwn() {
        assert_eq!(
            one(
                "## Why the deploy failed\n**Short:** the _migration_ timed out, see [the log](https://ci.test/run?id=1&a=b)."
            ),
            "*Why the deploy failed*\n*Short:* the _migration_ timed out, see <https://ci.test/run?id=1&amp;a=b|the log>."
        );
        assert_eq!(one("~~old~~ *new* `x`"), "~old~ _new_ `x`");
        assert_eq!(one("- one\n  - two\n> quoted"), "• one\n  • two\n>quoted");
    }

    #[test]
    fn control_characters_are_escaped_everywhere() {
        assert_eq!(
            one("a <!channel> & b > c `<b>` [x<y](https://t.test/a|b)"),
            "a &lt;!channel&gt; &amp; b &gt; c `&lt;b&gt;` <https://t.test/a%7Cb|x&lt;y>"
        );
        assert_eq!(
            one("```html\n<p>&nbsp;</p>\n```"),
            "```\n&lt;p&gt;&amp;nbsp;&lt;/p&gt;\n```"
        );
    }

    #[test]
    fn long_answers_split_at_the_limit_without_breaking_code_blocks() {
        let code: String = (0..400)
            .map(|n| format!("line {n:04} of the log\n"))
            .collect();
        let markdown = format!("The failing step:\n\n```\n{code}```\n\nRetry **after** the fix.");
        let messages = messages(&markdown);
        assert!(messages.len() >= 3, "{}", messages.len());
        for message in &messages {
            assert!(message.chars().count() <= MESSAGE_LIMIT);
            assert_eq!(
                message.matches("```").count() % 2,
                0,
                "fences pair up: {message}"
            );
        }
        assert!(messages[0].starts_with("The failing step:\n\n```\nline 0000"));
        assert!(messages[1].starts_with("```\nline "));
        assert!(
            messages
                .last()
                .is_some_and(|last| last.ends_with("Retry *after* the fix."))
        );
        let lines: usize = messages
            .iter()
            .map(|m| m.matches(" of the log").count())
            .sum();
        assert_eq!(lines, 400, "every line is somewhere, once");
    }
}
