//! Storage: one query path over SQLite and PostgreSQL.
//!
//! Every query in the code base is written once, in portable SQL with `$1..$n` placeholders
//! (both sqlx drivers accept them), and run through [`Db`] or [`Tx`]. Rows come back as the
//! backend-neutral [`Row`]. The few places where the dialects differ (case-insensitive search,
//! row locking, timestamp encoding) are answered by [`Dialect`], so no other module branches on
//! the backend.

pub mod auth_profiles;
pub mod groups;
pub mod jobs;
pub mod nodes;
pub mod pools;
pub mod scan_ranges;
pub mod servers;
mod sqlite_setup;
pub mod switches;
pub mod users;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::TryStreamExt;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{Column, PgPool, Postgres, Row as _, Sqlite, SqlitePool, TypeInfo, ValueRef};

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The driver reported an error (connection, syntax, constraint).
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// A column was missing or held an unexpected type.
    #[error("column {0}: {1}")]
    Decode(String, &'static str),
    /// Migrations could not be applied.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// The name of the violated constraint, when this is a constraint violation.
    ///
    /// SQLite does not name constraints in its errors, so for it the message text
    /// (`UNIQUE constraint failed: table.col`) is returned; callers match on either form.
    pub fn constraint(&self) -> Option<String> {
        let DbError::Sqlx(sqlx::Error::Database(e)) = self else {
            return None;
        };
        if let Some(c) = e.constraint() {
            return Some(c.to_string());
        }
        let msg = e.message();
        if msg.contains("constraint failed") {
            return Some(msg.to_string());
        }
        None
    }

    /// True when the error is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when the error is a foreign-key violation.
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e)) if e.is_foreign_key_violation())
    }
}

/// Result alias for storage calls.
pub type DbResult<T> = Result<T, DbError>;

/// Which SQL engine is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// A case-insensitive "contains" test of `expr` against the bound pattern that
    /// [`Dialect::contains_pattern`] made from the same `term`. An ASCII term (the usual case:
    /// names, models, serials, URLs) needs only ASCII case folding, which both engines do
    /// cheaply: SQLite's `LIKE`, and Postgres' `ILIKE` under the "C" collation (the database's
    /// own collation would lowercase every value through the C library's wide-character
    /// functions first). Any other term gets full Unicode folding: `ILIKE` under the database
    /// collation on Postgres, the Rust `regex` engine behind `REGEXP` on SQLite.
    pub fn contains_sql(self, expr: &str, placeholder: &str, term: &str) -> String {
        match (self, term.is_ascii()) {
            (Dialect::Sqlite, true) => format!("{expr} LIKE {placeholder} ESCAPE '\\'"),
            (Dialect::Sqlite, false) => format!("{expr} REGEXP {placeholder}"),
            (Dialect::Postgres, true) => {
                format!("{expr} ILIKE {placeholder} COLLATE \"C\" ESCAPE '\\'")
            }
            (Dialect::Postgres, false) => format!("{expr} ILIKE {placeholder} ESCAPE '\\'"),
        }
    }

    /// The bound value for [`Dialect::contains_sql`]: `term` taken literally.
    pub fn contains_pattern(self, term: &str) -> String {
        if self == Dialect::Sqlite && !term.is_ascii() {
            return format!("(?i){}", regex_escape(term));
        }
        let mut p = String::with_capacity(term.len() + 2);
        p.push('%');
        for c in term.chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('%');
        p
    }

    /// Row-lock suffix for a claim query (`FOR UPDATE SKIP LOCKED` on Postgres; SQLite
    /// serialises writers, so nothing is needed there).
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

fn regex_escape(term: &str) -> String {
    let mut out = String::with_capacity(term.len() * 2);
    for c in term.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A bound value or a decoded column.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// SQL NULL.
    Null,
    /// Any integer column.
    Int(i64),
    /// Floating point.
    Float(f64),
    /// Text.
    Text(String),
    /// Boolean (an integer 0/1 on SQLite).
    Bool(bool),
    /// A UTC instant (`timestamptz` on Postgres, fixed-width text on SQLite).
    Time(DateTime<Utc>),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<i32> for Val {
    fn from(v: i32) -> Self {
        Val::Int(v.into())
    }
}
impl From<u16> for Val {
    fn from(v: u16) -> Self {
        Val::Int(v.into())
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Self {
        Val::Float(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Bool(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl From<DateTime<Utc>> for Val {
    fn from(v: DateTime<Utc>) -> Self {
        Val::Time(v)
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Self {
        Val::Bytes(v)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

/// Fixed-width UTC text for SQLite, so that text order is time order.
pub fn time_to_text(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn text_to_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

/// DRF's rendering of a datetime: ISO 8601, UTC as `Z`, microseconds only when non-zero.
pub fn render_time(t: &DateTime<Utc>) -> String {
    let format = if t.timestamp_subsec_micros() == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Micros
    };
    t.to_rfc3339_opts(format, true)
}

/// A query: portable SQL text plus its arguments.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    text: String,
    args: Vec<Val>,
}

impl Sql {
    /// Starts a query from SQL text whose placeholders are bound with [`Sql::arg`] in order.
    pub fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Binds the next `$n` placeholder already written in the text.
    pub fn arg(mut self, v: impl Into<Val>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Appends raw SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a fresh placeholder bound to `v` and returns its text (`$n`).
    pub fn bind(&mut self, v: impl Into<Val>) -> String {
        self.args.push(v.into());
        let p = format!("${}", self.args.len());
        self.text.push_str(&p);
        p
    }

    /// Adds an argument without writing its placeholder; returns the placeholder text.
    pub fn bind_later(&mut self, v: impl Into<Val>) -> String {
        self.args.push(v.into());
        format!("${}", self.args.len())
    }

    /// Puts `text` in place of the SQL text written so far and returns that text; the
    /// arguments stay, so fragments built in turn share one placeholder numbering.
    pub fn replace_text(&mut self, text: String) -> String {
        std::mem::replace(&mut self.text, text)
    }
}

/// Column names of a result, shared by its rows.
#[derive(Debug)]
struct Names {
    list: Vec<String>,
    index: HashMap<String, usize>,
    /// Postgres column types (SQLite types are per value, read from each value).
    pg_types: Vec<PgKind>,
}

/// How a Postgres column is decoded.
#[derive(Debug, Clone, Copy)]
enum PgKind {
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
    fn new(names: Arc<Names>, vals: Vec<Val>) -> Row {
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
    let index = list
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let pg_types = if <R::Database as sqlx::Database>::NAME == <Postgres as sqlx::Database>::NAME {
        row.columns()
            .iter()
            .map(|c| PgKind::of(c.type_info().name()))
            .collect()
    } else {
        Vec::new()
    };
    Arc::new(Names {
        list,
        index,
        pg_types,
    })
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

fn decode_sqlite(r: &SqliteRow, names: &Arc<Names>) -> DbResult<Row> {
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

fn decode_pg(r: &PgRow, names: &Arc<Names>) -> DbResult<Row> {
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
fn decode_all<R: sqlx::Row>(
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
async fn decode_each<'a, R: sqlx::Row>(
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

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;
type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn sqlite_query(q: &Sql) -> SqliteQuery<'_> {
    let mut query = sqlx::query(&q.text);
    for a in &q.args {
        query = match a {
            Val::Null => query.bind(None::<i64>),
            Val::Int(v) => query.bind(*v),
            Val::Float(v) => query.bind(*v),
            Val::Text(v) => query.bind(v.as_str()),
            Val::Bool(v) => query.bind(*v),
            Val::Time(v) => query.bind(time_to_text(v)),
            Val::Bytes(v) => query.bind(v.as_slice()),
        };
    }
    query
}

/// A NULL whose parameter type is left for Postgres to infer from the statement (OID 0 in the
/// Parse message), so one placeholder may carry NULL or a value of the column's type, in either
/// order, whatever the column type is.
struct PgUntypedNull;

impl sqlx::Type<Postgres> for PgUntypedNull {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for PgUntypedNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

fn pg_query(q: &Sql) -> PgQuery<'_> {
    let mut query = sqlx::query(&q.text);
    for a in &q.args {
        query = match a {
            Val::Null => query.bind(PgUntypedNull),
            Val::Int(v) => query.bind(*v),
            Val::Float(v) => query.bind(*v),
            Val::Text(v) => query.bind(v.as_str()),
            Val::Bool(v) => query.bind(*v),
            Val::Time(v) => query.bind(*v),
            Val::Bytes(v) => query.bind(v.as_slice()),
        };
    }
    query
}

/// A connection pool on either backend.
#[derive(Clone, Debug)]
pub enum Db {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// An open write transaction on either backend.
pub enum Tx {
    /// SQLite, opened with `BEGIN IMMEDIATE`.
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    /// PostgreSQL.
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) with the pool settings this
    /// server relies on: WAL, a 5 s busy timeout and foreign keys on SQLite.
    pub async fn connect(url: &str, max_connections: u32) -> DbResult<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Connections are checked by use; a ping before every acquire costs a round trip
            // per query.
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            sqlite_setup::install();
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                .pragma("synchronous", "NORMAL")
                .with_regexp();
            let pool = SqlitePoolOptions::new()
                .after_connect(|conn, _| Box::pin(sqlite_setup::stable_plans(conn)))
                .max_connections(max_connections)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool))
        }
    }

    /// The dialect of this pool.
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Applies the migrations of this backend (`migrations/sqlite` or `migrations/postgres`).
    pub async fn migrate(&self) -> DbResult<()> {
        match self {
            Db::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await?,
            Db::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// Opens a write transaction (`BEGIN IMMEDIATE` on SQLite, so a read-then-write
    /// transaction never fails to upgrade its lock).
    pub async fn begin(&self) -> DbResult<Tx> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Runs a statement, returning the number of rows it changed.
    pub async fn execute(&self, q: &Sql) -> DbResult<u64> {
        Ok(match self {
            Db::Sqlite(p) => sqlite_query(q).execute(p).await?.rows_affected(),
            Db::Postgres(p) => pg_query(q).execute(p).await?.rows_affected(),
        })
    }

    /// All rows of a query.
    pub async fn fetch_all(&self, q: &Sql) -> DbResult<Vec<Row>> {
        match self {
            Db::Sqlite(p) => decode_all(sqlite_query(q).fetch_all(p).await?, decode_sqlite),
            Db::Postgres(p) => decode_all(pg_query(q).fetch_all(p).await?, decode_pg),
        }
    }

    /// Hands each row of a query to `f` as it arrives, so a large answer is never held twice.
    pub async fn fetch_each(&self, q: &Sql, f: impl FnMut(Row) -> DbResult<()>) -> DbResult<()> {
        match self {
            Db::Sqlite(p) => decode_each(sqlite_query(q).fetch(p), decode_sqlite, f).await,
            Db::Postgres(p) => decode_each(pg_query(q).fetch(p), decode_pg, f).await,
        }
    }

    /// At most one row.
    pub async fn fetch_optional(&self, q: &Sql) -> DbResult<Option<Row>> {
        Ok(self.fetch_all(q).await?.into_iter().next())
    }

    /// A single integer (e.g. `COUNT(*)`, an `INSERT ... RETURNING id`).
    pub async fn fetch_int(&self, q: &Sql) -> DbResult<i64> {
        let rows = self.fetch_all(q).await?;
        scalar_int(&rows)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> DbResult<()> {
        self.fetch_all(&Sql::new("SELECT 1 AS one"))
            .await
            .map(|_| ())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

fn scalar_int(rows: &[Row]) -> DbResult<i64> {
    let row = rows
        .first()
        .ok_or_else(|| DbError::Decode("scalar".into(), "no row"))?;
    match row.vals.first() {
        Some(Val::Int(v)) => Ok(*v),
        Some(Val::Bool(b)) => Ok(i64::from(*b)),
        _ => Err(DbError::Decode("scalar".into(), "not an integer")),
    }
}

impl Tx {
    /// The dialect of this transaction.
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(_) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement, returning the number of rows it changed.
    pub async fn execute(&mut self, q: &Sql) -> DbResult<u64> {
        Ok(match self {
            Tx::Sqlite(t) => sqlite_query(q).execute(&mut **t).await?.rows_affected(),
            Tx::Postgres(t) => pg_query(q).execute(&mut **t).await?.rows_affected(),
        })
    }

    /// All rows of a query.
    pub async fn fetch_all(&mut self, q: &Sql) -> DbResult<Vec<Row>> {
        match self {
            Tx::Sqlite(t) => decode_all(sqlite_query(q).fetch_all(&mut **t).await?, decode_sqlite),
            Tx::Postgres(t) => decode_all(pg_query(q).fetch_all(&mut **t).await?, decode_pg),
        }
    }

    /// At most one row.
    pub async fn fetch_optional(&mut self, q: &Sql) -> DbResult<Option<Row>> {
        Ok(self.fetch_all(q).await?.into_iter().next())
    }

    /// A single integer.
    pub async fn fetch_int(&mut self, q: &Sql) -> DbResult<i64> {
        let rows = self.fetch_all(q).await?;
        scalar_int(&rows)
    }

    /// Commits.
    pub async fn commit(self) -> DbResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// Appends `(ph1, ph2, ...)` binding every id, for `IN` lists.
pub fn in_list(sql: &mut Sql, ids: &[i64]) {
    sql.push("(");
    if ids.is_empty() {
        sql.push("NULL");
    }
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(*id);
    }
    sql.push(")");
}

/// Inserts `rows` into `table` in multi-row statements.
pub async fn insert_rows(
    tx: &mut Tx,
    table: &str,
    cols: &[&str],
    rows: Vec<Vec<Val>>,
) -> DbResult<()> {
    // Stay far below both engines' bind-parameter limits.
    let per_stmt = (900 / cols.len().max(1)).max(1);
    for chunk in rows.chunks(per_stmt) {
        let mut sql = Sql::new(format!("INSERT INTO {table} ({}) VALUES ", cols.join(", ")));
        for (i, row) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, v) in row.iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.bind(v.clone());
            }
            sql.push(")");
        }
        tx.execute(&sql).await?;
    }
    Ok(())
}

/// `UPDATE table SET col = value, ... WHERE id = $n` for the columns that have a value.
pub async fn update_columns(
    tx: &mut Tx,
    table: &str,
    id: i64,
    cols: impl Iterator<Item = (&str, Option<Val>)>,
) -> DbResult<u64> {
    let mut sql = Sql::new(format!("UPDATE {table} SET "));
    let mut first = true;
    for (name, val) in cols {
        let Some(val) = val else { continue };
        if !first {
            sql.push(", ");
        }
        first = false;
        sql.push(&format!("{name} = "));
        sql.bind(val);
    }
    if first {
        return Ok(0);
    }
    sql.push(" WHERE id = ");
    sql.bind(id);
    tx.execute(&sql).await
}

/// Ids among `ids` that exist in `table`.
pub async fn existing_ids(db: &Db, table: &str, ids: &[i64]) -> DbResult<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(format!("SELECT id FROM {table} WHERE id IN "));
    in_list(&mut sql, ids);
    db.fetch_all(&sql)
        .await?
        .iter()
        .map(|r| r.int("id"))
        .collect()
}

/// Current time truncated to microseconds (what both backends store).
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_times_like_drf() {
        let t = DateTime::parse_from_rfc3339("2026-01-11T11:13:05.109631Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(render_time(&t), "2026-01-11T11:13:05.109631Z");
        let t = DateTime::parse_from_rfc3339("2026-01-11T11:13:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(render_time(&t), "2026-01-11T11:13:05Z");
        assert_eq!(time_to_text(&t), "2026-01-11T11:13:05.000000Z");
        assert_eq!(text_to_time("2026-01-11T11:13:05.000000Z"), Some(t));
    }

    #[test]
    fn patterns_are_literal() {
        assert_eq!(
            Dialect::Postgres.contains_pattern("a%b_c\\"),
            "%a\\%b\\_c\\\\%"
        );
        assert_eq!(Dialect::Sqlite.contains_pattern("a.b%"), "%a.b\\%%");
        assert_eq!(Dialect::Sqlite.contains_pattern("é.b*"), "(?i)é\\.b\\*");
        assert!(Dialect::Sqlite
            .contains_sql("x", "$1", "é")
            .contains("REGEXP"));
        assert!(Dialect::Sqlite
            .contains_sql("x", "$1", "e")
            .contains("LIKE"));
    }
}
