//! `scan_ranges`: address ranges that discovery scans, with the state of their last scan.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{in_list, now, DbResult, Exec, Row, ScanRangeStatus, Sql};

/// Scan range statuses.
pub const STATUSES: &[&str] = ScanRangeStatus::NAMES;

/// A scan range as the API shows it.
#[derive(Debug, Clone)]
pub struct ScanRange {
    /// Id.
    pub id: i64,
    /// Free-form name.
    pub name: String,
    /// First address.
    pub ip_from: String,
    /// Last address.
    pub ip_to: String,
    /// Ports probed on every address.
    pub ports: Vec<u16>,
    /// Where the range is.
    pub status: ScanRangeStatus,
    /// When the last scan ended.
    pub last_scan_at: Option<DateTime<Utc>>,
    /// Why the last scan failed.
    pub last_error: Option<String>,
    /// `{scanned, total, found}` of the current or last scan.
    pub progress: Value,
    /// The job scanning it (or that scanned it last).
    pub job_id: Option<i64>,
    /// Seconds between scheduled scans (None: scanned only when asked).
    pub rescan_interval: Option<i64>,
    /// When the scheduler scans it next.
    pub next_scan_at: Option<DateTime<Utc>>,
    /// Profile that onboarding registers the range's nodes with.
    pub auth_profile: Option<i64>,
    /// Register what the range's scans find (with `auth_profile`).
    pub auto_register: bool,
    /// Pool the servers registered through this range join.
    pub resource_pool: Option<i64>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Columns selected for [`ScanRange::from_row`].
pub const SCAN_RANGE_COLUMNS: &str =
    "r.id, r.name, r.ip_from, r.ip_to, r.ports, r.status, r.last_scan_at, \
     r.last_error, r.progress, r.job_id, r.rescan_interval, r.next_scan_at, r.auth_profile_id, \
     r.auto_register, r.resource_pool_id, r.created_at, r.updated_at";

impl ScanRange {
    /// Decodes a row selected with [`SCAN_RANGE_COLUMNS`].
    pub fn from_row(r: &Row) -> DbResult<ScanRange> {
        Ok(ScanRange {
            id: r.int("id")?,
            name: r.text("name")?,
            ip_from: r.text("ip_from")?,
            ip_to: r.text("ip_to")?,
            ports: serde_json::from_str(&r.text("ports")?).unwrap_or_default(),
            status: ScanRangeStatus::from_row(r, "status")?,
            last_scan_at: r.opt_time("last_scan_at")?,
            last_error: r.opt_text("last_error")?,
            progress: serde_json::from_str(&r.text("progress")?).unwrap_or(Value::Null),
            job_id: r.opt_int("job_id")?,
            rescan_interval: r.opt_int("rescan_interval")?,
            next_scan_at: r.opt_time("next_scan_at")?,
            auth_profile: r.opt_int("auth_profile_id")?,
            auto_register: r.bool("auto_register")?,
            resource_pool: r.opt_int("resource_pool_id")?,
            created_at: r.time("created_at")?,
            updated_at: r.time("updated_at")?,
        })
    }
}

/// Fields written by create and update (None: keep).
#[derive(Debug, Default, Clone)]
pub struct ScanRangeWrite {
    /// Name.
    pub name: Option<String>,
    /// First address.
    pub ip_from: Option<String>,
    /// Last address.
    pub ip_to: Option<String>,
    /// Ports.
    pub ports: Option<Vec<u16>>,
    /// Seconds between scheduled scans (`Some(None)`: only when asked).
    pub rescan_interval: Option<Option<i64>>,
    /// Next scheduled scan (`Some(None)`: none).
    pub next_scan_at: Option<Option<DateTime<Utc>>>,
    /// Onboarding profile.
    pub auth_profile: Option<Option<i64>>,
    /// Onboarding on or off.
    pub auto_register: Option<bool>,
    /// Pool of onboarded servers.
    pub resource_pool: Option<Option<i64>>,
}

fn ports_text(p: &[u16]) -> String {
    serde_json::to_string(p).unwrap_or_else(|_| "[]".into())
}

/// The zero progress of a range.
pub fn zero_progress(total: u64) -> Value {
    json!({"scanned": 0, "total": total, "found": 0})
}

/// One range.
pub async fn get(mut db: impl Exec, id: i64) -> DbResult<Option<ScanRange>> {
    let sql = Sql::new(format!(
        "SELECT {SCAN_RANGE_COLUMNS} FROM scan_ranges r WHERE r.id = $1"
    ))
    .arg(id);
    db.fetch_optional(&sql)
        .await?
        .as_ref()
        .map(ScanRange::from_row)
        .transpose()
}

/// Ranges by id, in id order (on the pool, or inside a transaction).
pub async fn get_many(mut ex: impl Exec, ids: &[i64]) -> DbResult<Vec<ScanRange>> {
    let mut sql = Sql::new(format!(
        "SELECT {SCAN_RANGE_COLUMNS} FROM scan_ranges r WHERE r.id IN "
    ));
    in_list(&mut sql, ids);
    sql.push(" ORDER BY r.id");
    ex.fetch_all(&sql)
        .await?
        .iter()
        .map(ScanRange::from_row)
        .collect()
}

/// Creates a range (`ready`, never scanned); returns its id.
pub async fn insert(mut tx: impl Exec, w: &ScanRangeWrite) -> DbResult<i64> {
    let t = now();
    tx.fetch_int(
        &Sql::new(
            "INSERT INTO scan_ranges (name, ip_from, ip_to, ports, status, progress, rescan_interval, next_scan_at, \
                                      auth_profile_id, auto_register, resource_pool_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'ready', $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
        )
        .arg(w.name.clone().unwrap_or_default())
        .arg(w.ip_from.clone().unwrap_or_default())
        .arg(w.ip_to.clone().unwrap_or_default())
        .arg(ports_text(w.ports.as_deref().unwrap_or(&[443])))
        .arg(zero_progress(0).to_string())
        .arg(w.rescan_interval.flatten())
        .arg(w.next_scan_at.flatten())
        .arg(w.auth_profile.flatten())
        .arg(w.auto_register.unwrap_or(false))
        .arg(w.resource_pool.flatten())
        .arg(t),
    )
    .await
}

/// Changes the given fields.
pub async fn update(tx: impl Exec, id: i64, w: &ScanRangeWrite) -> DbResult<()> {
    super::update_columns(
        tx,
        "scan_ranges",
        id,
        [
            ("name", w.name.clone().map(Into::into)),
            ("ip_from", w.ip_from.clone().map(Into::into)),
            ("ip_to", w.ip_to.clone().map(Into::into)),
            ("ports", w.ports.as_deref().map(|p| ports_text(p).into())),
            ("rescan_interval", w.rescan_interval.map(Into::into)),
            ("next_scan_at", w.next_scan_at.map(Into::into)),
            ("auth_profile_id", w.auth_profile.map(Into::into)),
            ("auto_register", w.auto_register.map(Into::into)),
            ("resource_pool_id", w.resource_pool.map(Into::into)),
            ("updated_at", Some(now().into())),
        ]
        .into_iter(),
    )
    .await?;
    Ok(())
}

/// Marks ranges `scanning` under `job` unless they already scan; returns the ids it took.
pub async fn start_scan(tx: impl Exec, ids: &[i64], job: i64) -> DbResult<Vec<i64>> {
    start_scan_if_due(tx, ids, job, None).await
}

/// [`start_scan`]; with `due`, only ranges whose scheduled scan is due by then are taken.
/// Every range taken with a `rescan_interval` is next due that interval after this start.
///
/// The one conditional UPDATE is what makes a scan start once: a second transaction taking the
/// same range waits for the first one's row lock and then no longer matches (the range scans,
/// and its `next_scan_at` moved on).
pub async fn start_scan_if_due(
    mut tx: impl Exec,
    ids: &[i64],
    job: i64,
    due: Option<DateTime<Utc>>,
) -> DbResult<Vec<i64>> {
    let t = now();
    let mut sql =
        Sql::new("UPDATE scan_ranges SET status = 'scanning', last_error = NULL, job_id = ");
    sql.bind(job);
    sql.push(", updated_at = ");
    sql.bind(t);
    sql.push(", progress = ");
    sql.bind(zero_progress(0).to_string());
    sql.push(" WHERE status <> 'scanning' AND id IN ");
    in_list(&mut sql, ids);
    if let Some(due) = due {
        sql.push(" AND next_scan_at IS NOT NULL AND next_scan_at <= ");
        sql.bind(due);
    }
    sql.push(" RETURNING id, rescan_interval");
    let rows = tx.fetch_all(&sql).await?;
    let mut taken = Vec::with_capacity(rows.len());
    for r in &rows {
        let id = r.int("id")?;
        let next = r
            .opt_int("rescan_interval")?
            .and_then(chrono::Duration::try_seconds)
            .and_then(|d| t.checked_add_signed(d));
        if let Some(next) = next {
            tx.execute(
                &Sql::new("UPDATE scan_ranges SET next_scan_at = $1 WHERE id = $2")
                    .arg(next)
                    .arg(id),
            )
            .await?;
        }
        taken.push(id);
    }
    taken.sort_unstable();
    Ok(taken)
}

/// Ranges whose scheduled scan is due at `at` and that do not scan now, in id order.
pub async fn due(mut db: impl Exec, at: DateTime<Utc>) -> DbResult<Vec<i64>> {
    db.fetch_all(
        &Sql::new(
            "SELECT id FROM scan_ranges WHERE next_scan_at IS NOT NULL AND next_scan_at <= $1 \
             AND status <> 'scanning' ORDER BY id LIMIT 1000",
        )
        .arg(at),
    )
    .await?
    .iter()
    .map(|r| r.int("id"))
    .collect()
}

/// Writes the live progress of a range still scanned by `job`.
pub async fn set_progress(mut db: impl Exec, id: i64, job: i64, progress: &Value) -> DbResult<()> {
    db.execute(
        &Sql::new("UPDATE scan_ranges SET progress = $1 WHERE id = $2 AND job_id = $3 AND status = 'scanning'")
            .arg(progress.to_string())
            .arg(id)
            .arg(job),
    )
    .await?;
    Ok(())
}

/// Ends the scan of a range by `job`: `ready` (error None) or `error` with the message. A
/// `note` (something the scan skipped) goes to `last_error` of a range that ends `ready`.
pub async fn finish_scan(
    mut tx: impl Exec,
    id: i64,
    job: i64,
    progress: &Value,
    error: Option<&str>,
    note: Option<&str>,
) -> DbResult<()> {
    let t = now();
    tx.execute(
        &Sql::new(
            "UPDATE scan_ranges SET status = $1, last_error = $2, progress = $3, last_scan_at = $4, updated_at = $4 \
             WHERE id = $5 AND job_id = $6 AND status = 'scanning'",
        )
        .arg(if error.is_some() {
            ScanRangeStatus::Error
        } else {
            ScanRangeStatus::Ready
        })
        .arg(error.or(note))
        .arg(progress.to_string())
        .arg(t)
        .arg(id)
        .arg(job),
    )
    .await?;
    Ok(())
}

/// Sets every range still scanning under `job` back to `ready` (the job was cancelled) or to
/// `error` with a message.
pub async fn release_job(mut tx: impl Exec, job: i64, error: Option<&str>) -> DbResult<()> {
    tx.execute(
        &Sql::new(
            "UPDATE scan_ranges SET status = $1, last_error = $2, updated_at = $3 WHERE job_id = $4 AND status = 'scanning'",
        )
        .arg(if error.is_some() {
            ScanRangeStatus::Error
        } else {
            ScanRangeStatus::Ready
        })
        .arg(error)
        .arg(now())
        .arg(job),
    )
    .await?;
    Ok(())
}

/// Deletes a range; returns the job that was scanning it, if any, and whether it existed.
pub async fn delete(mut tx: impl Exec, id: i64) -> DbResult<Option<Option<i64>>> {
    // Nodes it found keep existing: `nodes.scan_range_id` is `ON DELETE SET NULL`.
    let row = tx
        .fetch_optional(
            &Sql::new("DELETE FROM scan_ranges WHERE id = $1 RETURNING status, job_id").arg(id),
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let scanning_job = if ScanRangeStatus::from_row(&row, "status")? == ScanRangeStatus::Scanning {
        row.opt_int("job_id")?
    } else {
        None
    };
    Ok(Some(scanning_job))
}

/// Ranges still scanning under `job`.
pub async fn scanning_under(mut tx: impl Exec, job: i64) -> DbResult<i64> {
    tx.fetch_int(
        &Sql::new("SELECT COUNT(*) FROM scan_ranges WHERE job_id = $1 AND status = 'scanning'")
            .arg(job),
    )
    .await
}
