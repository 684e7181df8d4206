//! Starting and stopping scans: one job per request for the ranges that are not scanning
//! already, and a range's deletion cancelling the scan that had nothing else to do.

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
    let mut tx = ctx.db.begin().await?;
    let job = jobs::enqueue(
        &mut tx,
        scan::KIND,
        &json!(ids),
        &scan_ranges::zero_progress(0),
        Some(user),
    )
    .await?;
    let taken = scan_ranges::start_scan(&mut tx, ids, job).await?;
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
    ctx.jobs.wake();
    Ok(Started {
        job: job.or_else(|| ranges.iter().find_map(|r| r.job_id)),
        ranges,
    })
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
