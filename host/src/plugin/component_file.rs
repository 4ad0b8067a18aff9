//! Reading a component from a path the operator gave (`mecha plugin install`, `inspect`,
//! `test`): a regular file, once symlinks are resolved, of at most [`MAX_COMPONENT_BYTES`].
//!
//! What sits at a path is not always what the operator thinks: reading a FIFO waits for a writer
//! that may never come, a device such as `/dev/zero` never ends, and a file can grow while it is
//! read. So the type is checked before opening (for a clear error), the file is opened without
//! blocking (`O_NONBLOCK`: opening a FIFO then returns at once), the type is checked again on the
//! opened descriptor (the path cannot be swapped in between), and the bytes are read through a
//! reader that stops one byte past the cap.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use super::Error;

/// 64 MiB: the bundled plugins are well under 5 MiB, and a Python plugin, which carries CPython
/// and its standard library, about 18 MiB; the rest leaves room for a Python plugin's own
/// dependencies. Anything larger is almost certainly not a plugin, and reading and compiling it
/// would take minutes and gigabytes.
pub const MAX_COMPONENT_BYTES: u64 = 64 * 1024 * 1024;

/// The bytes of the component at `path`, refusing anything but a regular file of at most
/// [`MAX_COMPONENT_BYTES`].
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    read_capped(path, MAX_COMPONENT_BYTES)
}

fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    // Follows symlinks: what counts is the file they lead to.
    check(path, &std::fs::metadata(path).map_err(io)?, limit)?;
    let file = open_nonblocking(path).map_err(io)?;
    check(path, &file.metadata().map_err(io)?, limit)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            limit_mib: limit / (1024 * 1024),
        });
    }
    Ok(bytes)
}

/// Refuses what is not a regular file, or is larger than `limit` already.
fn check(path: &Path, metadata: &Metadata, limit: u64) -> Result<(), Error> {
    if !metadata.is_file() {
        return Err(Error::NotAFile {
            path: path.to_owned(),
            kind: kind(metadata),
        });
    }
    if metadata.len() > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            limit_mib: limit / (1024 * 1024),
        });
    }
    Ok(())
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

fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugin.wasm");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_capped(&file, 10).unwrap(), b"0123456789");
        let error = read_capped(&file, 9).unwrap_err();
        assert!(matches!(error, Error::TooLarge { .. }), "{error}");

        let link = dir.path().join("link.wasm");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_capped(&link, 10).unwrap(), b"0123456789");

        let error = read_capped(dir.path(), 10).unwrap_err();
        assert!(error.to_string().contains("is a directory"), "{error}");
        let error = read_capped(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(error.to_string().contains("is a device"), "{error}");
        let link = dir.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let error = read_capped(&link, 10).unwrap_err();
        assert!(error.to_string().contains("is a device"), "{error}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("plugin.wasm");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let error = read(&fifo).unwrap_err();
        assert!(error.to_string().contains("FIFO"), "{error}");
    }
}
