//! The fixtures in `tests/fixtures/`: real payloads, copied with their licence note.

use std::path::PathBuf;

pub fn dir(provider: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(provider)
}

/// Every `*.json` fixture of `provider`, as (file name, bytes), sorted by name.
pub fn all(provider: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir(provider))
        .expect("fixtures directory")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("readable fixture"))
        })
        .collect();
    files.sort();
    files
}

pub fn read(provider: &str, name: &str) -> Vec<u8> {
    std::fs::read(dir(provider).join(name)).expect("fixture exists")
}

/// `pull_request__opened.payload.json` → `pull_request`.
pub fn github_event(file_name: &str) -> &str {
    file_name.split("__").next().expect("event prefix")
}
