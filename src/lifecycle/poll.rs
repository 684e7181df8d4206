//! The power poll: keeps every registered server's `power_state` current without anyone
//! asking. Every `MOJO_POWER_POLL_SECS` (0: off) one round reads the `PowerState` of every
//! server whose node is registered: one Redfish session per BMC (always deleted, or Basic
//! auth where the BMC has no sessions), the BMCs' starts spread evenly over most of the
//! interval, at most `MOJO_BMC_CONCURRENCY` at once.
//!
//! With several replicas on one database, each round is done by one process: the one that
//! moves the round's `due_at` forward in `periodic_rounds` (a conditional UPDATE, so exactly one
//! wins). A round that runs longer than the interval may overlap the next one; the reads are
//! harmless when doubled.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::bmc::with_node;
use crate::ctx::Ctx;
use crate::db::lifecycle::{self, PolledServer};
use crate::db::{nodes, now};
use crate::jobs::Queue;
use crate::redfish;

/// Name of the poll's round in `periodic_rounds`.
pub const ROUND: &str = "power_poll";

/// Part of the interval over which a round's BMCs are spread (the rest is slack for the last
/// ones to answer before the next round).
const SPREAD: f64 = 0.8;

/// Starts the poll into `ctx.tasks` (a [`crate::app::StartFn`]); nothing when it is off.
pub fn start(ctx: &Ctx, _queue: &Arc<Queue>) {
    if ctx.config.power_poll_secs == 0 {
        return;
    }
    let ctx = ctx.clone();
    ctx.tasks.clone().spawn(async move { run(ctx).await });
}

async fn run(ctx: Ctx) {
    let interval = Duration::from_secs(ctx.config.power_poll_secs);
    let owner = format!("{}-power-poll", crate::jobs::owner_name(0));
    // How often a process checks whether the round is due (another replica may have taken it).
    let check = interval.min(Duration::from_secs(10));
    while !ctx.shutdown.is_cancelled() {
        let next =
            now() + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::seconds(300));
        match lifecycle::claim_round(&ctx.db, ROUND, &owner, next).await {
            Ok(true) => {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    _ = round(&ctx, interval) => {}
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "power poll cannot claim its round"),
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(check) => {}
        }
    }
}

/// One round over every registered server; returns how many servers were read.
pub async fn round(ctx: &Ctx, interval: Duration) -> usize {
    let servers = match lifecycle::polled_servers(&ctx.db).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "power poll cannot list servers");
            return 0;
        }
    };
    let mut by_node: BTreeMap<i64, Vec<PolledServer>> = BTreeMap::new();
    for s in servers {
        by_node.entry(s.node).or_default().push(s);
    }
    let count = by_node.len().max(1) as f64;
    let started = tokio::time::Instant::now();
    let spread = interval.mul_f64(SPREAD);
    let reads = futures::stream::iter(by_node.into_iter().enumerate())
        .map(|(i, (node, servers))| async move {
            tokio::time::sleep_until(started + spread.mul_f64(i as f64 / count)).await;
            poll_node(ctx, node, &servers).await
        })
        .buffer_unordered(ctx.config.bmc_concurrency.max(1));
    let read: usize = reads.fold(0, |n, r| async move { n + r }).await;
    tracing::debug!(servers = read, "power poll round done");
    read
}

/// Reads the `PowerState` of a node's servers in one session; returns how many were written.
async fn poll_node(ctx: &Ctx, node_id: i64, servers: &[PolledServer]) -> usize {
    let node = match nodes::get(&ctx.db, node_id).await {
        Ok(Some(n)) => n,
        Ok(None) => return 0,
        Err(e) => {
            tracing::warn!(node = node_id, error = %e, "power poll cannot read the node");
            return 0;
        }
    };
    let read = with_node(ctx, None, &node, |session| async move {
        redfish::systems(&session).await
    });
    let systems = match tokio::time::timeout(ctx.config.register_timeout, read).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(node = node_id, error = %e, "power poll: BMC failed");
            return 0;
        }
        Err(_) => {
            tracing::info!(node = node_id, "power poll: BMC did not answer in time");
            return 0;
        }
    };
    let mut written = 0;
    for s in servers {
        let Some(state) =
            redfish::pick_system(&systems, s.uuid.as_deref(), s.serial_number.as_deref())
                .and_then(|sys| sys.power_state.clone())
        else {
            continue;
        };
        match lifecycle::set_power_state(&ctx.db, s.id, &state).await {
            Ok(()) => written += 1,
            Err(e) => tracing::warn!(server = s.id, error = %e, "power poll cannot write"),
        }
    }
    written
}
