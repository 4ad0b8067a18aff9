//! Files that hold secrets (`secrets.yml`, and `config.yml` with its `api_key`): read only when
//! no one but their owner may read or change them.
//!
//! A key that other local users can read is theirs too, and a config file they can write lets
//! them point the daemon elsewhere. So a file with any group or other permission bit is refused,
//! with the `chmod` that fixes it, rather than read. The mode is checked on the opened file, so
//! the file cannot be swapped between the check and the read.

use std::io::Read;
use std::path::Path;

use super::Error;

/// The contents of `path`, `None` when it does not exist; an error when anyone but its owner may
/// read or change it.
pub fn read(path: &Path) -> Result<Option<String>, Error> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(read_error)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::SecretsPermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_error)?;
    Ok(Some(text))
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
}
