//! `deployments`: OS deployments over virtual media (one job of kind `deployment` each), the
//! hash of each one's callback token, and the pool-change lock an active deployment holds on
//! its server.

use chrono::{DateTime, Utc};

use super::list::Caller;
use super::{in_list, now, DbResult, Exec, Row, Sql};

/// Deployment statuses.
pub const STATUSES: &[&str] = &["queued", "running", "complete", "failed", "cancelled"];

/// The statuses of an active deployment (it locks its server).
pub const ACTIVE: &str = "('queued', 'running')";

/// A deployment as the API shows it.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Id.
    pub id: i64,
    /// The server (None once deleted).
    pub server: Option<i64>,
    /// The OS image (None once deleted).
    pub os: Option<i64>,
    /// `queued` | `running` | `complete` | `failed` | `cancelled`.
    pub status: String,
    /// `insert_media` | `set_boot` | `reset` | `installing` | `done`.
    pub step: String,
    /// 0-100.
    pub progress: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// Its job.
    pub job: Option<i64>,
    /// The virtual media slot the image went into.
    pub media_path: Option<String>,
    /// Who started it.
    pub created_by: Option<i64>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Columns selected for [`Deployment::from_row`].
pub const DEPLOYMENT_COLUMNS: &str =
    "d.id, d.server_id, d.os_id, d.status, d.step, d.progress, d.error, d.job_id, d.media_path, \
     d.created_by, d.created_at, d.finished_at";

/// List scope of deployments (alias `d`): anyone but a superuser sees the deployments they
/// started.
pub fn deployment_scope(caller: &Caller<'_>, sql: &mut Sql) {
    if caller.groups.is_some() {
        sql.push(" AND d.created_by = ");
        sql.bind(caller.id);
    }
}

impl Deployment {
    /// Decodes a row selected with [`DEPLOYMENT_COLUMNS`].
    pub fn from_row(r: &Row) -> DbResult<Deployment> {
        Ok(Deployment {
            id: r.int("id")?,
            server: r.opt_int("server_id")?,
            os: r.opt_int("os_id")?,
            status: r.text("status")?,
            step: r.text("step")?,
            progress: r.int("progress")?,
            error: r.opt_text("error")?,
            job: r.opt_int("job_id")?,
            media_path: r.opt_text("media_path")?,
            created_by: r.opt_int("created_by")?,
            created_at: r.time("created_at")?,
            finished_at: r.opt_time("finished_at")?,
        })
    }

    /// True while queued or running.
    pub fn active(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "running")
    }
}

/// Creates a queued deployment of `os` on `server` run by `job`; returns its id.
pub async fn insert(
    mut tx: impl Exec,
    server: i64,
    os: i64,
    job: i64,
    callback_hash: &str,
    created_by: i64,
) -> DbResult<i64> {
    tx.fetch_int(
        &Sql::new(
            "INSERT INTO deployments (server_id, os_id, job_id, callback_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .arg(server)
        .arg(os)
        .arg(job)
        .arg(callback_hash)
        .arg(created_by)
        .arg(now()),
    )
    .await
}

async fn one(mut e: impl Exec, sql: Sql) -> DbResult<Option<Deployment>> {
    match e.fetch_optional(&sql).await? {
        Some(r) => Ok(Some(Deployment::from_row(&r)?)),
        None => Ok(None),
    }
}

/// A deployment by id.
pub async fn get(e: impl Exec, id: i64) -> DbResult<Option<Deployment>> {
    one(
        e,
        Sql::new(format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments d WHERE d.id = $1"
        ))
        .arg(id),
    )
    .await
}

/// The deployment a job runs.
pub async fn by_job(e: impl Exec, job: i64) -> DbResult<Option<Deployment>> {
    one(
        e,
        Sql::new(format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments d WHERE d.job_id = $1"
        ))
        .arg(job),
    )
    .await
}

/// The active deployment whose callback token hashes to `hash`.
pub async fn active_by_callback(e: impl Exec, hash: &str) -> DbResult<Option<Deployment>> {
    one(
        e,
        Sql::new(format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments d \
             WHERE d.callback_hash = $1 AND d.status IN {ACTIVE}"
        ))
        .arg(hash),
    )
    .await
}

/// Marks a queued deployment running (nothing when it already ended).
pub async fn set_running(mut e: impl Exec, id: i64) -> DbResult<u64> {
    e.execute(
        &Sql::new("UPDATE deployments SET status = 'running' WHERE id = $1 AND status IN ('queued', 'running')")
            .arg(id),
    )
    .await
}

/// Records the step reached (and progress) of an active deployment; false when it ended.
pub async fn set_step(mut e: impl Exec, id: i64, step: &str, progress: i64) -> DbResult<bool> {
    Ok(e.execute(
        &Sql::new(format!(
            "UPDATE deployments SET step = $1, progress = $2 WHERE id = $3 AND status IN {ACTIVE}"
        ))
        .arg(step)
        .arg(progress)
        .arg(id),
    )
    .await?
        == 1)
}

/// Records the slot the image went into.
pub async fn set_media_path(mut e: impl Exec, id: i64, path: &str) -> DbResult<()> {
    e.execute(
        &Sql::new("UPDATE deployments SET media_path = $1 WHERE id = $2")
            .arg(path)
            .arg(id),
    )
    .await?;
    Ok(())
}

/// Ends an active deployment with `status` (`complete`: step `done`, progress 100); false when
/// it had already ended.
pub async fn end(mut e: impl Exec, id: i64, status: &str, error: Option<&str>) -> DbResult<bool> {
    let sql = if status == "complete" {
        format!(
            "UPDATE deployments SET status = $1, error = $2, finished_at = $3, step = 'done', \
             progress = 100 WHERE id = $4 AND status IN {ACTIVE}"
        )
    } else {
        format!(
            "UPDATE deployments SET status = $1, error = $2, finished_at = $3 \
             WHERE id = $4 AND status IN {ACTIVE}"
        )
    };
    Ok(
        e.execute(&Sql::new(sql).arg(status).arg(error).arg(now()).arg(id))
            .await?
            == 1,
    )
}

/// The first of `ids` (in their order) that an active deployment locks, with that deployment.
pub async fn first_locked(mut e: impl Exec, ids: &[i64]) -> DbResult<Option<(i64, i64)>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let mut sql = Sql::new(format!(
        "SELECT d.server_id, d.id FROM deployments d WHERE d.status IN {ACTIVE} AND d.server_id IN "
    ));
    in_list(&mut sql, ids);
    let rows: Vec<(i64, i64)> = e
        .fetch_all(&sql)
        .await?
        .iter()
        .map(|r| Ok((r.int("server_id")?, r.int("id")?)))
        .collect::<DbResult<_>>()?;
    Ok(ids
        .iter()
        .find_map(|id| rows.iter().find(|(s, _)| s == id).copied()))
}

/// [`first_locked`] over the servers of pool `pool`.
pub async fn first_locked_in_pool(mut e: impl Exec, pool: i64) -> DbResult<Option<(i64, i64)>> {
    let sql = Sql::new(format!(
        "SELECT d.server_id, d.id FROM deployments d JOIN servers s ON s.id = d.server_id \
         WHERE s.resource_pool_id = $1 AND d.status IN {ACTIVE} ORDER BY d.server_id LIMIT 1"
    ))
    .arg(pool);
    match e.fetch_optional(&sql).await? {
        Some(r) => Ok(Some((r.int("server_id")?, r.int("id")?))),
        None => Ok(None),
    }
}
