//! Starting and stopping scans: one job per request for the ranges that are not scanning
//! already, the scheduler starting the scans of ranges whose `rescan_interval` made them due,
//! and a range's deletion cancelling the scan that had nothing else to do.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::ctx::Ctx;
use crate::db::scan_ranges::{self, ScanRange};
use crate::db::{jobs, DbResult};
use crate::discovery::scan;

/// A started (or already running) scan and the ranges as they read in the same transaction.
#[derive(Debug)]
pub struct Started {
    /// The job that scans the ranges: the new one, or the running scan when every range was
    /// already scanning.
    pub job: Option<i64>,
    /// The ranges (`scanning` already, even if a worker finishes first).
    pub ranges: Vec<ScanRange>,
}

/// Queues one scan job for the ranges `ids` (existing, sorted, distinct) that are not scanning;
/// a range already scanning keeps its scan. Wakes this process's workers after the commit.
pub async fn start(ctx: &Ctx, user: i64, ids: &[i64]) -> DbResult<Started> {
    Ok(start_scans(ctx, Some(user), ids, None).await?.1)
}

/// Starts one scan job (no starter: the scheduler) for those of the ranges `ids` whose
/// scheduled scan is due at `at` and that do not scan. However many processes call this at
/// once, each due scan is started by one of them (see `scan_ranges::start_scan_if_due`); the others
/// get `job: None` when they took nothing.
pub async fn start_due(ctx: &Ctx, ids: &[i64], at: DateTime<Utc>) -> DbResult<Started> {
    let (new, started) = start_scans(ctx, None, ids, Some(at)).await?;
    Ok(Started {
        job: new,
        ..started
    })
}

async fn start_scans(
    ctx: &Ctx,
    user: Option<i64>,
    ids: &[i64],
    due: Option<DateTime<Utc>>,
) -> DbResult<(Option<i64>, Started)> {
    let mut tx = ctx.db.begin().await?;
    let job = jobs::enqueue(
        &mut tx,
        scan::KIND,
        &json!(ids),
        &scan_ranges::zero_progress(0),
        user,
    )
    .await?;
    let taken = scan_ranges::start_scan_if_due(&mut tx, ids, job, due).await?;
    let job = if taken.is_empty() {
        // Every range already scans: answer with the scan that runs.
        jobs::discard(&mut tx, job).await?;
        None
    } else {
        if taken.len() != ids.len() {
            jobs::set_targets(&mut tx, job, &json!(taken)).await?;
        }
        Some(job)
    };
    let ranges = scan_ranges::get_many(&mut tx, ids).await?;
    tx.commit().await?;
    if job.is_some() {
        ctx.jobs.wake();
    }
    let started = Started {
        job: job.or_else(|| ranges.iter().find_map(|r| r.job_id)),
        ranges,
    };
    Ok((job, started))
}

/// One pass of the scheduler: starts the scans that are due now; returns the job started.
pub async fn start_due_scans(ctx: &Ctx) -> DbResult<Option<i64>> {
    let at = crate::db::now();
    let ids = scan_ranges::due(&ctx.db, at).await?;
    if ids.is_empty() {
        return Ok(None);
    }
    let started = start_due(ctx, &ids, at).await?;
    if let Some(job) = started.job {
        tracing::info!(job, scan_ranges = ?ids, "scheduled scan started");
    }
    Ok(started.job)
}

/// The scheduler loop of this process: every `MOJO_SCHEDULER_TICK_MS` it starts the scans that
/// are due, until shutdown. Every replica runs one; the database lets one of them start each
/// due scan.
pub async fn run_scheduler(ctx: Ctx) {
    let tick = Duration::from_millis(ctx.config.scheduler_tick_ms.max(10));
    while !ctx.shutdown.is_cancelled() {
        if let Err(e) = start_due_scans(&ctx).await {
            tracing::warn!(error = %e, "scan scheduler: database unavailable");
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Deletes a scan range (its nodes stay, unlinked); a scan job left with no range to scan is
/// cancelled. False when there was no such range.
pub async fn delete_range(ctx: &Ctx, id: i64) -> DbResult<bool> {
    let mut tx = ctx.db.begin().await?;
    let Some(scanning_job) = scan_ranges::delete(&mut tx, id).await? else {
        return Ok(false);
    };
    if let Some(job) = scanning_job {
        if scan_ranges::scanning_under(&mut tx, job).await? == 0 {
            jobs::cancel(&mut tx, job).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}
