//! `installation`: per-installation values (the credential key's check value).

use super::{DbResult, Exec, Sql};

/// The value stored under `key`.
pub async fn get(mut db: impl Exec, key: &str) -> DbResult<Option<String>> {
    let row = db
        .fetch_optional(&Sql::new("SELECT value FROM installation WHERE key = $1").arg(key))
        .await?;
    Ok(row.and_then(|r| r.opt_text("value").ok().flatten()))
}

/// Stores `value` under `key` unless a value is there already (first start).
pub async fn insert_if_absent(mut db: impl Exec, key: &str, value: &str) -> DbResult<()> {
    db.execute(
        &Sql::new(
            "INSERT INTO installation (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .arg(key)
        .arg(value),
    )
    .await
    .map(|_| ())
}

/// Stores `value` under `key`, replacing what was there (key rotation).
pub async fn set(mut tx: impl Exec, key: &str, value: &str) -> DbResult<()> {
    tx.execute(
        &Sql::new(
            "INSERT INTO installation (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .arg(key)
        .arg(value),
    )
    .await
    .map(|_| ())
}
