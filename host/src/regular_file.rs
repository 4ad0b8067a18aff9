//! Reading a file that someone else may have put at a path: only a regular file, within a cap.
//!
//! What sits at a path is not always what is expected: reading a FIFO waits for a writer that
//! may never come, a device such as `/dev/zero` never ends, and a file can grow while it is
//! read. So the file is opened without blocking (`O_NONBLOCK`: opening a FIFO then returns at
//! once), its type is checked before opening and again on the opened descriptor (the path
//! cannot be swapped after the check), and its bytes are read through a reader that stops one byte past the cap. Plugin
//! components (`plugin::component_file`) and the private configuration files
//! (`config::private_file`) are read this way.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Not a regular file: what it is instead, in words ("a FIFO (named pipe)").
    #[error("is {0}, not a regular file")]
    NotAFile(&'static str),
    /// Larger than the cap, in bytes.
    #[error("is larger than {0} bytes")]
    TooLarge(u64),
}

/// The regular file at `path` (symlinks followed), opened for reading, with its metadata.
pub fn open(path: &Path) -> Result<(File, Metadata), ReadError> {
    // Checked before opening too: opening some devices does something by itself.
    let before = std::fs::metadata(path)?;
    if !before.is_file() {
        return Err(ReadError::NotAFile(kind(&before)));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(ReadError::NotAFile(kind(&metadata)));
    }
    Ok((file, metadata))
}

/// All of `file`, refusing more than `limit` bytes whatever its metadata said.
pub fn read_capped(file: File, metadata: &Metadata, limit: u64) -> Result<Vec<u8>, ReadError> {
    if metadata.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, in words.
fn kind(metadata: &Metadata) -> &'static str {
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        let (file, metadata) = open(path)?;
        read_capped(file, &metadata, limit)
    }

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("file");
        std::fs::write(&path, b"0123456789").expect("write");
        assert_eq!(read(&path, 10).expect("read"), b"0123456789");
        assert!(matches!(read(&path, 9), Err(ReadError::TooLarge(9))));
        assert!(matches!(
            read(dir.path(), 10),
            Err(ReadError::NotAFile("a directory"))
        ));
        assert!(matches!(
            read(Path::new("/dev/zero"), 10),
            Err(ReadError::NotAFile("a device"))
        ));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        assert!(matches!(
            read(&fifo, 10),
            Err(ReadError::NotAFile("a FIFO (named pipe)"))
        ));
    }
}
