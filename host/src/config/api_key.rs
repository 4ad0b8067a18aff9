//! The daemon's API key when `config.yml` sets none.
//!
//! An open API on loopback is still open to every local user and to every web page the
//! operator visits, so the daemon never runs without a key: at its first start it generates
//! one into `<home>/api_key` (mode 0600, like `secrets.yml`), and every later start reads the
//! same file. The CLI reads it from there too ([`for_client`]), so nobody has to copy it
//! anywhere; other clients send it as `X-API-Key` or `Authorization: Bearer`.
//!
//! A key set in `config.yml` (or by `mecha serve --api-key` / `MECHA_API_KEY`) wins, and then
//! no file is written.

use std::io::Write;
use std::path::Path;

use super::Error;
use super::home::Home;
use super::private_file;
use super::secrets::Secret;
use super::server::ServerConfig;

/// Whether the key was made by this call or read from an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    Generated,
    Read,
}

/// The key in `<home>/api_key`, generating the file when it does not exist yet.
pub fn load_or_generate(home: &Home) -> Result<(Secret, Provenance), Error> {
    let path = home.api_key_file();
    if let Some(key) = read(&path)? {
        return Ok((key, Provenance::Read));
    }
    let key = generate()?;
    match create(&path, &key) {
        Ok(()) => Ok((key, Provenance::Generated)),
        // Another `mecha serve` of this home wrote it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => read(&path)?
            .map(|key| (key, Provenance::Read))
            .ok_or_else(|| Error::Parse {
                path: path.clone(),
                message: "exists but is no readable file (a dangling symbolic link?); remove it \
                          and start mecha again"
                    .to_owned(),
            }),
        Err(source) => {
            let _ = std::fs::remove_file(&path);
            Err(Error::Write { path, source })
        }
    }
}

/// The key a client of this home's daemon presents: `env` (the value of `MECHA_API_KEY`, which
/// `mecha serve` reads too), else `api_key` from `config.yml`, else the generated file. `None`
/// when the daemon has not started yet, so there is no key at all.
pub fn for_client(home: &Home, env: Option<String>) -> Result<Option<Secret>, Error> {
    if let Some(value) = env.filter(|value| !value.is_empty()) {
        return Ok(Some(Secret::new(value)));
    }
    if let Some(key) = ServerConfig::load(&home.config_file())?.api_key {
        return Ok(Some(key));
    }
    read(&home.api_key_file())
}

/// The key in `path`; `None` when the file does not exist. Refuses a file others may read
/// (`private_file.rs`).
fn read(path: &Path) -> Result<Option<Secret>, Error> {
    let Some(text) = private_file::read(path)? else {
        return Ok(None);
    };
    let key = text.trim();
    if key.is_empty() {
        return Err(Error::Parse {
            path: path.to_owned(),
            message: "is empty; delete it and `mecha serve` generates a new key".to_owned(),
        });
    }
    Ok(Some(Secret::new(key)))
}

fn generate() -> Result<Secret, Error> {
    Secret::random().map_err(|err| Error::Randomness(err.to_string()))
}

/// Writes `key` into a new file only its owner can read; fails if the file exists (also as a
/// symbolic link, which is never followed).
fn create(path: &Path, key: &Secret) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(key.expose().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let temp = tempfile::tempdir().expect("temp dir");
        let home = Home::at(temp.path());
        (temp, home)
    }

    #[test]
    fn the_first_start_generates_a_private_key_and_later_ones_read_it() {
        let (_temp, home) = home();
        let (first, provenance) = load_or_generate(&home).expect("generated");
        assert_eq!(provenance, Provenance::Generated);
        assert_eq!(first.expose().len(), 2 * Secret::RANDOM_BYTES);
        let (second, provenance) = load_or_generate(&home).expect("read");
        assert_eq!(provenance, Provenance::Read);
        assert_eq!(first.expose(), second.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.api_key_file())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().expect("temp dir");
        let (third, _) = load_or_generate(&Home::at(other.path())).expect("generated");
        assert_ne!(first.expose(), third.expose(), "every home its own key");
    }

    #[test]
    fn clients_prefer_the_environment_then_the_config_then_the_file() {
        let (_temp, home) = home();
        assert!(for_client(&home, None).expect("no key yet").is_none());
        let (generated, _) = load_or_generate(&home).expect("generated");
        let key = |env: Option<&str>| {
            for_client(&home, env.map(str::to_owned))
                .expect("key")
                .map(|key| key.expose().to_owned())
        };
        assert_eq!(key(None).as_deref(), Some(generated.expose()));
        std::fs::write(home.config_file(), "api_key: from-config\n").expect("config");
        // Owner-only, or config.yml is refused: it may hold the key.
        #[cfg(unix)]
        std::fs::set_permissions(
            home.config_file(),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(home.config_file(), private).expect("chmod");
        }
        assert_eq!(key(None).as_deref(), Some("from-config"));
        assert_eq!(key(Some("")).as_deref(), Some("from-config"));
        assert_eq!(key(Some("from-env")).as_deref(), Some("from-env"));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let (_temp, home) = home();
        load_or_generate(&home).expect("generated");
        std::fs::set_permissions(home.api_key_file(), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let err = load_or_generate(&home).expect_err("refused").to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(err.contains("api_key"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_is_not_written_through() {
        let (temp, home) = home();
        let target = temp.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, home.api_key_file()).expect("link");
        let err = load_or_generate(&home).expect_err("refused");
        assert!(!target.exists(), "nothing written through the link: {err}");
    }
}
