//! OS deployments: starting one (a `deployment` job holding the server busy, a deployment row
//! locking it against pool changes, a one-time callback token of which only the hash is
//! stored), the installer's callback, cancelling, and who may see them (the starter and
//! superusers).

use sha2::{Digest, Sha256};

use super::lifecycle::{self as lc, StartError};
use super::Viewer;
use crate::ctx::Ctx;
use crate::db::deployments::{self, Deployment};
use crate::db::{catalogue, jobs, servers, DbError};
use crate::lifecycle::bmc::{self, BmcError};
use crate::lifecycle::deploy;
use crate::media::MediaError;

/// Path prefix of callback URLs (`<media base>/media/callback/<token>/`).
pub const CALLBACK_PREFIX: &str = "/media/callback/";

/// Why no deployment was started.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// No server the viewer can see.
    #[error("no server {0}")]
    ServerNotFound(i64),
    /// No such OS image.
    #[error("Invalid pk \"{0}\" - object does not exist.")]
    OsNotFound(i64),
    /// The server has no registered BMC.
    #[error("Server {0} has no registered BMC.")]
    NotRegistered(i64),
    /// The server is busy (another lifecycle job).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The callback URL could not be made.
    #[error(transparent)]
    Media(MediaError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A deployment just started, with its callback URL (shown only now).
#[derive(Debug, Clone)]
pub struct Started {
    /// The deployment.
    pub deployment: Deployment,
    /// Absolute callback URL holding the one-time token.
    pub callback_url: String,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts deploying OS image `os` on server `server` for the viewer.
pub async fn deploy(
    ctx: &Ctx,
    viewer: &Viewer<'_>,
    server: i64,
    os: i64,
) -> Result<Started, DeployError> {
    let mut tx = ctx.db.begin().await?;
    if !servers::visible_ids(&mut tx, &[server], viewer.scope())
        .await?
        .contains(&server)
    {
        return Err(DeployError::ServerNotFound(server));
    }
    if catalogue::stored_name(&mut tx, catalogue::Kind::Os, os)
        .await?
        .is_none()
    {
        return Err(DeployError::OsNotFound(os));
    }
    drop(tx);
    let target = match bmc::target(ctx, server).await {
        Ok(t) => t,
        Err(BmcError::Db(e)) => return Err(e.into()),
        Err(BmcError::NoServer(_)) => return Err(DeployError::ServerNotFound(server)),
        Err(_) => return Err(DeployError::NotRegistered(server)),
    };
    let base = callback_base(ctx, &target.node)?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let mut tx = ctx.db.begin().await?;
    let job = lc::queue_in(
        &mut tx,
        viewer,
        deploy::KIND,
        &[server],
        &deploy::params(os),
    )
    .await?;
    let id = deployments::insert(&mut tx, server, os, job, &hash(&token), viewer.id).await?;
    let deployment = deployments::get(&mut tx, id)
        .await?
        .ok_or(DbError::Decode("deployment".into(), "vanished"))?;
    tx.commit().await?;
    ctx.jobs.wake();
    tracing::info!(deployment = id, job, server, os, user = %viewer.username, "deployment queued");
    Ok(Started {
        deployment,
        callback_url: format!("{base}{CALLBACK_PREFIX}{token}/"),
    })
}

/// The base (`scheme://host:port`) of the callback URL: that of the media URLs the server's
/// BMC gets.
fn callback_base(ctx: &Ctx, node: &crate::db::nodes::Node) -> Result<String, DeployError> {
    ctx.media
        .base_for(deploy::bmc_addr(&node.ip_address, node.port))
        .map_err(DeployError::Media)
}

/// True when the viewer may see the deployment: its starter and superusers.
pub fn may_see(viewer: &Viewer<'_>, d: &Deployment) -> bool {
    viewer.is_superuser || d.created_by == Some(viewer.id)
}

/// The deployment if the viewer may see it.
pub async fn get(ctx: &Ctx, viewer: &Viewer<'_>, id: i64) -> Result<Option<Deployment>, DbError> {
    Ok(deployments::get(&ctx.db, id)
        .await?
        .filter(|d| may_see(viewer, d)))
}

/// What the installer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Installed.
    Complete,
    /// The installation failed.
    Failed,
}

/// Why a callback or a cancel changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum EndError {
    /// Wrong token, no such deployment (or not the viewer's), or (callback) no longer active.
    #[error("not found")]
    NotFound,
    /// (cancel) The deployment had already ended.
    #[error("Deployment {0} has already ended ({1}).")]
    Ended(i64, String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The installer's callback with `token`: `complete` ejects the media and ends the deployment
/// complete; `failed` ends it failed with `message` (and ejects too). Its job, parked while
/// it waits for this, is woken (on whichever replica has a free worker) and ends with it.
pub async fn callback(
    ctx: &Ctx,
    token: &str,
    report: Report,
    message: Option<&str>,
) -> Result<Deployment, EndError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EndError::NotFound);
    }
    let d = deployments::active_by_callback(&ctx.db, &hash(token))
        .await?
        .ok_or(EndError::NotFound)?;
    let (status, error) = match report {
        Report::Complete => ("complete", None),
        Report::Failed => (
            "failed",
            Some(
                message
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or("the installer reported failure"),
            ),
        ),
    };
    deploy::eject_quietly(ctx, None, &d).await;
    let mut tx = ctx.db.begin().await?;
    if !deployments::end(&mut tx, d.id, status, error).await? {
        // Cancelled or timed out meanwhile.
        return Err(EndError::NotFound);
    }
    // The job waits parked in `installing`: woken, it reads this end and finishes with it.
    if let Some(job) = d.job {
        jobs::wake(&mut tx, job).await?;
    }
    tx.commit().await?;
    ctx.jobs.wake();
    tracing::info!(deployment = d.id, status, "installer called back");
    deployments::get(&ctx.db, d.id)
        .await?
        .ok_or(EndError::NotFound)
}

/// Cancels an active deployment the viewer may see: its job is cancelled, the media ejected.
pub async fn cancel(ctx: &Ctx, viewer: &Viewer<'_>, id: i64) -> Result<Deployment, EndError> {
    let d = get(ctx, viewer, id).await?.ok_or(EndError::NotFound)?;
    if !d.active() {
        return Err(EndError::Ended(d.id, d.status.clone()));
    }
    let mut tx = ctx.db.begin().await?;
    if let Some(job) = match d.job {
        Some(j) => jobs::get(&mut tx, j).await?,
        None => None,
    } {
        // The kind's finish ends the deployment `cancelled` in the same transaction.
        ctx.jobs.cancel(&mut tx, &job).await?;
    }
    deployments::end(&mut tx, d.id, "cancelled", None).await?;
    tx.commit().await?;
    deploy::eject_quietly(ctx, None, &d).await;
    tracing::info!(deployment = id, user = %viewer.username, "deployment cancelled");
    deployments::get(&ctx.db, id)
        .await?
        .ok_or(EndError::NotFound)
}
