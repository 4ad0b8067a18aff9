//! Markdown to the HTML subset of Telegram's `parse_mode: HTML`, cut at Telegram's message size.
//!
//! Telegram accepts a handful of tags (`b`, `i`, `s`, `code`, `pre`, `a`, `blockquote`, ...) and
//! refuses a whole message whose markup it cannot parse, so everything else is escaped: `&`, `<`
//! and `>` always, and `"` inside a link's `href`.

use mecha_plugin_sdk::responder::chat::{self, Dialect, escape_entities as escape};

/// 4,096: the longest `text` `sendMessage` takes, counted in UTF-16 code units after the markup
/// is parsed. Counting the markup too keeps every message under it.
pub const MESSAGE_LIMIT: usize = 4_096;

/// Telegram's HTML, with messages of at most `limit` UTF-16 code units.
pub struct TelegramHtml {
    pub limit: usize,
}

impl Dialect for TelegramHtml {
    fn limit(&self) -> usize {
        self.limit
    }

    fn measure(&self, text: &str) -> usize {
        text.encode_utf16().count()
    }

    fn escape(&self, text: &str) -> String {
        escape(text)
    }

    fn bold(&self, inner: &str) -> String {
        format!("<b>{inner}</b>")
    }

    fn italic(&self, inner: &str) -> String {
        format!("<i>{inner}</i>")
    }

    fn strike(&self, inner: &str) -> String {
        format!("<s>{inner}</s>")
    }

    fn code(&self, code: &str) -> String {
        format!("<code>{}</code>", escape(code))
    }

    fn link(&self, text: &str, url: &str) -> String {
        format!(
            "<a href=\"{}\">{text}</a>",
            escape(url).replace('"', "&quot;")
        )
    }

    /// Telegram has no headings; a heading becomes a bold line.
    fn heading(&self, text: &str) -> String {
        format!("<b>{text}</b>")
    }

    fn quote(&self, text: &str) -> String {
        format!("<blockquote>{text}</blockquote>")
    }

    fn bullet(&self, indent: &str, text: &str) -> String {
        format!("{indent}• {text}")
    }

    /// `<pre>`, with the language as Telegram reads it (`<pre><code class="language-rust">`).
    fn open_code(&self, language: &str) -> String {
        if language.is_empty() {
            "<pre>".to_owned()
        } else {
            format!(
                "<pre><code class=\"language-{}\">",
                escape(language).replace('"', "&quot;")
            )
        }
    }

    fn close_code(&self, language: &str) -> String {
        if language.is_empty() {
            "</pre>".to_owned()
        } else {
            "</code></pre>".to_owned()
        }
    }
}

/// `markdown` as Telegram messages of at most [`MESSAGE_LIMIT`] UTF-16 code units.
pub fn messages(markdown: &str) -> Vec<String> {
    chat::messages(
        markdown,
        &TelegramHtml {
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
    fn markdown_becomes_telegram_html() {
        assert_eq!(
            one(
                "# Summary\n**PR #42** adds _retries_, ~~not~~ `x<y`; see [it](https://t.test/?a=1&b=\"2\")"
            ),
            "<b>Summary</b>\n<b>PR #42</b> adds <i>retries</i>, <s>not</s> <code>x&lt;y</code>; see <a href=\"https://t.test/?a=1&amp;b=&quot;2&quot;\">it</a>"
        );
        assert_eq!(
            one("> careful\n- a & b\n```rust\nfn f() -> Vec<u8> {}\n```"),
            "<blockquote>careful</blockquote>\n• a &amp; b\n<pre><code class=\"language-rust\">fn f() -&gt; Vec&lt;u8&gt; {}</code></pre>"
        );
    }

    #[test]
    fn text_that_looks_like_tags_is_escaped() {
        assert_eq!(
            one("<b>not bold</b> & 1 < 2"),
            "&lt;b&gt;not bold&lt;/b&gt; &amp; 1 &lt; 2"
        );
    }

    #[test]
    fn long_answers_split_at_4096_utf16_units_with_pre_blocks_reopened() {
        // Emoji are two UTF-16 units each: the limit is counted as Telegram counts it.
        let code: String = (0..300).map(|n| format!("step {n:03} 🚀 done\n")).collect();
        let markdown = format!("Log:\n```\n{code}```\n**end**");
        let messages = messages(&markdown);
        assert!(messages.len() >= 2, "{}", messages.len());
        for message in &messages {
            assert!(message.encode_utf16().count() <= MESSAGE_LIMIT);
            assert_eq!(
                message.matches("<pre>").count(),
                message.matches("</pre>").count(),
                "{message}"
            );
        }
        assert!(messages[1].starts_with("<pre>step "));
        assert!(
            messages
                .last()
                .is_some_and(|last| last.ends_with("</pre>\n<b>end</b>"))
        );
        let steps: usize = messages.iter().map(|m| m.matches(" done").count()).sum();
        assert_eq!(steps, 300);
    }
}
