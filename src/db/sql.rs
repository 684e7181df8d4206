//! Statements: the [`Sql`] builder, its binding to each driver, and the statement helpers
//! (`IN` lists, multi-row inserts, column updates, id checks).

use sqlx::{Postgres, Sqlite};

use super::pool::Exec;
use super::value::{time_to_text, Val};
use super::DbResult;

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

    /// The SQL text.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// The bound arguments, in placeholder order.
    pub(super) fn args(&self) -> &[Val] {
        &self.args
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

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;
type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

pub(super) fn sqlite_query(q: &Sql) -> SqliteQuery<'_> {
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

pub(super) fn pg_query(q: &Sql) -> PgQuery<'_> {
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
    mut tx: impl Exec,
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
    mut tx: impl Exec,
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
pub async fn existing_ids(mut db: impl Exec, table: &str, ids: &[i64]) -> DbResult<Vec<i64>> {
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
