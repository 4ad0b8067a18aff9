//! Which database a daemon and its CLI use: `database_url` (or `MECHA_DATABASE_URL`), or the
//! embedded SQLite file in the mecha directory when neither is set.
//!
//! - `sqlite://PATH`: a SQLite file (`sqlite:///var/lib/mecha/mecha.db`; a relative path is
//!   taken from the working directory);
//! - `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `postgresql://`): a PostgreSQL database,
//!   which several daemons may share.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Durability, Error, PostgresStore, SqliteStore, Store};

/// A database to open.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, the single daemon's embedded default.
    Sqlite(PathBuf),
    /// A PostgreSQL database; the URL may hold a password.
    Postgres(String),
}

impl Database {
    /// The database `url` names, or the SQLite file `default` when `url` is `None` or empty.
    pub fn from_url(url: Option<&str>, default: &Path) -> Result<Database, Error> {
        let url = url.map(str::trim).unwrap_or_default();
        if url.is_empty() {
            return Ok(Database::Sqlite(default.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(Error::InvalidUrl {
                    reason: "sqlite:// names no file".into(),
                });
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.to_owned()));
        }
        Err(Error::InvalidUrl {
            reason: "it names no database this mecha knows (its scheme is neither sqlite:// nor \
                     postgres://)"
                .into(),
        })
    }

    /// Opens the database and brings its schema up to date. `durability` applies to SQLite;
    /// a PostgreSQL server's own settings (`synchronous_commit`) decide there.
    pub async fn open(&self, durability: Durability) -> Result<Arc<dyn Store>, Error> {
        Ok(match self {
            Database::Sqlite(path) => Arc::new(SqliteStore::open(path, durability)?),
            Database::Postgres(url) => Arc::new(PostgresStore::open(url).await?),
        })
    }

    /// The database as logs and messages show it: a path, or a URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => match super::postgres::parse(url) {
                Ok((config, _)) => super::postgres::describe(&config),
                Err(_) => "a PostgreSQL database (its URL cannot be read)".into(),
            },
        }
    }

    /// The password in a `database_url`, which must be hidden wherever it appears, not only
    /// as part of the URL.
    pub fn password_in(url: &str) -> Option<String> {
        Database::from_url(Some(url), Path::new(""))
            .ok()?
            .password()
    }

    /// The password in the URL, which must never be shown.
    pub fn password(&self) -> Option<String> {
        let Database::Postgres(url) = self else {
            return None;
        };
        let (config, _) = super::postgres::parse(url).ok()?;
        let password = String::from_utf8_lossy(config.get_password()?).into_owned();
        (!password.is_empty()).then_some(password)
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({})", self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_sqlite_file_or_a_postgres_database() {
        let default = Path::new("/home/me/.mecha/mecha.db");
        assert_eq!(
            Database::from_url(None, default).unwrap(),
            Database::Sqlite(default.to_owned())
        );
        assert_eq!(
            Database::from_url(Some(" "), default).unwrap(),
            Database::Sqlite(default.to_owned())
        );
        assert_eq!(
            Database::from_url(Some("sqlite:///var/lib/mecha.db"), default).unwrap(),
            Database::Sqlite("/var/lib/mecha.db".into())
        );
        let url = "postgres://mecha:s3cret@db.internal:5433/mecha";
        let database = Database::from_url(Some(url), default).unwrap();
        assert_eq!(database, Database::Postgres(url.into()));
        assert_eq!(
            database.describe(),
            "postgres://mecha@db.internal:5433/mecha"
        );
        assert_eq!(
            format!("{database:?}"),
            "Database(postgres://mecha@db.internal:5433/mecha)"
        );
        assert_eq!(database.password().as_deref(), Some("s3cret"));
        for bad in ["mysql://root:s3cret@db/mecha", "sqlite://", "s3cret"] {
            let error = Database::from_url(Some(bad), default).unwrap_err();
            assert!(matches!(error, Error::InvalidUrl { .. }), "{error}");
            assert!(!error.to_string().contains("s3cret"), "{error}");
        }
    }
}
