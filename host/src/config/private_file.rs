//! Files that hold secrets (`secrets.yml`, and `config.yml` with its `api_key`): read only when
//! no one but their owner may read or change them.
//!
//! A key that other local users can read is theirs too, and a config file they can write lets
//! them point the daemon elsewhere. So a file with any group or other permission bit is refused,
//! with the `chmod` that fixes it, rather than read. The mode is checked on the opened file, so
//! the file cannot be swapped between the check and the read.

use std::path::Path;

use super::Error;
use crate::regular_file::{self, ReadError};

/// 1 MiB: settings and secrets take a few KiB; a larger file is not one of them.
const MAX_BYTES: u64 = 1024 * 1024;

/// The contents of `path`, `None` when it does not exist; an error when anyone but its owner may
/// read or change it.
pub fn read(path: &Path) -> Result<Option<String>, Error> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let refused = |err| match err {
        ReadError::Io(source) => read_error(source),
        other => Error::Parse {
            path: path.to_owned(),
            message: format!("{other}; it must be a file of mecha's settings"),
        },
    };
    let (file, metadata) = match regular_file::open(path) {
        Ok(opened) => opened,
        Err(ReadError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(refused(err)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::SecretsPermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let bytes = regular_file::read_capped(file, &metadata, MAX_BYTES).map_err(refused)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::Parse {
            path: path.to_owned(),
            message: "is not UTF-8 text".to_owned(),
        })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn only_owner_only_files_are_read() {
        let temp = tempfile::tempdir().expect("temp dir");
        let path = temp.path().join("config.yml");
        assert!(read(&path).expect("absent is fine").is_none());
        std::fs::write(&path, "api_key: k\n").expect("write");
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let err = read(&path).expect_err("refused").to_string();
            assert!(
                err.contains(&format!("chmod 600 {}", path.display())),
                "{err}"
            );
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            assert_eq!(read(&path).expect("read").as_deref(), Some("api_key: k\n"));
        }
    }

    #[test]
    fn a_fifo_or_a_huge_file_is_refused_without_hanging() {
        let temp = tempfile::tempdir().expect("temp dir");
        let fifo = temp.path().join("config.yml");
        let made = std::process::Command::new("mkfifo")
            .args(["-m", "600"])
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let err = read(&fifo).expect_err("a FIFO").to_string();
        assert!(
            err.contains("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );

        let huge = temp.path().join("secrets.yml");
        let file = std::fs::File::create(&huge).expect("create");
        file.set_len(MAX_BYTES + 1).expect("grow");
        std::fs::set_permissions(&huge, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = read(&huge).expect_err("too large").to_string();
        assert!(err.contains("is larger than"), "{err}");
    }
}
