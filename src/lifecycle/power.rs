//! The `power` job: one of the six power actions on each of its servers, at most
//! `MOJO_BMC_CONCURRENCY` BMCs at once.
//!
//! Per server: find its ComputerSystem, skip the action when the server already is in the
//! action's target state (`On` when `On`, `ForceOff`/`GracefulShutdown` when `Off`: result
//! `already On`; restarts are always sent), send the reset type(s) the BMC allows for the
//! action (`PowerCycle` as `ForceOff` then `On` where it lacks `PowerCycle`), poll `PowerState`
//! until it settles on the target (`Off` between two steps), all within `MOJO_POWER_TIMEOUT`,
//! and write the server's `power_state`. Each reset step is recorded in the checkpoint before
//! it is sent, so a job claimed again after its worker died never sends a step twice: it
//! carries on waiting for the state.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::bmc::with_bmc;
use super::fleet::{self, ServerOutcome, ServerWork};
use crate::ctx::Ctx;
use crate::db::jobs::Job;
use crate::db::{lifecycle, DbResult, Tx};
use crate::jobs::{JobContext, JobHandler, Outcome};
use crate::redfish::{self, PowerAction, RedfishError, Session};

/// Kind of the power job.
pub const KIND: &str = "power";

/// How often `PowerState` is read while waiting for it to settle.
const SETTLE_POLL: Duration = Duration::from_millis(500);

/// The power job handler.
#[derive(Default)]
pub struct PowerJob;

/// The parameters of a power job.
pub fn params(action: PowerAction) -> Value {
    json!({ "action": action.as_str() })
}

impl JobHandler for PowerJob {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, jc: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some(action) = jc
                .job
                .params
                .get("action")
                .and_then(Value::as_str)
                .and_then(PowerAction::parse)
            else {
                return Outcome::Failed("the job names no valid power action".into());
            };
            let ctx = &jc.ctx;
            fleet::run_servers(jc, ctx.config.bmc_concurrency, |w| async move {
                power_server(ctx, jc, action, w).await
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

/// How the BMC part ended.
enum Done {
    /// Nothing sent: the server already was in the target state.
    Already(String),
    /// Reset types sent, state settled.
    Settled(Vec<&'static str>, String),
    /// The job is no longer ours.
    Stopped,
}

async fn power_server(
    ctx: &Ctx,
    jc: &JobContext,
    action: PowerAction,
    w: ServerWork,
) -> ServerOutcome {
    let target = action.target_state();
    let sent_before = w.saved.get("sent").and_then(Value::as_u64).unwrap_or(0) as usize;
    let limit = ctx.config.power_timeout;
    let work = with_bmc(ctx, Some(w.job()), w.server, |session, t| {
        let w = &w;
        async move {
            let sys = redfish::find_system(
                &session,
                t.server.uuid.as_deref(),
                t.server.serial_number.as_deref(),
            )
            .await?;
            if sent_before == 0
                && !action.is_restart()
                && sys.power_state.as_deref() == Some(target)
            {
                return Ok(Done::Already(target.to_string()));
            }
            let steps = redfish::plan_reset(action, sys.allowed.as_deref()).ok_or_else(|| {
                RedfishError::Unsupported(format!(
                    "the BMC offers no reset type for {} (it allows {})",
                    action.as_str(),
                    sys.allowed.clone().unwrap_or_default().join(", ")
                ))
            })?;
            let mut state = String::new();
            for (i, step) in steps.iter().enumerate() {
                let want = if i + 1 == steps.len() { target } else { "Off" };
                if i >= sent_before {
                    if !w.save(json!({ "sent": i + 1 })).await {
                        return Ok(Done::Stopped);
                    }
                    redfish::reset(&session, &sys, step).await?;
                    tracing::info!(server = w.server, reset_type = step, "reset sent");
                }
                state = settle(&session, &sys.path, want).await?;
            }
            Ok(Done::Settled(steps, state))
        }
    });
    let outcome = match tokio::time::timeout(limit, work).await {
        Err(_) => {
            return fleet::failed(
                jc,
                w.server,
                format!(
                    "PowerState did not settle on {target} within MOJO_POWER_TIMEOUT ({} s)",
                    limit.as_secs()
                ),
            )
        }
        Ok(Err(e)) => return fleet::failed(jc, w.server, e.to_string()),
        Ok(Ok(done)) => done,
    };
    let (state, message) = match outcome {
        Done::Stopped => return ServerOutcome::Failed("the job stopped".into()),
        Done::Already(s) => (s.clone(), format!("already {s}")),
        Done::Settled(steps, s) => (s.clone(), format!("{} -> {s}", steps.join(" + "))),
    };
    if let Err(e) = lifecycle::set_power_state(&ctx.db, w.server, &state).await {
        return fleet::failed(jc, w.server, format!("database error: {e}"));
    }
    ServerOutcome::Succeeded(message)
}

/// Reads `PowerState` until it is `want`; returns it.
async fn settle(session: &Session, path: &str, want: &str) -> Result<String, RedfishError> {
    loop {
        if let Some(state) = redfish::power_state(session, path).await? {
            if state == want {
                return Ok(state);
            }
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}
