//! Starting lifecycle jobs (power, inventory refresh, firmware updates, deployments) and who
//! may see jobs.
//!
//! [`start_job`] is the one way a lifecycle job is queued: in one transaction it checks that the
//! viewer sees every server, queues the job with one `queued` result per server and claims the
//! servers under the busy rule (one active lifecycle job per server, enforced by the
//! database). A request naming one busy server is refused whole; nothing is queued.

use serde_json::Value;

use super::Viewer;
use crate::ctx::Ctx;
use crate::db::jobs::{self, Job};
use crate::db::lifecycle::{self, BusyServer};
use crate::db::{pools, servers, DbError};

/// Why no job was queued.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A server the viewer cannot see (or that does not exist).
    #[error("no server {0}")]
    ServerNotFound(i64),
    /// The pool is not one the viewer can see (or does not exist).
    #[error("no pool {0}")]
    PoolNotFound(i64),
    /// A server is busy with another lifecycle job.
    #[error("{}", busy_message(.0))]
    Busy(BusyServer),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The 400 text for a busy server: `Server 7 is busy: job 15 (firmware_update) is running.`
pub fn busy_message(b: &BusyServer) -> String {
    format!(
        "Server {} is busy: job {} ({}) is running.",
        b.server, b.job, b.kind
    )
}

fn distinct(ids: &[i64]) -> Vec<i64> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().copied().filter(|i| seen.insert(*i)).collect()
}

/// Queues a job of `kind` over `server_ids` for the viewer, with `params` for its handler.
/// Every server must be visible to the viewer and free; returns the job as it was queued and
/// wakes this process's workers after the commit.
pub async fn start_job(
    ctx: &Ctx,
    viewer: &Viewer<'_>,
    kind: &str,
    server_ids: &[i64],
    params: &Value,
) -> Result<Job, StartError> {
    let ids = distinct(server_ids);
    let mut tx = ctx.db.begin().await?;
    let seen = servers::visible_ids(&mut tx, &ids, viewer.scope()).await?;
    if let Some(missing) = ids.iter().find(|i| !seen.contains(i)) {
        return Err(StartError::ServerNotFound(*missing));
    }
    queue(ctx, tx, viewer, kind, &ids, params).await
}

/// Queues a job of `kind` over the servers of pool `pool` (with `sub_pools`, of its
/// descendants too), as [`start_job`] does. A pool without servers gets a job with nothing to
/// do, which succeeds at once.
pub async fn start_pool_job(
    ctx: &Ctx,
    viewer: &Viewer<'_>,
    kind: &str,
    pool: i64,
    sub_pools: bool,
    params: &Value,
) -> Result<Job, StartError> {
    if !pools::visible(&ctx.db, viewer.scope(), pool).await? {
        return Err(StartError::PoolNotFound(pool));
    }
    let mut tx = ctx.db.begin().await?;
    let ids = lifecycle::pool_server_ids(&mut tx, pool, sub_pools).await?;
    queue(ctx, tx, viewer, kind, &ids, params).await
}

async fn queue(
    ctx: &Ctx,
    mut tx: crate::db::Tx,
    viewer: &Viewer<'_>,
    kind: &str,
    ids: &[i64],
    params: &Value,
) -> Result<Job, StartError> {
    let id = queue_in(&mut tx, viewer, kind, ids, params).await?;
    let job = jobs::get(&mut tx, id)
        .await?
        .ok_or(DbError::Decode("job".into(), "vanished"))?;
    tx.commit().await?;
    ctx.jobs.wake();
    tracing::info!(job = id, kind, servers = ids.len(), user = %viewer.username, "lifecycle job queued");
    Ok(job)
}

/// Queues a job of `kind` over `ids` (distinct, already checked visible) inside the caller's
/// transaction and claims the servers under the busy rule; returns the job id. The caller
/// commits (or drops the transaction on an error) and then wakes the workers.
pub async fn queue_in(
    tx: &mut crate::db::Tx,
    viewer: &Viewer<'_>,
    kind: &str,
    ids: &[i64],
    params: &Value,
) -> Result<i64, StartError> {
    let id = jobs::enqueue_lifecycle(&mut *tx, kind, ids, params, Some(viewer.id)).await?;
    let claimed = match lifecycle::claim_servers(&mut *tx, id, kind, ids).await {
        Ok(c) => c,
        // A server deleted meanwhile.
        Err(e) if e.is_foreign_key_violation() => {
            return Err(StartError::ServerNotFound(
                ids.first().copied().unwrap_or(0),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(busy) = claimed {
        // Dropping the transaction rolls the job back.
        return Err(StartError::Busy(busy));
    }
    Ok(id)
}

/// True when the viewer may see the job: its starter and superusers.
pub fn may_see(viewer: &Viewer<'_>, job: &Job) -> bool {
    viewer.is_superuser || job.created_by == Some(viewer.id)
}

/// The job if the viewer may see it (None: no such job, or not theirs).
pub async fn job_for(ctx: &Ctx, viewer: &Viewer<'_>, id: i64) -> Result<Option<Job>, DbError> {
    Ok(jobs::get(&ctx.db, id).await?.filter(|j| may_see(viewer, j)))
}

/// Why a job was not cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such job, or not one the viewer may see.
    #[error("no job {0}")]
    NotFound(i64),
    /// The job had already ended.
    #[error("Job {0} has already ended ({1}).")]
    Ended(i64, String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Cancels a queued or running job the viewer may see (its kind cleans up in the same
/// transaction, and its servers are free again); returns the job as it reads afterwards.
pub async fn cancel(ctx: &Ctx, viewer: &Viewer<'_>, id: i64) -> Result<Job, CancelError> {
    let job = job_for(ctx, viewer, id)
        .await?
        .ok_or(CancelError::NotFound(id))?;
    let mut tx = ctx.db.begin().await?;
    if !ctx.jobs.cancel(&mut tx, &job).await? {
        return Err(CancelError::Ended(id, job.status.to_string()));
    }
    tx.commit().await?;
    tracing::info!(job = id, user = %viewer.username, "job cancelled");
    if job.kind == crate::lifecycle::deploy::KIND {
        // The deployment ended cancelled with its job: its media comes out too.
        if let Some(d) = crate::db::deployments::by_job(&ctx.db, id).await? {
            crate::lifecycle::deploy::eject_quietly(ctx, None, &d).await;
        }
    }
    jobs::get(&ctx.db, id)
        .await?
        .ok_or(CancelError::NotFound(id))
}
