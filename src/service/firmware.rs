//! Starting firmware updates: one binary on a server (its applicability checked up front) or
//! on a pool's servers (those it does not apply to are skipped by the job), and a baseline
//! applied to servers or a pool (only what is non-compliant or missing is installed).

use super::lifecycle::{start_job, start_pool_job, StartError};
use super::Viewer;
use crate::ctx::Ctx;
use crate::db::baselines;
use crate::db::catalogue::{self, FirmwareBinary};
use crate::db::jobs::Job;
use crate::db::{servers, DbError};
use crate::lifecycle::firmware::{params, KIND};

/// Why no update was started.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// A field names nothing (`firmware`, `servers`, `resource_pool`): `Invalid pk`.
    #[error("{0}: invalid pk {1}")]
    InvalidPk(&'static str, i64),
    /// The binary does not apply to the server (the message for the `firmware` field).
    #[error("{0}")]
    NotApplicable(String),
    /// No such baseline.
    #[error("no such baseline")]
    NoBaseline,
    /// The job could not be queued (server or pool not visible, a server busy).
    #[error(transparent)]
    Start(#[from] StartError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

async fn binary(ctx: &Ctx, id: i64) -> Result<FirmwareBinary, UpdateError> {
    catalogue::firmware_binaries(&ctx.db, &[id])
        .await?
        .pop()
        .ok_or(UpdateError::InvalidPk("firmware", id))
}

/// `Firmware 3 (Dell, ["PowerEdge R650"]) does not apply to server 7 (Contoso, 3500).`
pub fn not_applicable_message(b: &FirmwareBinary, server: i64, mfr: &str, model: &str) -> String {
    format!(
        "Firmware {} ({}, {}) does not apply to server {server} ({mfr}, {model}).",
        b.id,
        b.manufacturer,
        serde_json::json!(b.models)
    )
}

/// Queues an update of server `server` with firmware `firmware`.
pub async fn update_server(
    ctx: &Ctx,
    viewer: &Viewer<'_>,
    server: i64,
    firmware: i64,
) -> Result<Job, UpdateError> {
    if !baselines::server_visible(&ctx.db, viewer.scope(), server).await? {
        return Err(StartError::ServerNotFound(server).into());
    }
    let b = binary(ctx, firmware).await?;
    let s = servers::get(&ctx.db, server)
        .await?
        .ok_or(StartError::ServerNotFound(server))?;
    if !b.applies_to(s.manufacturer.as_deref(), s.model.as_deref()) {
        return Err(UpdateError::NotApplicable(not_applicable_message(
            &b,
            server,
            s.manufacturer.as_deref().unwrap_or(""),
            s.model.as_deref().unwrap_or(""),
        )));
    }
    Ok(start_job(ctx, viewer, KIND, &[server], &params(&[b.id], None)).await?)
}

/// Queues an update of the servers of pool `pool` (and its sub-pools with `sub_pools`).
pub async fn update_pool(
    ctx: &Ctx,
    viewer: &Viewer<'_>,
    pool: i64,
    firmware: i64,
    sub_pools: bool,
) -> Result<Job, UpdateError> {
    let b = binary(ctx, firmware).await?;
    Ok(start_pool_job(ctx, viewer, KIND, pool, sub_pools, &params(&[b.id], None)).await?)
}

/// Where a baseline is applied.
#[derive(Debug, Clone)]
pub enum ApplyTo {
    /// These servers.
    Servers(Vec<i64>),
    /// A pool's servers, sub-pools included.
    Pool(i64),
}

/// Queues one job installing the non-compliant and missing components of baseline `id`.
pub async fn apply_baseline(
    ctx: &Ctx,
    viewer: &Viewer<'_>,
    id: i64,
    to: ApplyTo,
) -> Result<Job, UpdateError> {
    let baseline = baselines::get(&ctx.db, id)
        .await?
        .ok_or(UpdateError::NoBaseline)?;
    let p = params(&baseline.firmware_binaries, Some(id));
    Ok(match to {
        ApplyTo::Servers(ids) => start_job(ctx, viewer, KIND, &ids, &p).await?,
        ApplyTo::Pool(pool) => start_pool_job(ctx, viewer, KIND, pool, true, &p).await?,
    })
}
