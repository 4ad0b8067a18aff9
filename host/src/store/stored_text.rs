//! How stored values become text and back. The one conversion pair every stored enum goes through: its `as_str` name, in SQL and in
//! text, and back via its `ALL` list. `stored_as_text!(Type, ErrorVariant)` implements
//! `Display`, `FromStr`, and the parameter and column conversions of both backends (rusqlite's
//! `ToSql` and `FromSql`, PostgreSQL's as `text`) from those two, so the states of events, tasks
//! and workers (and audit outcomes) cannot drift apart in how they are stored, on either.

macro_rules! stored_as_text {
    ($type:ty, $unknown:ident) => {
        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $type {
            type Err = $crate::store::Error;

            fn from_str(value: &str) -> Result<$type, $crate::store::Error> {
                <$type>::ALL
                    .into_iter()
                    .find(|known| known.as_str() == value)
                    .ok_or_else(|| $crate::store::Error::$unknown {
                        value: $crate::store::error::quote(value),
                    })
            }
        }

        impl ::rusqlite::types::ToSql for $type {
            fn to_sql(&self) -> ::rusqlite::Result<::rusqlite::types::ToSqlOutput<'_>> {
                Ok(::rusqlite::types::ToSqlOutput::Borrowed(
                    ::rusqlite::types::ValueRef::Text(self.as_str().as_bytes()),
                ))
            }
        }

        impl ::rusqlite::types::FromSql for $type {
            fn column_result(
                value: ::rusqlite::types::ValueRef<'_>,
            ) -> ::rusqlite::types::FromSqlResult<$type> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|error: $crate::store::Error| {
                        ::rusqlite::types::FromSqlError::Other(Box::new(error))
                    })
            }
        }

        $crate::store::stored_text::postgres_text!($type, value => value.as_str());
    };
}

pub(super) use stored_as_text;

/// PostgreSQL's `ToSql` and `FromSql` for a type stored as `text`: `$text` (in terms of
/// `$value`) going in, `FromStr` coming out.
macro_rules! postgres_text {
    ($type:ty, $value:ident => $text:expr) => {
        impl ::tokio_postgres::types::ToSql for $type {
            fn to_sql(
                &self,
                ty: &::tokio_postgres::types::Type,
                out: &mut ::bytes::BytesMut,
            ) -> Result<::tokio_postgres::types::IsNull, Box<dyn ::std::error::Error + Sync + Send>>
            {
                let $value = self;
                <&str as ::tokio_postgres::types::ToSql>::to_sql(&$text, ty, out)
            }

            fn accepts(ty: &::tokio_postgres::types::Type) -> bool {
                <&str as ::tokio_postgres::types::ToSql>::accepts(ty)
            }

            ::tokio_postgres::types::to_sql_checked!();
        }

        impl<'a> ::tokio_postgres::types::FromSql<'a> for $type {
            fn from_sql(
                ty: &::tokio_postgres::types::Type,
                raw: &'a [u8],
            ) -> Result<$type, Box<dyn ::std::error::Error + Sync + Send>> {
                Ok(<&str as ::tokio_postgres::types::FromSql>::from_sql(ty, raw)?.parse()?)
            }

            fn accepts(ty: &::tokio_postgres::types::Type) -> bool {
                <&str as ::tokio_postgres::types::FromSql>::accepts(ty)
            }
        }
    };
}

pub(super) use postgres_text;

/// `Display`, `FromStr` (32 hex characters, either case, kept lowercase), the `String`
/// conversions serde uses, `ToSql` and `FromSql` for an id newtype over a `String`, so every
/// kind of id is parsed, stored and shown one way.
macro_rules! hex_id {
    ($type:ident, $invalid:ident) => {
        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::str::FromStr for $type {
            type Err = $crate::store::Error;

            fn from_str(value: &str) -> Result<$type, $crate::store::Error> {
                $crate::store::event_id::parse_hex(value)
                    .map($type)
                    .ok_or_else(|| $crate::store::Error::$invalid {
                        value: $crate::store::error::quote(value),
                    })
            }
        }

        impl TryFrom<String> for $type {
            type Error = $crate::store::Error;

            fn try_from(value: String) -> Result<$type, $crate::store::Error> {
                value.parse()
            }
        }

        impl From<$type> for String {
            fn from(id: $type) -> String {
                id.0
            }
        }

        impl ::rusqlite::types::ToSql for $type {
            fn to_sql(&self) -> ::rusqlite::Result<::rusqlite::types::ToSqlOutput<'_>> {
                Ok(::rusqlite::types::ToSqlOutput::Borrowed(
                    ::rusqlite::types::ValueRef::Text(self.0.as_bytes()),
                ))
            }
        }

        impl ::rusqlite::types::FromSql for $type {
            fn column_result(
                value: ::rusqlite::types::ValueRef<'_>,
            ) -> ::rusqlite::types::FromSqlResult<$type> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|error: $crate::store::Error| {
                        ::rusqlite::types::FromSqlError::Other(Box::new(error))
                    })
            }
        }

        $crate::store::stored_text::postgres_text!($type, id => id.0.as_str());
    };
}

pub(super) use hex_id;
