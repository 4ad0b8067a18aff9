//! How stored values become text and back. The one conversion pair every stored enum goes through: its `as_str` name, in SQL and in
//! text, and back via its `ALL` list. `stored_as_text!(Type, ErrorVariant)` implements
//! `Display`, `FromStr`, `ToSql` and `FromSql` from those two, so the states of events, tasks
//! and workers (and audit outcomes) cannot drift apart in how they are stored.

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
    };
}

pub(super) use stored_as_text;

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
    };
}

pub(super) use hex_id;
