//! The names that become file names, URL paths and `secrets.yml` sections: of plugins
//! (`plugins/<name>-<digest>.wasm`, `/webhook/<name>`) and of source instances. Checked here,
//! once, for both.

/// Lower-case letters, digits, `-` and `_`, starting with a letter or digit, at most 64.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
