//! Agents' Markdown for chat apps: rendered in an app's own markup and cut into messages that
//! fit its limit.
//!
//! Agents answer in Markdown; Slack reads its own `mrkdwn`, Telegram a small HTML subset. Both
//! need the same reading of Markdown (code blocks, headings, quotes, list items, and within a line
//! code spans, bold, italic, strike-through and links) and the same cutting: a long answer becomes
//! several messages, each valid on its own. A [`Dialect`] says how one app writes each element;
//! [`messages`] does the rest.
//!
//! Cutting never breaks markup. Lines are packed whole into messages; a code block cut between
//! two messages is closed at the end of the first and opened again at the start of the next; a
//! line too long for one message is cut at spaces *before* it is rendered, so each piece is
//! rendered (and escaped) on its own and no tag or entity is ever split. What is not Markdown
//! stays text: an unmatched `*` is an asterisk, escaped like any other character.

/// How one chat app writes the elements of Markdown.
pub trait Dialect {
    /// The most a message may hold, as [`Dialect::measure`] counts.
    fn limit(&self) -> usize;
    /// The length of `text` as the app counts it (characters, UTF-16 units).
    fn measure(&self, text: &str) -> usize;
    /// Plain text, with the app's special characters escaped.
    fn escape(&self, text: &str) -> String;
    fn bold(&self, inner: &str) -> String;
    fn italic(&self, inner: &str) -> String;
    fn strike(&self, inner: &str) -> String;
    /// An inline code span; `code` is raw, not yet escaped.
    fn code(&self, code: &str) -> String;
    /// A link; `text` is already rendered, `url` raw.
    fn link(&self, text: &str, url: &str) -> String;
    /// A heading line; `text` is already rendered.
    fn heading(&self, text: &str) -> String;
    /// A quoted line; `text` is already rendered.
    fn quote(&self, text: &str) -> String;
    /// A list item, `indent` its leading spaces; `text` is already rendered.
    fn bullet(&self, indent: &str, text: &str) -> String;
    /// What opens a code block whose fence named `language` (possibly empty).
    fn open_code(&self, language: &str) -> String;
    /// What closes a code block opened by [`Dialect::open_code`] with `language`.
    fn close_code(&self, language: &str) -> String;
}

/// `text` with `&`, `<` and `>` escaped as entities: what Slack's mrkdwn and Telegram's HTML
/// both reserve.
pub fn escape_entities(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `markdown` rendered in `dialect` and cut into messages of at most `dialect.limit()`. Empty
/// when `markdown` is blank.
pub fn messages(markdown: &str, dialect: &dyn Dialect) -> Vec<String> {
    let mut packer = Packer::new(dialect);
    for block in blocks(markdown) {
        match block {
            Block::Line(line) => {
                for piece in
                    fitting_pieces(line, dialect.limit(), &|piece| render_line(piece, dialect))
                {
                    packer.line(piece);
                }
            }
            Block::Code { language, lines } => {
                let open = dialect.open_code(language);
                let close = dialect.close_code(language);
                let room = dialect
                    .limit()
                    .saturating_sub(dialect.measure(&open) + dialect.measure(&close) + 1)
                    .max(1);
                packer.open_code(open, close);
                for line in lines {
                    for piece in fitting_pieces(line, room, &|piece| dialect.escape(piece)) {
                        packer.code_line(piece);
                    }
                }
                packer.close_code();
            }
        }
    }
    packer.finish()
}

/// One line of Markdown outside code, or a whole fenced code block.
#[derive(Debug, PartialEq, Eq)]
enum Block<'a> {
    Line(&'a str),
    Code {
        language: &'a str,
        lines: Vec<&'a str>,
    },
}

/// The lines and fenced code blocks of `markdown`. A block left open runs to the end.
fn blocks(markdown: &str) -> Vec<Block<'_>> {
    let mut blocks = Vec::new();
    let mut lines = markdown.trim_matches('\n').lines();
    while let Some(line) = lines.next() {
        let Some((fence, language)) = fence(line) else {
            blocks.push(Block::Line(line.trim_end()));
            continue;
        };
        let mut code = Vec::new();
        for line in lines.by_ref() {
            if closes(line, fence) {
                break;
            }
            code.push(line.trim_end_matches('\r'));
        }
        blocks.push(Block::Code {
            language,
            lines: code,
        });
    }
    blocks
}

/// The fence (```` ``` ```` or `~~~`, or longer) and language of a line opening a code block.
fn fence(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let length = trimmed.len() - trimmed.trim_start_matches(marker).len();
    if length < 3 {
        return None;
    }
    let language = trimmed[length..].trim();
    // A backtick fence's info string may not hold backticks (it would be inline code).
    if marker == '`' && language.contains('`') {
        return None;
    }
    let language = language.split_whitespace().next().unwrap_or_default();
    Some((&trimmed[..length], language))
}

/// Whether `line` closes a block opened by `fence`: the same character, at least as many.
fn closes(line: &str, fence: &str) -> bool {
    let trimmed = line.trim();
    let marker = fence.chars().next().unwrap_or('`');
    !trimmed.is_empty() && trimmed.chars().all(|c| c == marker) && trimmed.len() >= fence.len()
}

/// `line` as pieces whose rendering fits `room`: whole when it fits, else cut at the last space
/// within `room` characters (or, for a word longer than that, inside it) and each piece rendered
/// on its own. Escaping can make a piece longer than its source; such a piece is cut again.
fn fitting_pieces(line: &str, room: usize, render: &dyn Fn(&str) -> String) -> Vec<String> {
    let rendered = render(line);
    if rendered.chars().count() <= room || line.chars().count() <= 1 {
        return vec![rendered];
    }
    let within = line
        .char_indices()
        .nth(room)
        .map_or(line.len(), |(at, _)| at);
    let mut cut = line[..within]
        .rfind(' ')
        .filter(|at| *at > 0)
        .unwrap_or(within);
    if cut >= line.len() {
        cut = char_boundary(line, line.len() / 2);
    }
    let (head, tail) = line.split_at(cut);
    let mut pieces = fitting_pieces(head, room, render);
    let tail = tail.trim_start_matches(' ');
    if !tail.is_empty() {
        pieces.extend(fitting_pieces(tail, room, render));
    }
    pieces
}

/// The nearest character boundary at or after `at`, and after the first character.
fn char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.max(1);
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// One line outside code blocks: its block markup (heading, quote, list item), then its inline
/// markup.
fn render_line(line: &str, dialect: &dyn Dialect) -> String {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let hashes = trimmed.len() - trimmed.trim_start_matches('#').len();
    if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
        let text = trimmed[hashes..].trim().trim_end_matches('#').trim_end();
        return dialect.heading(&inline(text, dialect));
    }
    if let Some(text) = trimmed.strip_prefix('>') {
        return dialect.quote(&inline(text.strip_prefix(' ').unwrap_or(text), dialect));
    }
    for bullet in ["- ", "* ", "+ "] {
        if let Some(text) = trimmed.strip_prefix(bullet) {
            return dialect.bullet(indent, &inline(text, dialect));
        }
    }
    inline(line, dialect)
}

/// The inline markup of `text`: code spans, links, bold, italic and strike-through; everything
/// else escaped as text.
fn inline(text: &str, dialect: &dyn Dialect) -> String {
    let mut out = String::new();
    let mut plain = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((rendered, after)) = element(rest, dialect) {
            out.push_str(&dialect.escape(&plain));
            plain.clear();
            out.push_str(&rendered);
            rest = after;
        } else {
            plain.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push_str(&dialect.escape(&plain));
    out
}

/// The inline element at the start of `text`, rendered, and the text after it.
fn element<'a>(text: &'a str, dialect: &dyn Dialect) -> Option<(String, &'a str)> {
    let first = text.chars().next()?;
    match first {
        '`' => {
            let ticks = text.len() - text.trim_start_matches('`').len();
            let fence = &text[..ticks];
            let end = text[ticks..].find(fence)?;
            let code = &text[ticks..ticks + end];
            (!code.trim().is_empty()).then(|| (dialect.code(code.trim()), &text[2 * ticks + end..]))
        }
        '!' if text.starts_with("![") => link(&text[1..], dialect),
        '[' => link(text, dialect),
        '<' => {
            let end = text.find('>')?;
            let url = &text[1..end];
            let is_url = (url.starts_with("http://") || url.starts_with("https://"))
                && !url.contains(char::is_whitespace);
            is_url.then(|| (dialect.link(&dialect.escape(url), url), &text[end + 1..]))
        }
        '*' | '_' | '~' => emphasis(text, dialect),
        _ => None,
    }
}

/// `[text](url)` at the start of `text`.
fn link<'a>(text: &'a str, dialect: &dyn Dialect) -> Option<(String, &'a str)> {
    let close = text.find("](")?;
    let label = &text[1..close];
    let rest = &text[close + 2..];
    let end = rest.find(')')?;
    let url = rest[..end].trim();
    if url.is_empty() || url.contains(char::is_whitespace) || label.contains('[') {
        return None;
    }
    Some((dialect.link(&inline(label, dialect), url), &rest[end + 1..]))
}

/// `**bold**`, `__bold__`, `*italic*`, `_italic_` or `~~strike~~` at the start of `text`. The
/// inner text may not start or end with a space, and `_` emphasis must end a word, so that
/// `snake_case_names` stay as they are.
fn emphasis<'a>(text: &'a str, dialect: &dyn Dialect) -> Option<(String, &'a str)> {
    for (delimiter, style) in [
        ("**", Style::Bold),
        ("__", Style::Bold),
        ("~~", Style::Strike),
        ("*", Style::Italic),
        ("_", Style::Italic),
    ] {
        let Some(after) = text.strip_prefix(delimiter) else {
            continue;
        };
        if after.starts_with(char::is_whitespace) || after.starts_with(delimiter) {
            continue;
        }
        let Some(end) = closing(after, delimiter) else {
            continue;
        };
        let inner = &after[..end];
        let rest = &after[end + delimiter.len()..];
        if delimiter.starts_with('_') && rest.starts_with(|c: char| c.is_alphanumeric()) {
            continue;
        }
        let inner = inline(inner, dialect);
        let rendered = match style {
            Style::Bold => dialect.bold(&inner),
            Style::Italic => dialect.italic(&inner),
            Style::Strike => dialect.strike(&inner),
        };
        return Some((rendered, rest));
    }
    None
}

/// Where `delimiter` closes in `text`: not after a space, and a single `*` not as part of `**`.
fn closing(text: &str, delimiter: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find(delimiter) {
        let mut at = from + found;
        // In a longer run (`***` closing `**` around `*italic*`), the delimiter is its end.
        while delimiter.len() == 2 && text[at + delimiter.len()..].starts_with(&delimiter[..1]) {
            at += 1;
        }
        let after = &text[at + delimiter.len()..];
        let before_space = text[..at].ends_with(char::is_whitespace);
        let doubled = delimiter.len() == 1 && after.starts_with(delimiter);
        if at > 0 && !before_space && !doubled {
            return Some(at);
        }
        from = at + delimiter.len() + usize::from(doubled);
        if from >= text.len() {
            return None;
        }
    }
    None
}

enum Style {
    Bold,
    Italic,
    Strike,
}

/// Packs rendered lines into messages of at most the dialect's limit.
struct Packer<'a> {
    dialect: &'a dyn Dialect,
    messages: Vec<String>,
    current: String,
    /// The open code block's opener and closer, and whether the current message holds it open.
    code: Option<(String, String)>,
    open_here: bool,
}

impl<'a> Packer<'a> {
    fn new(dialect: &'a dyn Dialect) -> Packer<'a> {
        Packer {
            dialect,
            messages: Vec::new(),
            current: String::new(),
            code: None,
            open_here: false,
        }
    }

    fn size(&self, text: &str) -> usize {
        self.dialect.measure(text)
    }

    /// Whether `addition` (with a newline before it unless the message is empty, and the code
    /// block's closer when one is open) still fits the current message.
    fn fits(&self, addition: &str, newline: bool) -> bool {
        let closer = match (&self.code, self.open_here) {
            (Some((_, close)), true) => self.size(close),
            _ => 0,
        };
        let newline = usize::from(newline && !self.current.is_empty());
        self.size(&self.current) + newline + self.size(addition) + closer <= self.dialect.limit()
    }

    fn line(&mut self, line: String) {
        if !self.fits(&line, true) {
            self.flush();
        }
        if !self.current.is_empty() {
            self.current.push('\n');
        }
        self.current.push_str(&line);
    }

    fn open_code(&mut self, open: String, close: String) {
        self.code = Some((open, close));
        self.open_here = false;
    }

    fn code_line(&mut self, line: String) {
        let Some((open, _)) = self.code.clone() else {
            return self.line(line);
        };
        if !self.open_here {
            let opened = format!("{open}{line}");
            if !self.fits(&opened, true) {
                self.flush();
            }
            if !self.current.is_empty() {
                self.current.push('\n');
            }
            self.current.push_str(&opened);
            self.open_here = true;
            return;
        }
        if !self.fits(&line, true) {
            self.flush();
            self.current.push_str(&format!("{open}{line}"));
            self.open_here = true;
            return;
        }
        self.current.push('\n');
        self.current.push_str(&line);
    }

    fn close_code(&mut self) {
        if let Some((open, close)) = self.code.take() {
            if !self.open_here {
                // An empty block: opener and closer alone.
                self.line(format!("{open}{close}"));
            } else {
                self.current.push_str(&close);
            }
        }
        self.open_here = false;
    }

    /// Ends the current message, closing an open code block in it; the next message reopens it.
    fn flush(&mut self) {
        if self.open_here
            && let Some((_, close)) = &self.code
        {
            self.current.push_str(close);
            self.open_here = false;
        }
        let message = std::mem::take(&mut self.current);
        let message = message.trim_end_matches('\n');
        if !message.trim().is_empty() {
            self.messages.push(message.to_owned());
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        self.messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Markdown written back as plain tags, to see what was recognised.
    struct Tags(usize);

    impl Dialect for Tags {
        fn limit(&self) -> usize {
            self.0
        }
        fn measure(&self, text: &str) -> usize {
            text.chars().count()
        }
        fn escape(&self, text: &str) -> String {
            text.replace('&', "&amp;")
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
            format!("<c>{}</c>", self.escape(code))
        }
        fn link(&self, text: &str, url: &str) -> String {
            format!("<a {url}>{text}</a>")
        }
        fn heading(&self, text: &str) -> String {
            format!("<h>{text}</h>")
        }
        fn quote(&self, text: &str) -> String {
            format!("<q>{text}</q>")
        }
        fn bullet(&self, indent: &str, text: &str) -> String {
            format!("{indent}* {text}")
        }
        fn open_code(&self, language: &str) -> String {
            format!("<pre {language}>")
        }
        fn close_code(&self, _: &str) -> String {
            "</pre>".into()
        }
    }

    fn one(markdown: &str) -> String {
        let messages = messages(markdown, &Tags(10_000));
        assert_eq!(messages.len(), 1, "{messages:?}");
        messages.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn inline_elements_are_recognised_and_the_rest_is_text() {
        assert_eq!(
            one("**bold** and *it* and _it_ and ~~gone~~ & `a*b*`"),
            "<b>bold</b> and <i>it</i> and <i>it</i> and <s>gone</s> &amp; <c>a*b*</c>"
        );
        assert_eq!(
            one("see [the **docs**](https://x.test/a_b) or <https://y.test>"),
            "see <a https://x.test/a_b>the <b>docs</b></a> or <a https://y.test>https://y.test</a>"
        );
        assert_eq!(one("snake_case_name * 2 ** 3"), "snake_case_name * 2 ** 3");
        assert_eq!(
            one("[not a link] (x) and [x]()"),
            "[not a link] (x) and [x]()"
        );
        assert_eq!(one("***both***"), "<b><i>both</i></b>");
    }

    #[test]
    fn block_elements_are_recognised() {
        assert_eq!(
            one("# Title #\n> said\n- one\n  * two\n#nope"),
            "<h>Title</h>\n<q>said</q>\n* one\n  * two\n#nope"
        );
        assert_eq!(
            one("before\n```rust\nlet a = **b**;\n```\nafter"),
            "before\n<pre rust>let a = **b**;</pre>\nafter"
        );
        assert_eq!(one("~~~\nopen to the end"), "<pre >open to the end</pre>");
    }

    #[test]
    fn long_answers_are_cut_between_lines_and_code_blocks_reopen() {
        let markdown = "intro line\n```sh\nfirst command\nsecond command\nthird command\n```\nend";
        let messages = messages(markdown, &Tags(40));
        assert_eq!(
            messages,
            [
                "intro line\n<pre sh>first command</pre>",
                "<pre sh>second command</pre>",
                "<pre sh>third command</pre>\nend"
            ]
        );
        for message in &messages {
            assert!(message.chars().count() <= 40, "{message}");
        }
    }

    #[test]
    fn a_line_longer_than_a_message_is_cut_at_spaces_and_rendered_per_piece() {
        let line = "**bold words** ".repeat(10);
        let messages = messages(&line, &Tags(50));
        assert!(messages.len() > 1);
        for message in &messages {
            assert!(message.chars().count() <= 50, "{message}");
            assert_eq!(
                message.matches("<b>").count(),
                message.matches("</b>").count()
            );
        }
        let unbroken = "x".repeat(120);
        let pieces = super::messages(&unbroken, &Tags(50));
        assert_eq!(pieces.concat(), unbroken);
    }

    #[test]
    fn blank_answers_give_no_message() {
        assert!(messages("\n\n  \n", &Tags(50)).is_empty());
    }
}
