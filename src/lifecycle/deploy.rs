//! The `deployment` job: an OS image booted from virtual media on one server, then a wait for
//! the installer's callback.
//!
//! Steps, each recorded in the job's checkpoint before it runs, so a job claimed again after
//! its worker died picks up where it was and never repeats the reset:
//! - `insert_media`: the system's (else its manager's) CD/DVD slot is ejected and the ISO's
//!   signed media URL inserted;
//! - `set_boot`: one-time boot override to `Cd` (PATCH with the ETag where the BMC gives one);
//! - `reset`: `On` when the server is off, else `ForceRestart` (marked sent before it is sent);
//! - `installing`: the job waits, parked in the queue (`Outcome::Wait`: it holds no worker and
//!   no lease, so any number of deployments can wait for their installers), until the callback
//!   wakes it (it then reads the deployment the callback ended) or `MOJO_DEPLOY_TIMEOUT` passes
//!   since the reset: then it fails and the media is ejected. A cancel ends the job directly.
//!
//! The job holds its server busy while it runs; the deployment row locks the server against pool
//! changes while it is `queued` or `running`. `finish` ends the deployment with its job.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::bmc::{with_bmc, BmcError};
use super::fleet::{self, ServerOutcome, ServerWork};
use crate::ctx::Ctx;
use crate::db::catalogue::Kind;
use crate::db::deployments::{self, Deployment};
use crate::db::jobs::{self, Job};
use crate::db::{DbError, DbResult, JobStatus, Tx};
use crate::jobs::{JobContext, JobHandler, Outcome};
use crate::media::MediaError;
use crate::redfish::{self, CdSlot, PowerAction, RedfishError, Session};

/// Kind of the deployment job.
pub const KIND: &str = "deployment";

/// How soon a deployment in `installing` looks at its row again when it could not read it.
const RETRY_READ: Duration = Duration::from_secs(5);

/// How often `PowerState` is read between the two steps of a two-step reset.
const SETTLE_POLL: Duration = Duration::from_millis(500);

/// The deployment job handler.
#[derive(Default)]
pub struct DeployJob;

/// The parameters of a deployment job.
pub fn params(os: i64) -> Value {
    json!({ "os": os })
}

/// The BMC's socket address (the media URL's host is the one that reaches it).
pub fn bmc_addr(ip: &str, port: i64) -> SocketAddr {
    let ip = ip
        .parse()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, u16::try_from(port).unwrap_or(443))
}

impl JobHandler for DeployJob {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, jc: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let ctx = &jc.ctx;
            let d = match deployments::by_job(&ctx.db, jc.job.id).await {
                Ok(Some(d)) => d,
                Ok(None) => return Outcome::Failed("the job has no deployment".into()),
                Err(e) => return Outcome::Failed(format!("database error: {e}")),
            };
            if d.status == "cancelled" {
                return Outcome::Stopped;
            }
            if let Err(e) = deployments::set_running(&ctx.db, d.id).await {
                return Outcome::Failed(format!("database error: {e}"));
            }
            let d = &d;
            fleet::run_servers(jc, 1, |w| async move { deploy_server(ctx, jc, d, w).await }).await
        })
    }

    fn finish<'a>(
        &'a self,
        tx: &'a mut Tx,
        job: &'a Job,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, DbResult<()>> {
        Box::pin(async move {
            fleet::finish(tx, job.id, error).await?;
            let Some(d) = deployments::by_job(&mut *tx, job.id).await? else {
                return Ok(());
            };
            if !d.active() {
                return Ok(());
            }
            let status = jobs::get(&mut *tx, job.id).await?.map(|j| j.status);
            let (status, error) = match status {
                Some(JobStatus::Cancelled) => ("cancelled", None),
                Some(JobStatus::Succeeded) => ("complete", None),
                _ => (
                    "failed",
                    Some(error.unwrap_or("the deployment's job ended").to_string()),
                ),
            };
            deployments::end(&mut *tx, d.id, status, error.as_deref()).await?;
            Ok(())
        })
    }
}

/// The step an earlier attempt recorded.
fn saved_step(saved: &Value) -> (&str, bool) {
    (
        saved
            .get("step")
            .and_then(Value::as_str)
            .unwrap_or("insert_media"),
        saved.get("sent").and_then(Value::as_bool).unwrap_or(false),
    )
}

/// Records the step in the checkpoint and on the deployment; false when the job or the
/// deployment is no longer active.
async fn step(ctx: &Ctx, w: &ServerWork, d: &Deployment, saved: Value, percent: u8) -> bool {
    let name = saved
        .get("step")
        .and_then(Value::as_str)
        .unwrap_or("insert_media")
        .to_string();
    if !w.save(saved).await {
        return false;
    }
    let _ = w.percent(percent).await;
    matches!(
        deployments::set_step(&ctx.db, d.id, &name, i64::from(percent)).await,
        Ok(true)
    )
}

/// What the BMC part ended with.
enum Booted {
    /// Reset sent (or sent by an earlier attempt); now installing.
    Installing(DateTime<Utc>),
    /// The job or the deployment is no longer active.
    Stopped,
}

async fn deploy_server(ctx: &Ctx, jc: &JobContext, d: &Deployment, w: ServerWork) -> ServerOutcome {
    let (at, _) = saved_step(&w.saved);
    // A deployment that ended while no worker held its job (its end is what the job reports).
    let since = if at == "installing" || !d.active() {
        w.saved
            .get("since")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(Utc::now)
    } else {
        match boot(ctx, d, &w).await {
            Ok(Booted::Installing(t)) => t,
            Ok(Booted::Stopped) if jc.cancel.is_cancelled() => {
                return futures::future::pending().await
            }
            Ok(Booted::Stopped) => return ServerOutcome::Failed("the deployment stopped".into()),
            Err(e) => {
                let message = e.to_string();
                eject_quietly(ctx, Some(jc.job.id), d).await;
                let _ = deployments::end(&ctx.db, d.id, "failed", Some(&message)).await;
                return fleet::failed(jc, w.server, message);
            }
        }
    };
    installing(ctx, jc, d, since).await
}

/// The steps up to the reset, from the one an earlier attempt recorded.
async fn boot(ctx: &Ctx, d: &Deployment, w: &ServerWork) -> Result<Booted, BootError> {
    let os = d.os.ok_or(ImageError::Deleted)?;
    let image = os_image(ctx, os).await?;
    let (at, sent) = saved_step(&w.saved);
    let at = at.to_string();
    let limit = ctx.config.power_timeout;
    with_bmc(ctx, Some(w.job()), w.server, |session, t| async move {
        let sys = redfish::find_system(
            &session,
            t.server.uuid.as_deref(),
            t.server.serial_number.as_deref(),
        )
        .await?;
        if at == "insert_media" {
            let slot = redfish::find_cd(&session, &sys).await?;
            // Known before the insert, so a cancel ejects even when this attempt dies.
            let _ = deployments::set_media_path(&ctx.db, d.id, &slot.path).await;
            if slot.inserted || slot.image.is_some() {
                redfish::eject(&session, &slot).await?;
            }
            let bmc = bmc_addr(&t.node.ip_address, t.node.port);
            // A media URL the BMC cannot be given fails the step like a BMC that lacks one.
            let url = sign(ctx, os, &image, bmc)
                .map_err(|e| RedfishError::Unsupported(e.to_string()))?;
            redfish::insert(&session, &slot, &url).await?;
            tracing::info!(deployment = d.id, server = w.server, slot = %slot.path, "media inserted");
            if !step(ctx, w, d, json!({"step": "set_boot"}), 25).await {
                return Ok(Booted::Stopped);
            }
        }
        if at == "insert_media" || at == "set_boot" {
            redfish::boot_once_from_cd(&session, &sys).await?;
            if !step(ctx, w, d, json!({"step": "reset"}), 50).await {
                return Ok(Booted::Stopped);
            }
        }
        if !(at == "reset" && sent) {
            // Marked sent before it is sent: a re-claimed job never boots the server twice.
            if !step(ctx, w, d, json!({"step": "reset", "sent": true}), 50).await {
                return Ok(Booted::Stopped);
            }
            let state = redfish::power_state(&session, &sys.path).await?;
            let action = if state.as_deref() == Some("Off") {
                PowerAction::On
            } else {
                PowerAction::ForceRestart
            };
            reset(&session, &sys, action, limit).await?;
            tracing::info!(deployment = d.id, server = w.server, action = action.as_str(), "server reset to boot the installer");
        }
        let since = Utc::now();
        if !step(
            ctx,
            w,
            d,
            json!({"step": "installing", "since": since.to_rfc3339()}),
            75,
        )
        .await
        {
            return Ok(Booted::Stopped);
        }
        Ok(Booted::Installing(since))
    })
    .await
    .map_err(BootError::from)
}

/// Sends `action` as the BMC allows it (two steps wait for `Off` in between).
async fn reset(
    session: &Session,
    sys: &redfish::SystemPower,
    action: PowerAction,
    limit: Duration,
) -> Result<(), RedfishError> {
    let steps = redfish::plan_reset(action, sys.allowed.as_deref()).ok_or_else(|| {
        RedfishError::Unsupported(format!(
            "the BMC offers no reset type for {}",
            action.as_str()
        ))
    })?;
    for (i, t) in steps.iter().enumerate() {
        if i > 0 {
            let settle = async {
                loop {
                    if redfish::power_state(session, &sys.path).await?.as_deref() == Some("Off") {
                        return Ok::<(), RedfishError>(());
                    }
                    tokio::time::sleep(SETTLE_POLL).await;
                }
            };
            tokio::time::timeout(limit, settle)
                .await
                .map_err(|_| RedfishError::Timeout("PowerState never read Off".into()))??;
        }
        redfish::reset(session, sys, t).await?;
    }
    Ok(())
}

/// In `installing`: how the deployment ended (callback, cancel) or, while it is still active,
/// waiting (parked) until `MOJO_DEPLOY_TIMEOUT` after `since`; past it, the deployment fails
/// and its media is ejected.
async fn installing(
    ctx: &Ctx,
    jc: &JobContext,
    d: &Deployment,
    since: DateTime<Utc>,
) -> ServerOutcome {
    let limit = ctx.config.deploy_timeout;
    let deadline = since + chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::hours(4));
    match deployments::get(&ctx.db, d.id).await {
        Ok(Some(now)) if !now.active() => {
            return match now.status.as_str() {
                "complete" => ServerOutcome::Succeeded("installed".into()),
                "cancelled" => ServerOutcome::Failed("the deployment was cancelled".into()),
                _ => ServerOutcome::Failed(
                    now.error
                        .unwrap_or_else(|| "the installer reported failure".into()),
                ),
            };
        }
        Ok(None) => return ServerOutcome::Failed("the deployment was deleted".into()),
        Ok(Some(_)) => {}
        Err(e) => {
            tracing::warn!(deployment = d.id, error = %e, "cannot read the deployment; looking again soon");
            let retry = Utc::now()
                + chrono::Duration::from_std(RETRY_READ).unwrap_or(chrono::Duration::seconds(5));
            return ServerOutcome::Waiting(retry.min(deadline));
        }
    }
    if Utc::now() >= deadline {
        let message = format!(
            "no callback from the installer within MOJO_DEPLOY_TIMEOUT ({} s)",
            limit.as_secs()
        );
        eject_quietly(ctx, Some(jc.job.id), d).await;
        let _ = deployments::end(&ctx.db, d.id, "failed", Some(&message)).await;
        return fleet::failed(jc, d.server.unwrap_or(0), message);
    }
    // Woken by the callback (service::deployments), or run again at the deadline.
    ServerOutcome::Waiting(deadline)
}

/// Ejects the deployment's media from its slot (the slot it recorded, else the one it would
/// use); `job` is the job doing it, if one (its session is journalled with it).
pub async fn eject(ctx: &Ctx, job: Option<i64>, d: &Deployment) -> Result<(), BmcError> {
    let Some(server) = d.server else {
        return Ok(());
    };
    let path = d.media_path.clone();
    with_bmc(ctx, job, server, |session, t| async move {
        let slot: CdSlot = match path {
            Some(p) => redfish::read_slot(&session, &p).await?,
            None => {
                let sys = redfish::find_system(
                    &session,
                    t.server.uuid.as_deref(),
                    t.server.serial_number.as_deref(),
                )
                .await?;
                redfish::find_cd(&session, &sys).await?
            }
        };
        redfish::eject(&session, &slot).await
    })
    .await
}

/// [`eject`], logging a failure instead of returning it.
pub async fn eject_quietly(ctx: &Ctx, job: Option<i64>, d: &Deployment) {
    if let Err(e) = eject(ctx, job, d).await {
        tracing::warn!(deployment = d.id, error = %e, "cannot eject the deployment's media");
    }
}

/// Why a deployment has no OS image to serve.
#[derive(Debug, thiserror::Error)]
enum ImageError {
    /// The catalogue entry is gone.
    #[error("the OS image was deleted")]
    Deleted,
    /// It could not be read.
    #[error("database error: {0}")]
    Db(#[from] DbError),
}

/// Why the BMC part of a deployment stopped.
#[derive(Debug, thiserror::Error)]
enum BootError {
    /// No image to insert.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The BMC work failed.
    #[error(transparent)]
    Bmc(#[from] BmcError),
}

/// The uploaded file name of OS image `os` (its media URL ends with it).
async fn os_image(ctx: &Ctx, os: i64) -> Result<String, ImageError> {
    let file = crate::db::catalogue::media_file(&ctx.db, Kind::Os, os)
        .await?
        .ok_or(ImageError::Deleted)?;
    Ok(if file.file_name.is_empty() {
        file.stored_name
    } else {
        file.file_name
    })
}

/// The signed media URL of OS image `os` for the BMC at `bmc`.
fn sign(ctx: &Ctx, os: i64, file_name: &str, bmc: SocketAddr) -> Result<String, MediaError> {
    ctx.media.url_for(Kind::Os, os, file_name, bmc)
}
