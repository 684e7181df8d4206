//! `audit_log`: one row per successful write through the API.

use chrono::{DateTime, Utc};

use super::{now, DbResult, Exec, Row, Sql};

/// What one audit row records.
#[derive(Debug, Clone, Default)]
pub struct AuditWrite {
    /// The caller (None when the user is gone or the write was anonymous).
    pub user_id: Option<i64>,
    /// The caller's name at the time.
    pub username: String,
    /// The client address.
    pub source: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Answer status.
    pub status: u16,
    /// Kind of object written (`pool`, `users`, ...).
    pub object_kind: String,
    /// Id of the object written, when known.
    pub object_id: Option<String>,
    /// Short summary (never any request value).
    pub summary: String,
}

/// An audit row as the API shows it.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Id.
    pub id: i64,
    /// When the write was answered.
    pub created_at: DateTime<Utc>,
    /// What was recorded.
    pub entry: AuditWrite,
}

/// Columns selected for [`AuditEntry::from_row`].
pub const AUDIT_COLUMNS: &str = "a.id, a.created_at, a.user_id, a.username, a.source, a.method, \
     a.path, a.status, a.object_kind, a.object_id, a.summary";

impl AuditEntry {
    /// Decodes a row selected with [`AUDIT_COLUMNS`].
    pub fn from_row(r: &Row) -> DbResult<AuditEntry> {
        Ok(AuditEntry {
            id: r.int("id")?,
            created_at: r.time("created_at")?,
            entry: AuditWrite {
                user_id: r.opt_int("user_id")?,
                username: r.text("username")?,
                source: r.text("source")?,
                method: r.text("method")?,
                path: r.text("path")?,
                status: u16::try_from(r.int("status")?).unwrap_or(0),
                object_kind: r.text("object_kind")?,
                object_id: r.opt_text("object_id")?,
                summary: r.text("summary")?,
            },
        })
    }
}

/// Records one write.
pub async fn insert(mut ex: impl Exec, w: &AuditWrite) -> DbResult<()> {
    ex.execute(
        &Sql::new(
            "INSERT INTO audit_log (created_at, user_id, username, source, method, path, status, \
             object_kind, object_id, summary) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .arg(now())
        .arg(w.user_id)
        .arg(w.username.as_str())
        .arg(w.source.as_str())
        .arg(w.method.as_str())
        .arg(w.path.as_str())
        .arg(i64::from(w.status))
        .arg(w.object_kind.as_str())
        .arg(w.object_id.clone())
        .arg(w.summary.as_str()),
    )
    .await?;
    Ok(())
}

/// Drops rows older than `before`; returns how many.
pub async fn prune(mut ex: impl Exec, before: DateTime<Utc>) -> DbResult<u64> {
    ex.execute(&Sql::new("DELETE FROM audit_log WHERE created_at < $1").arg(before))
        .await
}
