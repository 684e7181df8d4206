//! The backend-neutral [`Row`] and the decoding of driver rows into it.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Postgres, Row as _, Sqlite, TypeInfo, ValueRef};

use super::value::{text_to_time, Val};
use super::{DbError, DbResult};

/// Column names of a result, shared by its rows.
#[derive(Debug)]
pub(super) struct Names {
    list: Vec<String>,
    index: HashMap<String, usize>,
    /// Postgres column types (SQLite types are per value, read from each value).
    pg_types: Vec<PgKind>,
}

/// How a Postgres column is decoded.
#[derive(Debug, Clone, Copy)]
pub(super) enum PgKind {
    Int8,
    Int4,
    Int2,
    Bool,
    Float8,
    Float4,
    Numeric,
    Timestamptz,
    Timestamp,
    Bytea,
    Text,
}

impl Names {
    /// Names of a result's columns, with their Postgres types (empty on SQLite).
    pub(super) fn new(list: Vec<String>, pg_types: Vec<PgKind>) -> Names {
        let index = list
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Names {
            list,
            index,
            pg_types,
        }
    }

    /// The number of columns.
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// The name of column `i`.
    pub(super) fn name(&self, i: usize) -> &str {
        self.list.get(i).map_or("", String::as_str)
    }
}

impl PgKind {
    fn of(type_name: &str) -> PgKind {
        match type_name {
            "INT8" => PgKind::Int8,
            "INT4" => PgKind::Int4,
            "INT2" => PgKind::Int2,
            "BOOL" => PgKind::Bool,
            "FLOAT8" => PgKind::Float8,
            "FLOAT4" => PgKind::Float4,
            "NUMERIC" => PgKind::Numeric,
            "TIMESTAMPTZ" => PgKind::Timestamptz,
            "TIMESTAMP" => PgKind::Timestamp,
            "BYTEA" => PgKind::Bytea,
            _ => PgKind::Text,
        }
    }
}

/// A decoded row, independent of the backend.
#[derive(Debug)]
pub struct Row {
    names: Arc<Names>,
    vals: Vec<Val>,
    /// Where the next lookup is tried first: decoders read columns in selection order, so
    /// most lookups cost one comparison instead of a hash.
    next: AtomicUsize,
}

impl Clone for Row {
    fn clone(&self) -> Self {
        Row {
            names: self.names.clone(),
            vals: self.vals.clone(),
            next: AtomicUsize::new(self.next.load(Ordering::Relaxed)),
        }
    }
}

impl Row {
    pub(super) fn new(names: Arc<Names>, vals: Vec<Val>) -> Row {
        Row {
            names,
            vals,
            next: AtomicUsize::new(0),
        }
    }

    fn get(&self, name: &str) -> DbResult<&Val> {
        let guess = self.next.load(Ordering::Relaxed);
        let i = if self.names.list.get(guess).is_some_and(|n| n == name) {
            guess
        } else {
            *self
                .names
                .index
                .get(name)
                .ok_or_else(|| DbError::Decode(name.to_string(), "missing column"))?
        };
        self.next.store(i + 1, Ordering::Relaxed);
        self.vals
            .get(i)
            .ok_or_else(|| DbError::Decode(name.to_string(), "missing column"))
    }

    /// A non-null integer.
    pub fn int(&self, name: &str) -> DbResult<i64> {
        self.opt_int(name)?
            .ok_or_else(|| DbError::Decode(name.to_string(), "unexpected null"))
    }

    /// A nullable integer.
    pub fn opt_int(&self, name: &str) -> DbResult<Option<i64>> {
        match self.get(name)? {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(*v)),
            Val::Bool(b) => Ok(Some(i64::from(*b))),
            Val::Float(f) => Ok(Some(*f as i64)),
            _ => Err(DbError::Decode(name.to_string(), "not an integer")),
        }
    }

    /// A nullable float.
    pub fn opt_float(&self, name: &str) -> DbResult<Option<f64>> {
        match self.get(name)? {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(*v as f64)),
            Val::Float(f) => Ok(Some(*f)),
            _ => Err(DbError::Decode(name.to_string(), "not a number")),
        }
    }

    /// A non-null string.
    pub fn text(&self, name: &str) -> DbResult<String> {
        self.opt_text(name)?
            .ok_or_else(|| DbError::Decode(name.to_string(), "unexpected null"))
    }

    /// A nullable string.
    pub fn opt_text(&self, name: &str) -> DbResult<Option<String>> {
        match self.get(name)? {
            Val::Null => Ok(None),
            Val::Text(s) => Ok(Some(s.clone())),
            Val::Int(v) => Ok(Some(v.to_string())),
            _ => Err(DbError::Decode(name.to_string(), "not text")),
        }
    }

    /// A boolean (integers 0/1 on SQLite).
    pub fn bool(&self, name: &str) -> DbResult<bool> {
        match self.get(name)? {
            Val::Bool(b) => Ok(*b),
            Val::Int(v) => Ok(*v != 0),
            _ => Err(DbError::Decode(name.to_string(), "not a boolean")),
        }
    }

    /// A non-null timestamp.
    pub fn time(&self, name: &str) -> DbResult<DateTime<Utc>> {
        self.opt_time(name)?
            .ok_or_else(|| DbError::Decode(name.to_string(), "unexpected null"))
    }

    /// A nullable timestamp.
    pub fn opt_time(&self, name: &str) -> DbResult<Option<DateTime<Utc>>> {
        match self.get(name)? {
            Val::Null => Ok(None),
            Val::Time(t) => Ok(Some(*t)),
            Val::Text(s) => text_to_time(s)
                .map(Some)
                .ok_or_else(|| DbError::Decode(name.to_string(), "not a timestamp")),
            _ => Err(DbError::Decode(name.to_string(), "not a timestamp")),
        }
    }

    /// A nullable byte string.
    pub fn opt_bytes(&self, name: &str) -> DbResult<Option<Vec<u8>>> {
        match self.get(name)? {
            Val::Null => Ok(None),
            Val::Bytes(b) => Ok(Some(b.clone())),
            Val::Text(s) => Ok(Some(s.as_bytes().to_vec())),
            _ => Err(DbError::Decode(name.to_string(), "not bytes")),
        }
    }
}

fn names_of<R: sqlx::Row>(row: &R) -> Arc<Names> {
    let list: Vec<String> = row.columns().iter().map(|c| c.name().to_string()).collect();
    let pg_types = if <R::Database as sqlx::Database>::NAME == <Postgres as sqlx::Database>::NAME {
        row.columns()
            .iter()
            .map(|c| PgKind::of(c.type_info().name()))
            .collect()
    } else {
        Vec::new()
    };
    Arc::new(Names::new(list, pg_types))
}

/// Decodes one value whose type is already known (no second type check by sqlx).
fn decode_as<'r, T, DB>(raw: <DB as sqlx::Database>::ValueRef<'r>, i: usize) -> DbResult<T>
where
    DB: sqlx::Database,
    T: sqlx::Decode<'r, DB>,
{
    T::decode(raw).map_err(|source| {
        DbError::Sqlx(sqlx::Error::ColumnDecode {
            index: i.to_string(),
            source,
        })
    })
}

pub(super) fn decode_sqlite(r: &SqliteRow, names: &Arc<Names>) -> DbResult<Row> {
    let mut vals = Vec::with_capacity(r.len());
    for i in 0..r.len() {
        let raw = r.try_get_raw(i)?;
        vals.push(if raw.is_null() {
            Val::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" | "INT" | "BIGINT" => {
                    Val::Int(decode_as::<_, Sqlite>(raw, i)?)
                }
                "REAL" | "FLOAT" | "DOUBLE" => Val::Float(decode_as::<_, Sqlite>(raw, i)?),
                "BLOB" => Val::Bytes(decode_as::<_, Sqlite>(raw, i)?),
                _ => Val::Text(decode_as::<_, Sqlite>(raw, i)?),
            }
        });
    }
    Ok(Row::new(names.clone(), vals))
}

pub(super) fn decode_pg(r: &PgRow, names: &Arc<Names>) -> DbResult<Row> {
    let mut vals = Vec::with_capacity(r.len());
    for (i, kind) in names.pg_types.iter().enumerate() {
        let raw = r.try_get_raw(i)?;
        if raw.is_null() {
            vals.push(Val::Null);
            continue;
        }
        vals.push(match kind {
            PgKind::Int8 => Val::Int(decode_as::<i64, Postgres>(raw, i)?),
            PgKind::Int4 => Val::Int(decode_as::<i32, Postgres>(raw, i)?.into()),
            PgKind::Int2 => Val::Int(decode_as::<i16, Postgres>(raw, i)?.into()),
            PgKind::Bool => Val::Bool(decode_as::<_, Postgres>(raw, i)?),
            PgKind::Float8 => Val::Float(decode_as::<_, Postgres>(raw, i)?),
            PgKind::Float4 => Val::Float(decode_as::<f32, Postgres>(raw, i)?.into()),
            PgKind::Numeric => Val::Float(
                decode_as::<String, Postgres>(raw, i)
                    .ok()
                    .and_then(|s| f64::from_str(&s).ok())
                    .unwrap_or_default(),
            ),
            PgKind::Timestamptz => Val::Time(decode_as::<_, Postgres>(raw, i)?),
            PgKind::Timestamp => {
                Val::Time(decode_as::<chrono::NaiveDateTime, Postgres>(raw, i)?.and_utc())
            }
            PgKind::Bytea => Val::Bytes(decode_as::<_, Postgres>(raw, i)?),
            PgKind::Text => Val::Text(decode_as::<_, Postgres>(raw, i)?),
        });
    }
    Ok(Row::new(names.clone(), vals))
}

/// Decodes every row of a driver result.
pub(super) fn decode_all<R: sqlx::Row>(
    rows: Vec<R>,
    decode: fn(&R, &Arc<Names>) -> DbResult<Row>,
) -> DbResult<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let names = names_of(first);
    rows.iter().map(|r| decode(r, &names)).collect()
}

/// Streams a driver result through `f`, one decoded row at a time.
pub(super) async fn decode_each<'a, R: sqlx::Row>(
    mut rows: futures::stream::BoxStream<'a, Result<R, sqlx::Error>>,
    decode: fn(&R, &Arc<Names>) -> DbResult<Row>,
    mut f: impl FnMut(Row) -> DbResult<()>,
) -> DbResult<()> {
    let mut names = None;
    while let Some(r) = rows.try_next().await? {
        let names = names.get_or_insert_with(|| names_of(&r));
        f(decode(&r, names)?)?;
    }
    Ok(())
}

pub(super) fn scalar_int(rows: &[Row]) -> DbResult<i64> {
    let row = rows
        .first()
        .ok_or_else(|| DbError::Decode("scalar".into(), "no row"))?;
    match row.vals.first() {
        Some(Val::Int(v)) => Ok(*v),
        Some(Val::Bool(b)) => Ok(i64::from(*b)),
        _ => Err(DbError::Decode("scalar".into(), "not an integer")),
    }
}
