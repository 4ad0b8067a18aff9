//! Reading a component from a path the operator gave (`mecha plugin install`, `inspect`,
//! `test`): a regular file, once symlinks are resolved, of at most [`MAX_COMPONENT_BYTES`], read
//! as [`crate::regular_file`] reads (a FIFO, a device or a growing file cannot hang it).

use std::path::Path;

use super::Error;
use crate::regular_file::{self, ReadError};

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
    let error = |err| match err {
        ReadError::Io(source) => Error::Io {
            path: path.to_owned(),
            source,
        },
        ReadError::NotAFile(kind) => Error::NotAFile {
            path: path.to_owned(),
            kind,
        },
        ReadError::TooLarge(limit) => Error::TooLarge {
            path: path.to_owned(),
            limit_mib: limit / (1024 * 1024),
        },
    };
    let (file, metadata) = regular_file::open(path).map_err(error)?;
    regular_file::read_capped(file, &metadata, limit).map_err(error)
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
