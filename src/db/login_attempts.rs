//! `login_attempts`: the login throttle's windows, in the database so that every replica on
//! one PostgreSQL counts the same attempts (SQLite uses the same table).

use chrono::{DateTime, Utc};

use super::DbResult;
use super::{in_list, now, Exec, Row, Sql};

/// Records an attempt under `key` and returns its id, the number of attempts under `key` since
/// `since` (this one included) and the oldest of them. Older attempts under `key` are dropped.
pub async fn record(
    mut ex: impl Exec,
    key: &str,
    since: DateTime<Utc>,
) -> DbResult<(i64, i64, Option<DateTime<Utc>>)> {
    ex.execute(
        &Sql::new("DELETE FROM login_attempts WHERE key = $1 AND at <= $2")
            .arg(key)
            .arg(since),
    )
    .await?;
    let id = ex
        .fetch_int(
            &Sql::new("INSERT INTO login_attempts (key, at) VALUES ($1, $2) RETURNING id")
                .arg(key)
                .arg(now()),
        )
        .await?;
    let row: Option<Row> = ex
        .fetch_optional(
            &Sql::new(
                "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM login_attempts WHERE key = $1 AND at > $2",
            )
            .arg(key)
            .arg(since),
        )
        .await?;
    let (n, oldest) = match row {
        Some(r) => (r.int("n")?, r.opt_time("oldest")?),
        None => (1, None),
    };
    Ok((id, n, oldest))
}

/// Forgets attempts (a successful login, or one refused before its password was checked).
pub async fn forget(mut ex: impl Exec, ids: &[i64]) -> DbResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new("DELETE FROM login_attempts WHERE id IN ");
    in_list(&mut sql, ids);
    ex.execute(&sql).await?;
    Ok(())
}

/// Drops attempts older than `before`; returns how many.
pub async fn prune(mut ex: impl Exec, before: DateTime<Utc>) -> DbResult<u64> {
    ex.execute(&Sql::new("DELETE FROM login_attempts WHERE at < $1").arg(before))
        .await
}
