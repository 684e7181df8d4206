//! The `firmware_update` job: installs catalogue firmware on each of its servers, at most
//! `MOJO_FIRMWARE_CONCURRENCY` BMCs at once.
//!
//! Parameters: `{"firmware": [ids]}` (installed in that order) and, for a baseline apply,
//! `"baseline": id` (then a binary whose version the server already has is left alone). Per
//! server and binary: a binary that does not apply (manufacturer, models) is skipped; the BMC's
//! `UpdateService` is read; `SimpleUpdate` with a signed media URL where offered, else a
//! streamed multipart push; `Targets` name the FirmwareInventory entry of the binary's type;
//! the returned task is followed to its end with `PercentComplete` as progress, within
//! `MOJO_FIRMWARE_TIMEOUT`. Then the inventory is read again and stored, and the result names
//! the change (`BIOS 1.0.2 -> 2.19.1`).
//!
//! Never flash twice: before an update is sent the checkpoint records it, and once the BMC
//! answers, the task URI. A job claimed again after its worker died follows the recorded task
//! instead of starting a new update; one that had sent the update but not yet recorded the task
//! fails that server rather than send it again.

use std::net::SocketAddr;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::bmc::with_bmc;
use super::fleet::{self, ServerOutcome, ServerWork};
use crate::ctx::Ctx;
use crate::db::catalogue::{self, FirmwareBinary, Kind};
use crate::db::jobs::Job;
use crate::db::servers::{self, Server};
use crate::db::{DbResult, Tx};
use crate::discovery::register::record_inventory;
use crate::jobs::{JobContext, JobHandler, Outcome};
use crate::redfish::{self, RedfishError, Session, TaskProgress};

/// Kind of the firmware update job.
pub const KIND: &str = "firmware_update";

/// Consecutive failed task reads tolerated before the update is given up.
const TASK_READ_RETRIES: u32 = 10;

/// The firmware update job handler.
#[derive(Default)]
pub struct FirmwareJob;

/// The parameters of a job installing `firmware` (in order), for baseline `baseline` when
/// given.
pub fn params(firmware: &[i64], baseline: Option<i64>) -> Value {
    match baseline {
        Some(b) => json!({ "firmware": firmware, "baseline": b }),
        None => json!({ "firmware": firmware }),
    }
}

impl JobHandler for FirmwareJob {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, jc: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let ids: Vec<i64> = jc
                .job
                .params
                .get("firmware")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let only_missing = jc.job.params.get("baseline").is_some();
            let ctx = &jc.ctx;
            let binaries = match catalogue::firmware_binaries(&ctx.db, &ids).await {
                Ok(b) => b,
                Err(e) => return Outcome::Failed(format!("database error: {e}")),
            };
            if binaries.is_empty() {
                return Outcome::Failed("the firmware of this job no longer exists".into());
            }
            let binaries = &binaries;
            fleet::run_servers(jc, ctx.config.firmware_concurrency, |w| async move {
                update_server(ctx, jc, binaries, only_missing, w).await
            })
            .await
        })
    }

    fn finish<'a>(
        &'a self,
        tx: &'a mut Tx,
        job: &'a Job,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, DbResult<()>> {
        Box::pin(fleet::finish(tx, job.id, error))
    }
}

/// The stored firmware version of a type on a server.
async fn stored_version(ctx: &Ctx, server: i64, firmware_type: &str) -> Option<String> {
    servers::firmwares(&ctx.db, server, None)
        .await
        .ok()??
        .into_iter()
        .find(|f| f.firmware_type.eq_ignore_ascii_case(firmware_type))
        .and_then(|f| f.version)
}

/// What one server's work is: the binaries to install (with the version before, when known).
struct Plan {
    install: Vec<(FirmwareBinary, Option<String>)>,
    notes: Vec<String>,
}

async fn plan(ctx: &Ctx, server: &Server, binaries: &[FirmwareBinary], only_missing: bool) -> Plan {
    let mut install = Vec::new();
    let mut notes = Vec::new();
    for b in binaries {
        if !b.applies_to(server.manufacturer.as_deref(), server.model.as_deref()) {
            notes.push(format!("firmware {} does not apply", b.id));
            continue;
        }
        let before = stored_version(ctx, server.id, &b.firmware_type).await;
        if only_missing && before.as_deref() == Some(b.version.as_str()) {
            notes.push(format!("{} already {}", b.firmware_type, b.version));
            continue;
        }
        install.push((b.clone(), before));
    }
    Plan { install, notes }
}

/// How the BMC part of one binary ended.
enum Step {
    /// The task completed.
    Done,
    /// The task failed (its messages).
    Failed(String),
    /// The job is no longer ours.
    Stopped,
}

async fn update_server(
    ctx: &Ctx,
    jc: &JobContext,
    binaries: &[FirmwareBinary],
    only_missing: bool,
    w: ServerWork,
) -> ServerOutcome {
    let server = match servers::get(&ctx.db, w.server).await {
        Ok(Some(s)) => s,
        Ok(None) => return fleet::failed(jc, w.server, format!("server {} is gone", w.server)),
        Err(e) => return fleet::failed(jc, w.server, format!("database error: {e}")),
    };
    let mut saved = w.saved.clone();
    let mut done: Vec<Value> = saved
        .get("done")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Plan { install, notes } = plan(ctx, &server, binaries, only_missing).await;
    if install.is_empty() && done.is_empty() {
        let reason = if only_missing && notes.iter().all(|n| !n.contains("does not apply")) {
            "compliant: nothing to install".to_string()
        } else {
            notes.join("; ")
        };
        return ServerOutcome::Skipped(reason);
    }
    let limit = ctx.config.firmware_timeout;
    let w = &w;
    let work = with_bmc(ctx, Some(w.job()), w.server, |session, t| {
        let saved = &mut saved;
        let done = &mut done;
        let install = &install;
        async move {
            let bmc = bmc_addr(&t.node.ip_address, t.node.port);
            for (b, before) in install {
                if done
                    .iter()
                    .any(|d| d.get("firmware").and_then(Value::as_i64) == Some(b.id))
                {
                    continue;
                }
                let current = saved.get("current").cloned().unwrap_or(Value::Null);
                let resumed = current.get("firmware").and_then(Value::as_i64) == Some(b.id);
                let before = if resumed {
                    current
                        .get("from")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                } else {
                    before.clone()
                };
                let step = if resumed {
                    match current.get("task").and_then(Value::as_str) {
                        Some(task) => follow(&session, task, w).await?,
                        None => Step::Failed(format!(
                            "an earlier attempt sent the update of firmware {} but recorded no \
                             task; it is not sent again (check the BMC)",
                            b.id
                        )),
                    }
                } else {
                    start_and_follow(ctx, &session, b, bmc, before.as_deref(), saved, w).await?
                };
                match step {
                    Step::Stopped => return Ok(None),
                    Step::Failed(m) => return Ok(Some(Err(m))),
                    Step::Done => {
                        done.push(
                            json!({"firmware": b.id, "type": b.firmware_type, "from": before}),
                        );
                        saved["done"] = json!(done);
                        saved["current"] = Value::Null;
                        if !w.save(saved.clone()).await {
                            return Ok(None);
                        }
                    }
                }
            }
            let inv = redfish::read_inventory(&session).await?;
            Ok(Some(Ok((inv, t))))
        }
    });
    let (inv, t) = match tokio::time::timeout(limit, work).await {
        Err(_) => {
            return fleet::failed(
                jc,
                w.server,
                format!(
                    "the update did not finish within MOJO_FIRMWARE_TIMEOUT ({} s)",
                    limit.as_secs()
                ),
            )
        }
        Ok(Err(e)) => return fleet::failed(jc, w.server, e.to_string()),
        Ok(Ok(None)) => return ServerOutcome::Failed("the job stopped".into()),
        Ok(Ok(Some(Err(m)))) => return fleet::failed(jc, w.server, m),
        Ok(Ok(Some(Ok(read)))) => read,
    };
    let written = async {
        let db_err = |e: crate::db::DbError| format!("database error: {e}");
        let mut tx = ctx.db.begin().await.map_err(db_err)?;
        // Another registered node's server (identity rules): said as it is.
        record_inventory(&mut tx, &t.node, &inv)
            .await
            .map_err(|e| match e {
                crate::db::servers::UpsertError::Db(e) => db_err(e),
                other => other.to_string(),
            })?;
        tx.commit().await.map_err(db_err)
    };
    if let Err(e) = written.await {
        return fleet::failed(jc, w.server, e);
    }
    let changes: Vec<String> = done
        .iter()
        .map(|d| {
            let ty = d.get("type").and_then(Value::as_str).unwrap_or("");
            let from = d.get("from").and_then(Value::as_str).unwrap_or("?");
            let to = inv
                .firmwares
                .iter()
                .find(|f| f.firmware_type.as_str().eq_ignore_ascii_case(ty))
                .and_then(|f| f.version.clone())
                .unwrap_or_else(|| "?".into());
            format!("{ty} {from} -> {to}")
        })
        .collect();
    ServerOutcome::Succeeded(changes.join("; "))
}

/// The BMC's socket address (for the source address a media URL names).
fn bmc_addr(ip: &str, port: i64) -> SocketAddr {
    let ip = ip
        .parse()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, u16::try_from(port).unwrap_or(443))
}

/// Sends one update (recorded in the checkpoint first, then its task) and follows its task.
async fn start_and_follow(
    ctx: &Ctx,
    session: &Session,
    b: &FirmwareBinary,
    bmc: SocketAddr,
    before: Option<&str>,
    saved: &mut Value,
    w: &ServerWork,
) -> Result<Step, RedfishError> {
    let service = redfish::update_service(session)
        .await?
        .ok_or_else(|| RedfishError::Unsupported("BMC offers no supported update method".into()))?;
    if service.simple_update.is_none() && service.multipart_push.is_none() {
        return Err(RedfishError::Unsupported(
            "BMC offers no supported update method".into(),
        ));
    }
    let target = redfish::firmware_target(session, &service, &b.firmware_type).await?;
    if !saved.is_object() {
        *saved = json!({});
    }
    saved["current"] = json!({"firmware": b.id, "from": before, "sent": true});
    if !w.save(saved.clone()).await {
        return Ok(Step::Stopped);
    }
    let task = if service.simple_update.is_some() {
        let url = ctx
            .media
            .url_for(Kind::Firmware, b.id, &b.file_name, bmc)
            .map_err(|e| RedfishError::Unsupported(e.to_string()))?;
        redfish::simple_update(session, &service, &url, target.as_deref()).await?
    } else {
        let path = ctx.config.data_dir.join("firmware").join(&b.stored_name);
        let name = crate::media::sanitize_file_name(&b.file_name);
        redfish::multipart_push(
            session,
            &service,
            &path,
            u64::try_from(b.size).unwrap_or(0),
            &name,
            target.as_deref(),
            ctx.config.firmware_timeout,
        )
        .await?
    };
    tracing::info!(server = w.server, firmware = b.id, task = %task, "firmware update started");
    saved["current"]["task"] = json!(task);
    if !w.save(saved.clone()).await {
        return Ok(Step::Stopped);
    }
    follow(session, &task, w).await
}

/// Follows a task to its end, reporting its percentage.
async fn follow(session: &Session, task: &str, w: &ServerWork) -> Result<Step, RedfishError> {
    let mut errors = 0;
    loop {
        match redfish::task_progress(session, task).await {
            Ok(TaskProgress::Completed) => return Ok(Step::Done),
            Ok(TaskProgress::Failed(m)) => return Ok(Step::Failed(m)),
            Ok(TaskProgress::Running(p)) => {
                errors = 0;
                if let Some(p) = p {
                    if !w.percent(p).await {
                        return Ok(Step::Stopped);
                    }
                }
            }
            Err(e @ RedfishError::ForeignUrl(_)) => return Err(e),
            Err(e) => {
                errors += 1;
                if errors >= TASK_READ_RETRIES {
                    return Err(e);
                }
            }
        }
        tokio::time::sleep(redfish::TASK_POLL).await;
    }
}
