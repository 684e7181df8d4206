//! `bmc_sessions`: the journal of open Redfish sessions (see `crate::bmc_sessions`).

use chrono::{DateTime, Utc};

use super::{now, Db, DbResult, Row, Sql};

/// A journalled session.
#[derive(Debug, Clone)]
pub struct JournalRow {
    /// Id.
    pub id: i64,
    /// `scheme://host:port` of the BMC.
    pub bmc_url: String,
    /// The session resource to DELETE.
    pub session_url: String,
    /// The sealed `X-Auth-Token`.
    pub token: Vec<u8>,
    /// The BMC certificate fingerprint the session was opened against.
    pub cert_sha256: Option<String>,
    /// The job that opened it, if a job did.
    pub job: Option<i64>,
}

/// What [`insert`] records.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// `scheme://host:port` of the BMC.
    pub bmc_url: &'a str,
    /// The session resource.
    pub session_url: &'a str,
    /// The sealed token.
    pub token: Vec<u8>,
    /// The certificate fingerprint.
    pub cert_sha256: Option<&'a str>,
    /// The job that opens it.
    pub job: Option<i64>,
    /// When a process that still runs is certainly done with it.
    pub expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, bmc_url, session_url, token, cert_sha256, job_id";

fn from_row(r: &Row) -> DbResult<JournalRow> {
    Ok(JournalRow {
        id: r.int("id")?,
        bmc_url: r.text("bmc_url")?,
        session_url: r.text("session_url")?,
        token: r.opt_bytes("token")?.unwrap_or_default(),
        cert_sha256: r.opt_text("cert_sha256")?,
        job: r.opt_int("job_id")?,
    })
}

/// Records a session (a BMC that hands out a session URL twice replaces the old record).
pub async fn insert(db: &Db, s: &NewSession<'_>) -> DbResult<()> {
    db.execute(
        &Sql::new(
            "INSERT INTO bmc_sessions (bmc_url, session_url, token, cert_sha256, job_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (session_url) DO UPDATE SET bmc_url = excluded.bmc_url, token = excluded.token, \
               cert_sha256 = excluded.cert_sha256, job_id = excluded.job_id, expires_at = excluded.expires_at",
        )
        .arg(s.bmc_url)
        .arg(s.session_url)
        .arg(s.token.clone())
        .arg(s.cert_sha256)
        .arg(s.job)
        .arg(s.expires_at)
        .arg(now()),
    )
    .await?;
    Ok(())
}

/// Forgets the session at `session_url`.
pub async fn delete_by_url(db: &Db, session_url: &str) -> DbResult<()> {
    db.execute(&Sql::new("DELETE FROM bmc_sessions WHERE session_url = $1").arg(session_url))
        .await?;
    Ok(())
}

/// Forgets one record.
pub async fn delete(db: &Db, id: i64) -> DbResult<()> {
    db.execute(&Sql::new("DELETE FROM bmc_sessions WHERE id = $1").arg(id))
        .await?;
    Ok(())
}

/// Sessions whose process is certainly done with them (expired), oldest first, at most `limit`.
pub async fn expired(db: &Db, limit: i64) -> DbResult<Vec<JournalRow>> {
    db.fetch_all(
        &Sql::new(format!(
            "SELECT {COLUMNS} FROM bmc_sessions WHERE expires_at < $1 ORDER BY id LIMIT $2"
        ))
        .arg(now())
        .arg(limit),
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Sessions opened by job `job`.
pub async fn of_job(db: &Db, job: i64) -> DbResult<Vec<JournalRow>> {
    db.fetch_all(
        &Sql::new(format!(
            "SELECT {COLUMNS} FROM bmc_sessions WHERE job_id = $1 ORDER BY id"
        ))
        .arg(job),
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Every record (id, session URL, sealed token), for a key rotation.
pub async fn all_tokens(tx: &mut super::Tx) -> DbResult<Vec<(i64, String, Vec<u8>)>> {
    tx.fetch_all(&Sql::new(
        "SELECT id, session_url, token FROM bmc_sessions ORDER BY id",
    ))
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.int("id")?,
            r.text("session_url")?,
            r.opt_bytes("token")?.unwrap_or_default(),
        ))
    })
    .collect()
}

/// Replaces the sealed token of a record (key rotation); `None` drops the record.
pub async fn set_token(tx: &mut super::Tx, id: i64, token: Option<Vec<u8>>) -> DbResult<()> {
    match token {
        Some(t) => {
            tx.execute(
                &Sql::new("UPDATE bmc_sessions SET token = $1 WHERE id = $2")
                    .arg(t)
                    .arg(id),
            )
            .await?
        }
        None => {
            tx.execute(&Sql::new("DELETE FROM bmc_sessions WHERE id = $1").arg(id))
                .await?
        }
    };
    Ok(())
}
