//! Hostile scalars shared by every mutator: strings that break naive text handling and number
//! spellings that break naive number handling.

use crate::rng::Rng;

/// Characters that trip up code assuming one byte, one character or left-to-right text.
pub const UNICODE: &[&str] = &[
    "é",
    "e\u{301}",
    "😀",
    "🦀",
    "👩‍👩‍👧‍👦",
    "🇫🇷",
    "\u{202e}",
    "\u{200f}",
    "\u{200b}",
    "\u{feff}",
    "\u{fffd}",
    "\u{10ffff}",
    "עברית",
    "العربية",
    "한국어",
    "١٢٣",
    "１２３",
    "ﷺ",
    "\u{0}",
    "\u{7f}",
    "\u{1b}[31m",
    "\r\n",
    "\t",
    " ",
    "\u{85}",
    "\u{2028}",
];

/// Raw JSON texts for numbers that do not fit, or fit only approximately, in `i64`/`f64`.
pub const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1.5",
    "-0.0",
    "1e999",
    "-1e999",
    "1e-999",
    "1E5",
    "0e0",
    "2147483648",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "0.30000000000000004",
];

/// Raw JSON string literals serde cannot turn into Rust strings, or only just can.
pub const STRING_LITERALS: &[&str] = &[
    r#""\ud800""#,
    r#""\udc00""#,
    r#""\udfff\ud800""#,
    r#""a\ud800b""#,
    r#""\ud83d\ude00""#,
    r#""\u0000""#,
    r#""\uD834\uDD1E""#,
    r#""\/\b\f\n\r\t""#,
    r#""""#,
];

/// Integers at the edges of the types parsers convert them to.
pub fn integer(rng: &mut Rng) -> i64 {
    match rng.below(4) {
        0 => *rng.pick(&[
            0,
            1,
            -1,
            i64::MIN,
            i64::MAX,
            i64::from(i32::MIN),
            i64::from(i32::MAX),
            i64::from(u32::MAX),
            1 << 53,
            (1 << 53) + 1,
        ]),
        1 => -(rng.size(1 << 20) as i64),
        _ => rng.size(1 << 20) as i64,
    }
}

/// Some text: a word, Unicode, control characters, whitespace, or something long.
pub fn text(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => String::new(),
        1 => " ".repeat(rng.between(1, 4)),
        2 => long_text(rng, 8 * 1024),
        3 if rng.chance(10) => long_text(rng, 64 * 1024),
        4 | 5 => unicode(rng),
        _ => word(rng),
    }
}

/// A short ASCII identifier-like word.
pub fn word(rng: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "a",
        "x",
        "id",
        "type",
        "text",
        "user",
        "opened",
        "main",
        "null",
        "true",
        "0",
        "-1",
        "review",
        "/start",
        "@bot",
        "acme/widgets",
        "..",
        "%",
        "+",
        "=",
        "&",
        "\\",
        "\"",
    ];
    rng.pick(WORDS).to_string()
}

/// A few hostile characters, possibly around ASCII.
pub fn unicode(rng: &mut Rng) -> String {
    let mut text = String::new();
    for _ in 0..rng.between(1, 6) {
        if rng.chance(30) {
            text.push_str(&word(rng));
        }
        text.push_str(rng.pick::<&str>(UNICODE));
    }
    text
}

/// Up to `max` bytes: a repeated pattern, with multi-byte characters so that a cut at a fixed
/// byte count lands inside one.
pub fn long_text(rng: &mut Rng, max: usize) -> String {
    let pattern = match rng.below(3) {
        0 => "a".to_owned(),
        1 => "é😀".to_owned(),
        _ => unicode(rng),
    };
    let len = rng.size(max).max(1);
    let mut text = String::with_capacity(len + pattern.len());
    while text.len() < len {
        text.push_str(&pattern);
    }
    text
}

/// `text` with its ASCII letters in random case.
pub fn random_case(rng: &mut Rng, text: &str) -> String {
    text.chars()
        .map(|character| {
            if rng.chance(50) {
                character.to_ascii_uppercase()
            } else {
                character.to_ascii_lowercase()
            }
        })
        .collect()
}
