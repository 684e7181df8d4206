//! `jobs`: the one queue of asynchronous work (scans and the lifecycle kinds: power, inventory
//! refresh, firmware updates, deployments).
//!
//! A worker claims a job in a short transaction and commits before any network work. The claim
//! takes a lease; a job whose lease ran out (its process died) is claimed again. Every write a
//! worker makes is conditioned on still holding the lease, so a job that was cancelled or taken
//! over stops being written by its old worker.
//!
//! A handler may park its job ([`park`]): the job stays `running` (as the API shows it) but
//! nobody holds it; `wait_until` is set and `lease_expires_at` is the time it becomes claimable
//! again (its deadline), so the ordinary claim of an expired lease resumes it then. [`wake`]
//! makes a parked job claimable at once (and NOTIFYs the other processes); a wake that comes
//! while the job still runs is counted in `wakes`, and the park that follows sees the count
//! changed and leaves the job claimable at once, so no wake-up is lost.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::list::Caller;
use super::{now, Db, DbResult, Exec, JobStatus, Row, Sql};

/// Job statuses.
pub const STATUSES: &[&str] = JobStatus::NAMES;

/// A job as the API shows it.
#[derive(Debug, Clone)]
pub struct Job {
    /// Id.
    pub id: i64,
    /// What the job does (`scan`).
    pub kind: String,
    /// Where the job is in its life.
    pub status: JobStatus,
    /// Kind-specific progress object.
    pub progress: Value,
    /// Ids of the objects the job works on (scan ranges for a scan).
    pub targets: Value,
    /// Why the job failed.
    pub error: Option<String>,
    /// User who started it.
    pub created_by: Option<i64>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When a worker first took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times a worker claimed it.
    pub attempts: i64,
    /// What the handler recorded as done so far (`{}` until it writes one); a re-claimed job
    /// reads it to resume instead of starting over.
    pub checkpoint: Value,
    /// What the job was asked to do (kind-specific, e.g. `{"action": "On"}` for power).
    pub params: Value,
    /// One entry per server for lifecycle kinds (`[]` for a scan).
    pub results: Value,
    /// Set while the job is parked: until when it waits at most. In a job returned by
    /// [`claim`], the value it had before the claim (`Some` when this claim resumed a parked
    /// job, by a wake or because its deadline passed).
    pub wait_until: Option<DateTime<Utc>>,
    /// How many wake-ups the job got (see [`wake`]).
    pub wakes: i64,
}

/// Columns selected for [`Job::from_row`].
pub const JOB_COLUMNS: &str =
    "j.id, j.kind, j.status, j.progress, j.targets, j.error, j.created_by, \
     j.created_at, j.started_at, j.finished_at, j.attempts, j.checkpoint, j.params, j.results, \
     j.wait_until, j.wakes";

/// List scope of jobs (alias `j`): anyone but a superuser sees the jobs they started.
pub fn job_scope(caller: &Caller<'_>, sql: &mut Sql) {
    if caller.groups.is_some() {
        sql.push(" AND j.created_by = ");
        sql.bind(caller.id);
    }
}

fn json_col(r: &Row, name: &str) -> DbResult<Value> {
    Ok(r.opt_text(name)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null))
}

impl Job {
    /// Decodes a row selected with [`JOB_COLUMNS`].
    pub fn from_row(r: &Row) -> DbResult<Job> {
        Ok(Job {
            id: r.int("id")?,
            kind: r.text("kind")?,
            status: JobStatus::from_row(r, "status")?,
            progress: json_col(r, "progress")?,
            targets: json_col(r, "targets")?,
            error: r.opt_text("error")?,
            created_by: r.opt_int("created_by")?,
            created_at: r.time("created_at")?,
            started_at: r.opt_time("started_at")?,
            finished_at: r.opt_time("finished_at")?,
            attempts: r.int("attempts")?,
            checkpoint: json_col(r, "checkpoint")?,
            params: json_col(r, "params")?,
            results: json_col(r, "results")?,
            wait_until: r.opt_time("wait_until")?,
            wakes: r.int("wakes")?,
        })
    }

    /// The target ids.
    pub fn target_ids(&self) -> Vec<i64> {
        self.targets
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    }
}

/// Queues a job inside the caller's transaction and announces it to the other processes
/// ([`super::notify::job_queued`], delivered at commit); returns its id.
pub async fn enqueue(
    mut tx: impl Exec,
    kind: &str,
    targets: &Value,
    progress: &Value,
    created_by: Option<i64>,
) -> DbResult<i64> {
    super::notify::job_queued(&mut tx).await?;
    tx.fetch_int(
        &Sql::new(
            "INSERT INTO jobs (kind, status, progress, targets, created_by, created_at) \
             VALUES ($1, 'queued', $2, $3, $4, $5) RETURNING id",
        )
        .arg(kind)
        .arg(progress.to_string())
        .arg(targets.to_string())
        .arg(created_by)
        .arg(now()),
    )
    .await
}

/// Queues a lifecycle job over `servers` inside the caller's transaction (targets, params, one
/// `queued` result per server, the `job_servers` rows); returns its id. The busy rule is the
/// caller's next step ([`super::lifecycle::claim_servers`]). Announced like [`enqueue`].
pub async fn enqueue_lifecycle(
    mut tx: impl Exec,
    kind: &str,
    servers: &[i64],
    params: &Value,
    created_by: Option<i64>,
) -> DbResult<i64> {
    super::notify::job_queued(&mut tx).await?;
    let results: Vec<Value> = servers
        .iter()
        .map(|s| serde_json::json!({"server": s, "status": "queued", "message": null}))
        .collect();
    let progress =
        serde_json::json!({"total": servers.len(), "done": 0, "failed": 0, "percent": 0});
    let id = tx
        .fetch_int(
            &Sql::new(
                "INSERT INTO jobs (kind, status, progress, targets, params, results, created_by, created_at) \
                 VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .arg(kind)
            .arg(progress.to_string())
            .arg(serde_json::json!(servers).to_string())
            .arg(params.to_string())
            .arg(Value::Array(results).to_string())
            .arg(created_by)
            .arg(now()),
        )
        .await?;
    let rows: Vec<Vec<super::Val>> = servers
        .iter()
        .map(|s| vec![super::Val::Int(id), super::Val::Int(*s)])
        .collect();
    super::insert_rows(&mut tx, "job_servers", &["job_id", "server_id"], rows).await?;
    Ok(id)
}

/// One job.
pub async fn get(mut db: impl Exec, id: i64) -> DbResult<Option<Job>> {
    let sql = Sql::new(format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1")).arg(id);
    db.fetch_optional(&sql)
        .await?
        .as_ref()
        .map(Job::from_row)
        .transpose()
}

/// One job, read inside a transaction (the same as [`get`] on `&mut Tx`; kept for callers
/// written before the table functions became generic over [`Exec`]).
pub async fn get_in(tx: &mut super::Tx, id: i64) -> DbResult<Option<Job>> {
    get(tx, id).await
}

/// Writes progress and per-server results (and, when given, the checkpoint) of a job this
/// owner runs; false when it is no longer this owner's.
pub async fn set_report(
    mut db: impl Exec,
    id: i64,
    owner: &str,
    progress: &Value,
    results: &Value,
    checkpoint: Option<&Value>,
) -> DbResult<bool> {
    let n = db
        .execute(
            &Sql::new(
                "UPDATE jobs SET progress = $1, results = $2, checkpoint = COALESCE($3, checkpoint) \
                 WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
            )
            .arg(progress.to_string())
            .arg(results.to_string())
            .arg(checkpoint.map(Value::to_string))
            .arg(id)
            .arg(owner),
        )
        .await?;
    Ok(n == 1)
}

/// Replaces progress and results inside the caller's transaction (the finishing one).
pub async fn set_results_in(
    mut tx: impl Exec,
    id: i64,
    progress: &Value,
    results: &Value,
) -> DbResult<()> {
    tx.execute(
        &Sql::new("UPDATE jobs SET progress = $1, results = $2 WHERE id = $3")
            .arg(progress.to_string())
            .arg(results.to_string())
            .arg(id),
    )
    .await?;
    Ok(())
}

/// Claims the oldest queued job, or a running one whose lease expired (its worker died, or it
/// was parked and its deadline passed or it was woken), for `owner`.
///
/// One short transaction: the row is locked with `FOR UPDATE SKIP LOCKED` on Postgres (so
/// replicas never wait on each other); SQLite's `BEGIN IMMEDIATE` serialises writers. Resuming
/// a parked job is not another attempt (`attempts` counts the workers that took it over).
pub async fn claim(db: &Db, owner: &str, lease: Duration) -> DbResult<Option<Job>> {
    let t = now();
    let mut tx = db.begin().await?;
    let lock = tx.dialect().skip_locked();
    let pick = Sql::new(format!(
        "SELECT id, wait_until FROM jobs WHERE status = 'queued' \
         OR (status = 'running' AND lease_expires_at < $1) ORDER BY id LIMIT 1{lock}"
    ))
    .arg(t);
    let Some(row) = tx.fetch_optional(&pick).await? else {
        tx.commit().await?;
        return Ok(None);
    };
    let id = row.int("id")?;
    let waited = row.opt_time("wait_until")?;
    let sql = Sql::new(
        "UPDATE jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2, \
         started_at = COALESCE(started_at, $3), \
         attempts = CASE WHEN wait_until IS NULL THEN attempts + 1 ELSE attempts END, \
         wait_until = NULL WHERE id = $4",
    )
    .arg(owner)
    .arg(t + lease)
    .arg(t)
    .arg(id);
    tx.execute(&sql).await?;
    let sql = Sql::new(format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1")).arg(id);
    let job = tx
        .fetch_optional(&sql)
        .await?
        .as_ref()
        .map(Job::from_row)
        .transpose()?
        .map(|mut job| {
            job.wait_until = waited;
            job
        });
    tx.commit().await?;
    Ok(job)
}

/// Parks a job this owner runs until `until` at the latest: the lease is released (no worker
/// holds it) and the job stays `running`; it is claimed again at `until`, or at once after a
/// [`wake`] (also one that came since the claim that saw `wakes_seen` wake-ups). False when
/// the job was no longer this owner's.
pub async fn park(
    mut db: impl Exec,
    id: i64,
    owner: &str,
    until: DateTime<Utc>,
    wakes_seen: i64,
) -> DbResult<bool> {
    let n = db
        .execute(
            &Sql::new(
                "UPDATE jobs SET lease_owner = NULL, wait_until = $1, \
                 lease_expires_at = CASE WHEN wakes = $2 THEN $3 ELSE created_at END \
                 WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
            )
            .arg(until)
            .arg(wakes_seen)
            .arg(until)
            .arg(id)
            .arg(owner),
        )
        .await?;
    Ok(n == 1)
}

/// Wakes job `id` inside the caller's transaction: a parked job becomes claimable at once (and
/// the other processes are told, at commit); one still running counts the wake so its next
/// park does not sleep through it. False when the job had already ended.
pub async fn wake(mut tx: impl Exec, id: i64) -> DbResult<bool> {
    let n = tx
        .execute(
            &Sql::new(
                "UPDATE jobs SET wakes = wakes + 1, lease_expires_at = CASE \
                 WHEN wait_until IS NOT NULL THEN created_at ELSE lease_expires_at END \
                 WHERE id = $1 AND status IN ('queued', 'running')",
            )
            .arg(id),
        )
        .await?;
    if n == 1 {
        super::notify::job_queued(&mut tx).await?;
    }
    Ok(n == 1)
}

/// True while job `id` is parked (waiting, held by no worker).
pub async fn is_parked(mut db: impl Exec, id: i64) -> DbResult<bool> {
    let row = db
        .fetch_optional(
            &Sql::new(
                "SELECT id FROM jobs WHERE id = $1 AND status = 'running' AND wait_until IS NOT NULL",
            )
            .arg(id),
        )
        .await?;
    Ok(row.is_some())
}

/// Extends the lease; false when the job is no longer running under this owner (cancelled,
/// or taken over after the lease ran out).
pub async fn renew(mut db: impl Exec, id: i64, owner: &str, lease: Duration) -> DbResult<bool> {
    let n = db
        .execute(
            &Sql::new(
                "UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
            )
            .arg(now() + lease)
            .arg(id)
            .arg(owner),
        )
        .await?;
    Ok(n == 1)
}

/// Writes progress; false when the job is no longer this owner's.
pub async fn set_progress(
    mut db: impl Exec,
    id: i64,
    owner: &str,
    progress: &Value,
) -> DbResult<bool> {
    let n = db
        .execute(
            &Sql::new("UPDATE jobs SET progress = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running'")
                .arg(progress.to_string())
                .arg(id)
                .arg(owner),
        )
        .await?;
    Ok(n == 1)
}

/// Writes the checkpoint (and, when given, the progress with it); false when the job is no
/// longer this owner's.
pub async fn set_checkpoint(
    mut db: impl Exec,
    id: i64,
    owner: &str,
    checkpoint: &Value,
    progress: Option<&Value>,
) -> DbResult<bool> {
    let n = db
        .execute(
            &Sql::new(
                "UPDATE jobs SET checkpoint = $1, progress = COALESCE($2, progress) \
                 WHERE id = $3 AND lease_owner = $4 AND status = 'running'",
            )
            .arg(checkpoint.to_string())
            .arg(progress.map(Value::to_string))
            .arg(id)
            .arg(owner),
        )
        .await?;
    Ok(n == 1)
}

/// Ends a job this owner runs (`succeeded` or `failed`); false when it was not ours any more.
pub async fn finish(
    mut tx: impl Exec,
    id: i64,
    owner: &str,
    status: JobStatus,
    error: Option<&str>,
) -> DbResult<bool> {
    let n = tx
        .execute(
            &Sql::new(
                "UPDATE jobs SET status = $1, error = $2, finished_at = $3, lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
            )
            .arg(status)
            .arg(error)
            .arg(now())
            .arg(id)
            .arg(owner),
        )
        .await?;
    if n == 1 {
        super::lifecycle::release_servers(&mut tx, id).await?;
    }
    Ok(n == 1)
}

/// Cancels a queued or running job; false when it had already ended.
pub async fn cancel(mut tx: impl Exec, id: i64) -> DbResult<bool> {
    let n = tx
        .execute(
            &Sql::new(
                "UPDATE jobs SET status = 'cancelled', finished_at = $1, lease_owner = NULL, lease_expires_at = NULL, \
                 wait_until = NULL WHERE id = $2 AND status IN ('queued', 'running')",
            )
            .arg(now())
            .arg(id),
        )
        .await?;
    if n == 1 {
        super::lifecycle::release_servers(&mut tx, id).await?;
    }
    Ok(n == 1)
}

/// Current status of a job.
pub async fn status(mut db: impl Exec, id: i64) -> DbResult<Option<JobStatus>> {
    let row = db
        .fetch_optional(&Sql::new("SELECT status FROM jobs WHERE id = $1").arg(id))
        .await?;
    row.map(|r| JobStatus::from_row(&r, "status")).transpose()
}

/// Number of jobs per (kind, status), for `/metrics`.
pub async fn counts(mut db: impl Exec) -> DbResult<Vec<(String, String, i64)>> {
    db.fetch_all(&Sql::new(
        "SELECT kind, status, COUNT(*) AS n FROM jobs GROUP BY kind, status ORDER BY kind, status",
    ))
    .await?
    .iter()
    .map(|r| Ok((r.text("kind")?, r.text("status")?, r.int("n")?)))
    .collect()
}

/// Replaces the targets of a job (inside the enqueueing transaction).
pub async fn set_targets(mut tx: impl Exec, id: i64, targets: &Value) -> DbResult<()> {
    tx.execute(
        &Sql::new("UPDATE jobs SET targets = $1 WHERE id = $2")
            .arg(targets.to_string())
            .arg(id),
    )
    .await?;
    Ok(())
}

/// Drops a job queued in the same transaction that turned out to have nothing to do.
pub async fn discard(mut tx: impl Exec, id: i64) -> DbResult<()> {
    tx.execute(&Sql::new("DELETE FROM jobs WHERE id = $1 AND status = 'queued'").arg(id))
        .await?;
    Ok(())
}
