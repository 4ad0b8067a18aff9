//! Bot commands (`/review@mecha_bot acme/widgets#42`) in a message's text.
//!
//! A command is recognised only through a `bot_command` entity at offset 0, never by a leading
//! `/` alone: Telegram marks every command it delivers with one, and the entity says exactly
//! where the command ends, which a `/path/to/file` at the start of a message would not.
//!
//! Entity offsets and lengths count UTF-16 code units, not bytes or characters, so they are
//! converted by walking the text; an entity that ends outside the text or inside a character is
//! ignored rather than trusted.

use serde::Deserialize;

/// A message entity: a span of the text with a meaning, such as a command, mention or URL.
#[derive(Deserialize)]
pub(super) struct Entity {
    #[serde(rename = "type")]
    kind: Option<String>,
    offset: Option<i64>,
    length: Option<i64>,
}

/// A bot command at the start of a message.
#[derive(Debug, PartialEq)]
pub(super) struct Command<'a> {
    /// The command without its `/`, e.g. `review`.
    pub name: &'a str,
    /// The bot it is addressed to (the `@mecha_bot` suffix, without `@`), when there is one.
    pub bot: Option<&'a str>,
    /// The rest of the text, trimmed.
    pub args: &'a str,
}

/// The command that starts `text`, as marked by a `bot_command` entity at offset 0.
pub(super) fn find<'a>(text: &'a str, entities: &[Entity]) -> Option<Command<'a>> {
    let entity = entities
        .iter()
        .find(|entity| entity.kind.as_deref() == Some("bot_command") && entity.offset == Some(0))?;
    let length = usize::try_from(entity.length?).ok()?;
    let (command, rest) = split_at_utf16(text, length)?;
    let command = command.strip_prefix('/')?;
    let (name, bot) = match command.split_once('@') {
        Some((name, bot)) => (name, Some(bot).filter(|bot| !bot.is_empty())),
        None => (command, None),
    };
    if name.is_empty() {
        return None;
    }
    Some(Command {
        name,
        bot,
        args: rest.trim(),
    })
}

/// Splits `text` after its first `units` UTF-16 code units; `None` when that is past the end or
/// between the two halves of a surrogate pair.
fn split_at_utf16(text: &str, units: usize) -> Option<(&str, &str)> {
    let mut counted = 0;
    for (index, character) in text.char_indices() {
        if counted == units {
            return text.split_at_checked(index);
        }
        counted += character.len_utf16();
        if counted > units {
            return None;
        }
    }
    (counted == units).then_some((text, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(offset: i64, length: i64) -> Entity {
        Entity {
            kind: Some("bot_command".into()),
            offset: Some(offset),
            length: Some(length),
        }
    }

    #[test]
    fn splits_name_bot_and_args() {
        let text = "/review@mecha_bot  acme/widgets#42 ";
        assert_eq!(
            find(text, &[command(0, 17)]),
            Some(Command {
                name: "review",
                bot: Some("mecha_bot"),
                args: "acme/widgets#42",
            })
        );
        assert_eq!(
            find("/help", &[command(0, 5)]),
            Some(Command {
                name: "help",
                bot: None,
                args: "",
            })
        );
        assert_eq!(find("/help@", &[command(0, 6)]).and_then(|c| c.bot), None);
    }

    #[test]
    fn lengths_count_utf16_units() {
        // `🦀` is one character, four bytes and two UTF-16 units.
        let text = "/🦀fix ünïcode 🦀";
        let found = find(text, &[command(0, 6)]).expect("a command");
        assert_eq!(found.name, "🦀fix");
        assert_eq!(found.args, "ünïcode 🦀");
        // Ending between the halves of the crab's surrogate pair is no command.
        assert_eq!(find(text, &[command(0, 2)]), None);
        assert_eq!(split_at_utf16("é🦀x", 3), Some(("é🦀", "x")));
        assert_eq!(split_at_utf16("é🦀x", 4), Some(("é🦀x", "")));
        assert_eq!(split_at_utf16("é🦀x", 5), None);
        assert_eq!(split_at_utf16("", 0), Some(("", "")));
    }

    #[test]
    fn only_a_bot_command_at_the_start_counts() {
        // Emoji before the command: its entity's offset is not 0.
        assert_eq!(find("🦀 /review", &[command(3, 7)]), None);
        assert_eq!(find("/review", &[]), None);
        let mention = Entity {
            kind: Some("mention".into()),
            offset: Some(0),
            length: Some(7),
        };
        assert_eq!(find("/review", &[mention]), None);
        // An entity that does not cover a `/` is no command either.
        assert_eq!(find("review", &[command(0, 6)]), None);
        assert_eq!(find("/", &[command(0, 1)]), None);
        assert_eq!(find("/@bot", &[command(0, 5)]), None);
    }

    #[test]
    fn hostile_entities_are_ignored() {
        for (offset, length) in [
            (0, -1),
            (0, 0),
            (0, 100),
            (0, i64::MAX),
            (0, i64::MIN),
            (-1, 3),
            (i64::MIN, 3),
            (i64::MAX, 3),
        ] {
            let found = find("/go 🦀", &[command(offset, length)]);
            assert_eq!(found, None, "{offset}, {length}");
        }
        let incomplete = Entity {
            kind: Some("bot_command".into()),
            offset: Some(0),
            length: None,
        };
        assert_eq!(find("/go", &[incomplete]), None);
    }
}
