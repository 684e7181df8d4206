//! `scan_ranges`: address ranges that discovery scans, with the state of their last scan.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{in_list, now, Db, DbResult, Exec, Row, ScanRangeStatus, Sql, Tx};

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
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Columns selected for [`ScanRange::from_row`].
pub const SCAN_RANGE_COLUMNS: &str =
    "r.id, r.name, r.ip_from, r.ip_to, r.ports, r.status, r.last_scan_at, \
     r.last_error, r.progress, r.job_id, r.created_at, r.updated_at";

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
}

fn ports_text(p: &[u16]) -> String {
    serde_json::to_string(p).unwrap_or_else(|_| "[]".into())
}

/// The zero progress of a range.
pub fn zero_progress(total: u64) -> Value {
    json!({"scanned": 0, "total": total, "found": 0})
}

/// One range.
pub async fn get(db: &Db, id: i64) -> DbResult<Option<ScanRange>> {
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
    ex.rows(&sql)
        .await?
        .iter()
        .map(ScanRange::from_row)
        .collect()
}

/// Creates a range (`ready`, never scanned); returns its id.
pub async fn insert(tx: &mut Tx, w: &ScanRangeWrite) -> DbResult<i64> {
    let t = now();
    tx.fetch_int(
        &Sql::new(
            "INSERT INTO scan_ranges (name, ip_from, ip_to, ports, status, progress, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'ready', $5, $6, $6) RETURNING id",
        )
        .arg(w.name.clone().unwrap_or_default())
        .arg(w.ip_from.clone().unwrap_or_default())
        .arg(w.ip_to.clone().unwrap_or_default())
        .arg(ports_text(w.ports.as_deref().unwrap_or(&[443])))
        .arg(zero_progress(0).to_string())
        .arg(t),
    )
    .await
}

/// Changes the given fields.
pub async fn update(tx: &mut Tx, id: i64, w: &ScanRangeWrite) -> DbResult<()> {
    super::update_columns(
        tx,
        "scan_ranges",
        id,
        [
            ("name", w.name.clone().map(Into::into)),
            ("ip_from", w.ip_from.clone().map(Into::into)),
            ("ip_to", w.ip_to.clone().map(Into::into)),
            ("ports", w.ports.as_deref().map(|p| ports_text(p).into())),
            ("updated_at", Some(now().into())),
        ]
        .into_iter(),
    )
    .await?;
    Ok(())
}

/// Marks ranges `scanning` under `job` unless they already scan; returns the ids it took.
pub async fn start_scan(tx: &mut Tx, ids: &[i64], job: i64) -> DbResult<Vec<i64>> {
    let mut sql =
        Sql::new("UPDATE scan_ranges SET status = 'scanning', last_error = NULL, job_id = ");
    sql.bind(job);
    sql.push(", updated_at = ");
    sql.bind(now());
    sql.push(", progress = ");
    sql.bind(zero_progress(0).to_string());
    sql.push(" WHERE status <> 'scanning' AND id IN ");
    in_list(&mut sql, ids);
    sql.push(" RETURNING id");
    let mut taken: Vec<i64> = tx
        .fetch_all(&sql)
        .await?
        .iter()
        .map(|r| r.int("id"))
        .collect::<DbResult<_>>()?;
    taken.sort_unstable();
    Ok(taken)
}

/// Writes the live progress of a range still scanned by `job`.
pub async fn set_progress(db: &Db, id: i64, job: i64, progress: &Value) -> DbResult<()> {
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
    tx: &mut Tx,
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
pub async fn release_job(tx: &mut Tx, job: i64, error: Option<&str>) -> DbResult<()> {
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
pub async fn delete(tx: &mut Tx, id: i64) -> DbResult<Option<Option<i64>>> {
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
pub async fn scanning_under(tx: &mut Tx, job: i64) -> DbResult<i64> {
    tx.fetch_int(
        &Sql::new("SELECT COUNT(*) FROM scan_ranges WHERE job_id = $1 AND status = 'scanning'")
            .arg(job),
    )
    .await
}
