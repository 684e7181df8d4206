//! Connection pools and transactions: [`Db`] (connect, migrate, ping, close, queries) and
//! [`Tx`].

use std::str::FromStr;
use std::sync::Arc;

use futures::future::BoxFuture;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

use super::row::{decode_all, decode_each, decode_pg, decode_sqlite, scalar_int, Row};
use super::sql::{pg_query, sqlite_query, Sql};
use super::sqlite_read::{Ran, Readers};
use super::{sqlite_setup, DbResult, Dialect};

/// A connection pool on either backend.
#[derive(Clone, Debug)]
pub enum Db {
    /// Embedded SQLite: the sqlx pool (writes, transactions) and the readers for reads
    /// outside a transaction (none for an in-memory database, which is per connection).
    Sqlite(SqlitePool, Option<Arc<Readers>>),
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
            let mut opts = PgConnectOptions::from_str(url)?;
            if loopback_without_ssl_choice(url, &opts) {
                opts = opts.ssl_mode(PgSslMode::Disable);
            }
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
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
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let readers =
                (!in_memory).then(|| Readers::new(opts.get_filename(), max_connections as usize));
            let pool = SqlitePoolOptions::new()
                .after_connect(|conn, _| Box::pin(sqlite_setup::stable_plans(conn)))
                .max_connections(max_connections)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool, readers))
        }
    }

    /// The dialect of this pool.
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(..) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Applies the migrations of this backend (`migrations/sqlite` or `migrations/postgres`).
    pub async fn migrate(&self) -> DbResult<()> {
        match self {
            Db::Sqlite(p, _) => sqlx::migrate!("migrations/sqlite").run(p).await?,
            Db::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// Opens a write transaction (`BEGIN IMMEDIATE` on SQLite, so a read-then-write
    /// transaction never fails to upgrade its lock).
    pub async fn begin(&self) -> DbResult<Tx> {
        Ok(match self {
            Db::Sqlite(p, _) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Runs a statement, returning the number of rows it changed.
    pub async fn execute(&self, q: &Sql) -> DbResult<u64> {
        Ok(match self {
            Db::Sqlite(p, _) => sqlite_query(q).execute(p).await?.rows_affected(),
            Db::Postgres(p) => pg_query(q).execute(p).await?.rows_affected(),
        })
    }

    /// All rows of a query.
    pub async fn fetch_all(&self, q: &Sql) -> DbResult<Vec<Row>> {
        match self {
            Db::Sqlite(p, readers) => {
                if let Some(r) = readers {
                    let mut rows = Vec::new();
                    if let Ran::Done = r.each(q, &mut |row| {
                        rows.push(row);
                        Ok(())
                    })? {
                        return Ok(rows);
                    }
                }
                decode_all(sqlite_query(q).fetch_all(p).await?, decode_sqlite)
            }
            Db::Postgres(p) => decode_all(pg_query(q).fetch_all(p).await?, decode_pg),
        }
    }

    /// Hands each row of a query to `f` as it arrives, so a large answer is never held twice.
    pub async fn fetch_each(
        &self,
        q: &Sql,
        mut f: impl FnMut(Row) -> DbResult<()>,
    ) -> DbResult<()> {
        match self {
            Db::Sqlite(p, readers) => {
                if let Some(r) = readers {
                    if let Ran::Done = r.each(q, &mut f)? {
                        return Ok(());
                    }
                }
                decode_each(sqlite_query(q).fetch(p), decode_sqlite, f).await
            }
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
            Db::Sqlite(p, _) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// True when a Postgres URL names a server on this host (a loopback address, `localhost` or
/// a Unix socket directory) and neither the URL nor `PGSSLMODE` chooses an SSL mode. The
/// default mode (`prefer`) would then encrypt traffic that never leaves the machine, without
/// verifying anything, at a cost on both ends of every statement; such a connection is made
/// without TLS. An explicit `sslmode` (e.g. `require`, `verify-full`) is always honoured.
fn loopback_without_ssl_choice(url: &str, opts: &PgConnectOptions) -> bool {
    let chosen =
        url.to_ascii_lowercase().contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some();
    let host = opts.get_host();
    let local = host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    local && !chosen
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

/// Runs statements on the pool (`&Db`: each on any connection) or inside a transaction
/// (`&mut Tx`), so one table function serves both callers. The method names are those of
/// [`Db`] and [`Tx`], so a table function reads the same whichever it is given; a function that
/// passes its executor on to another lends it with `&mut ex`.
pub trait Exec: Send {
    /// The SQL dialect behind this executor.
    fn dialect(&self) -> Dialect;
    /// Runs a statement, returning the number of rows it changed.
    fn execute<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<u64>>;
    /// All rows of a query.
    fn fetch_all<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<Vec<Row>>>;
    /// At most one row.
    fn fetch_optional<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<Option<Row>>>;
    /// A single integer.
    fn fetch_int<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<i64>> {
        Box::pin(async move { scalar_int(&self.fetch_all(q).await?) })
    }
}

impl Exec for &Db {
    fn dialect(&self) -> Dialect {
        Db::dialect(self)
    }
    fn execute<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<u64>> {
        Box::pin(Db::execute(self, q))
    }
    fn fetch_all<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<Vec<Row>>> {
        Box::pin(Db::fetch_all(self, q))
    }
    fn fetch_optional<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<Option<Row>>> {
        Box::pin(Db::fetch_optional(self, q))
    }
}

impl Exec for &mut Tx {
    fn dialect(&self) -> Dialect {
        Tx::dialect(self)
    }
    fn execute<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<u64>> {
        Box::pin(Tx::execute(self, q))
    }
    fn fetch_all<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<Vec<Row>>> {
        Box::pin(Tx::fetch_all(self, q))
    }
    fn fetch_optional<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<Option<Row>>> {
        Box::pin(Tx::fetch_optional(self, q))
    }
}

/// An executor lent on (`&mut ex`) stays usable by the lender afterwards.
impl<E: Exec> Exec for &mut E {
    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }
    fn execute<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<u64>> {
        (**self).execute(q)
    }
    fn fetch_all<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<Vec<Row>>> {
        (**self).fetch_all(q)
    }
    fn fetch_optional<'a>(&'a mut self, q: &'a Sql) -> BoxFuture<'a, DbResult<Option<Row>>> {
        (**self).fetch_optional(q)
    }
}
