//! Reads on SQLite outside a transaction, on connections of the server's own.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every row to the async
//! side over a channel, after copying each of its values (`sqlite3_value_dup`, one allocation
//! per column, freed later on the other thread). For a page of fifty rows that is a fifth of
//! the request; for the 10,000-server list it is most of it. These readers step the statement
//! on the calling thread and build each [`Row`] from the column values in place: one copy of
//! each text value, no channel, no cross-thread frees.
//!
//! What goes through them: statements run on the pool ([`super::Db`]) whose prepared form is
//! read-only (`sqlite3_stmt_readonly`). Writes, `RETURNING` statements and everything inside a
//! transaction stay on sqlx. A read here sees every transaction committed before it starts
//! (WAL mode: each statement reads the latest committed snapshot), the same guarantee a read
//! on any pool connection has.
//!
//! Each reader keeps its prepared statements (like sqlx's per-connection cache), so a
//! statement is planned once per reader, not per request. A statement runs to completion
//! while the reader is held and is reset when it is returned to the cache, so no read
//! transaction outlives its statement (checkpoints are never held back). Readers are opened on
//! demand, at most one per thread that is reading at that moment, and at most `keep` idle ones
//! are kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::row::{Names, Row};
use super::sql::Sql;
use super::value::{time_to_text, Val};
use super::{DbError, DbResult};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Prepared statements kept per reader.
const STATEMENT_CACHE: usize = 128;

/// The readers of one SQLite database file.
#[derive(Debug)]
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

/// What [`Readers::each`] did with a statement.
pub(super) enum Ran {
    /// The statement was read-only and ran here.
    Done,
    /// The statement writes: run it on a sqlx connection.
    Writes,
}

impl Readers {
    /// Readers for the database at `path` (already created and migrated by the sqlx pool),
    /// keeping at most `keep` idle connections.
    pub(super) fn new(path: &Path, keep: usize) -> Arc<Readers> {
        Arc::new(Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            keep: keep.max(1),
        })
    }

    fn open(&self) -> DbResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // The same planner setting as the pool's connections (see `sqlite_setup`).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        register_regexp(&conn)?;
        Ok(conn)
    }

    fn take(&self) -> DbResult<Connection> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        match idle {
            Some(c) => Ok(c),
            None => self.open(),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.keep {
                idle.push(conn);
            }
        }
    }

    /// Runs `q` if it is read-only, handing each row to `f` as it is produced.
    pub(super) fn each(&self, q: &Sql, f: &mut dyn FnMut(Row) -> DbResult<()>) -> DbResult<Ran> {
        let conn = self.take()?;
        let ran = run(&conn, q, f);
        self.give_back(conn);
        ran
    }
}

fn run(conn: &Connection, q: &Sql, f: &mut dyn FnMut(Row) -> DbResult<()>) -> DbResult<Ran> {
    let mut stmt = conn.prepare_cached(q.text())?;
    if !stmt.readonly() {
        return Ok(Ran::Writes);
    }
    bind(&mut stmt, q.args())?;
    let names = Arc::new(Names::new(
        stmt.column_names()
            .into_iter()
            .map(str::to_string)
            .collect(),
        Vec::new(),
    ));
    let width = names.len();
    let mut rows = stmt.raw_query();
    while let Some(r) = rows.next()? {
        let mut vals = Vec::with_capacity(width);
        for i in 0..width {
            vals.push(match r.get_ref(i)? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(v) => Val::Int(v),
                ValueRef::Real(v) => Val::Float(v),
                ValueRef::Text(t) => Val::Text(
                    std::str::from_utf8(t)
                        .map_err(|_| DbError::Decode(names.name(i).to_string(), "not UTF-8"))?
                        .to_string(),
                ),
                ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
            });
        }
        f(Row::new(names.clone(), vals))?;
    }
    Ok(Ran::Done)
}

/// Binds the arguments the way sqlx does: `$n` (or `?n`) is argument n, a bare `?` the next.
fn bind(stmt: &mut rusqlite::CachedStatement<'_>, args: &[Val]) -> DbResult<()> {
    let mut next = 0usize;
    for i in 1..=stmt.parameter_count() {
        let n = match stmt.parameter_name(i) {
            Some(name) => match name[1..].parse::<usize>() {
                Ok(n) if n >= 1 => n - 1,
                _ => return Err(DbError::Decode(name.to_string(), "unsupported placeholder")),
            },
            None => {
                next += 1;
                next - 1
            }
        };
        let Some(v) = args.get(n) else {
            return Err(DbError::Decode(format!("${}", n + 1), "no argument bound"));
        };
        match v {
            Val::Null => stmt.raw_bind_parameter(i, rusqlite::types::Null)?,
            Val::Int(v) => stmt.raw_bind_parameter(i, v)?,
            Val::Float(v) => stmt.raw_bind_parameter(i, v)?,
            Val::Text(v) => stmt.raw_bind_parameter(i, v.as_str())?,
            Val::Bool(v) => stmt.raw_bind_parameter(i, i64::from(*v))?,
            Val::Time(v) => stmt.raw_bind_parameter(i, time_to_text(v))?,
            Val::Bytes(v) => stmt.raw_bind_parameter(i, v.as_slice())?,
        }
    }
    Ok(())
}

/// `X REGEXP Y` (`regexp(Y, X)`), as on the pool's connections: NULL unless both are text, an
/// error for a pattern that does not compile; each statement compiles its pattern once.
fn register_regexp(conn: &Connection) -> DbResult<()> {
    conn.create_scalar_function(
        "regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let (ValueRef::Text(_), ValueRef::Text(text)) = (ctx.get_raw(0), ctx.get_raw(1)) else {
                return Ok(None);
            };
            let re: Arc<regex::Regex> = ctx.get_or_create_aux(0, |v| -> Result<_, BoxError> {
                Ok(regex::Regex::new(v.as_str()?)?)
            })?;
            let text = std::str::from_utf8(text)
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
            Ok(Some(re.is_match(text)))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers() -> (tempfile::TempDir, Arc<Readers>) {
        // As `Db::connect` does: SQLite's allocator is chosen before SQLite first starts (other
        // tests of this binary check that it was).
        super::super::sqlite_setup::install();
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("r.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, w REAL);
             INSERT INTO t VALUES (1, 'Ärger', 1.5), (2, 'rack', NULL);",
        )
        .expect("schema");
        (dir, Readers::new(&path, 2))
    }

    fn rows(r: &Readers, q: &Sql) -> (bool, Vec<Row>) {
        let mut out = Vec::new();
        let ran = r
            .each(q, &mut |row| {
                out.push(row);
                Ok(())
            })
            .expect("query");
        (matches!(ran, Ran::Done), out)
    }

    #[test]
    fn binds_by_placeholder_number_and_decodes_each_type() {
        let (_dir, r) = readers();
        let q = Sql::new("SELECT id, name, w FROM t WHERE name = $2 OR id = $1 ORDER BY id")
            .arg(2i64)
            .arg("Ärger");
        let (done, found) = rows(&r, &q);
        assert!(done);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].opt_text("name").expect("text").as_deref(),
            Some("Ärger")
        );
        assert_eq!(found[0].opt_float("w").expect("real"), Some(1.5));
        assert_eq!(found[1].opt_float("w").expect("null"), None);
    }

    #[test]
    fn leaves_writes_to_the_pool_and_matches_regexp() {
        let (_dir, r) = readers();
        let (done, _) = rows(
            &r,
            &Sql::new("INSERT INTO t (name) VALUES ('x') RETURNING id"),
        );
        assert!(!done, "a write is not run by the readers");
        let (_, all) = rows(&r, &Sql::new("SELECT COUNT(*) AS n FROM t"));
        assert_eq!(all[0].int("n").expect("count"), 2);
        let q = Sql::new("SELECT id FROM t WHERE name REGEXP $1").arg("(?i)ärger");
        let (_, found) = rows(&r, &q);
        assert_eq!(found.len(), 1);
    }
}
