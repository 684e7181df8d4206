//! Zero-touch onboarding: after a scan of a range with `auto_register` and an `auth_profile`,
//! every node of the range that is not registered and was not tried with the profile's current
//! credentials yet is registered as `POST /api/node/{id}/register/` would, at most
//! `MOJO_BMC_CONCURRENCY` at once; the servers join the range's `resource_pool` when it has one.
//!
//! Lockout safety: each node is marked with the (profile, credentials version) it is tried
//! with before the attempt, and a node so marked is not tried again until the range's profile
//! changes or that profile's credentials do (the version is bumped by the database on every
//! credential added, changed or removed). A registration tries every credential once.

use futures::StreamExt;
use serde_json::{json, Value};

use super::register::{register_node, RegisterError};
use crate::db::{auth_profiles, nodes, pools, scan_ranges, DbResult};
use crate::jobs::JobContext;

/// What onboarding did after one scan of one range.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Nodes registered.
    pub registered: u64,
    /// Nodes whose registration failed (refused credentials, unreachable BMC, ...).
    pub registration_failed: u64,
}

impl Counts {
    /// Adds another range's counts.
    pub fn add(&mut self, other: Counts) {
        self.registered += other.registered;
        self.registration_failed += other.registration_failed;
    }

    /// `progress` with these counts added.
    pub fn into_progress(self, mut progress: Value) -> Value {
        if let Value::Object(m) = &mut progress {
            m.insert("registered".into(), json!(self.registered));
            m.insert(
                "registration_failed".into(),
                json!(self.registration_failed),
            );
        }
        progress
    }
}

enum Tried {
    Registered,
    Failed,
    Skipped,
}

/// Onboards what the scan of `range` found (nodes in `skip` did not answer this scan). None
/// when the range does not onboard (no `auto_register`, no `auth_profile`, or deleted).
pub async fn after_range_scan(
    job: &JobContext,
    range: i64,
    skip: &[i64],
) -> DbResult<Option<Counts>> {
    let ctx = &job.ctx;
    // Read again: the settings may have changed while the range was scanned.
    let Some(range) = scan_ranges::get(&ctx.db, range).await? else {
        return Ok(None);
    };
    let (true, Some(profile)) = (range.auto_register, range.auth_profile) else {
        return Ok(None);
    };
    let Some(version) = auth_profiles::credentials_version(&ctx.db, profile).await? else {
        return Ok(None);
    };
    let candidates =
        nodes::onboarding_candidates(&ctx.db, range.id, profile, version, skip).await?;
    let pool = range.resource_pool;
    let mut counts = Counts::default();
    let attempts = futures::stream::iter(candidates)
        .map(|node| async move { onboard(job, node, profile, version, pool).await })
        .buffer_unordered(ctx.config.bmc_concurrency.max(1));
    futures::pin_mut!(attempts);
    loop {
        let next = tokio::select! {
            _ = job.cancel.cancelled() => break,
            n = attempts.next() => n,
        };
        match next {
            None => break,
            Some(Ok(Tried::Registered)) => counts.registered += 1,
            Some(Ok(Tried::Failed)) => counts.registration_failed += 1,
            Some(Ok(Tried::Skipped)) => {}
            Some(Err(e)) => return Err(e),
        }
    }
    tracing::info!(
        job = job.job.id,
        scan_range = range.id,
        auth_profile = profile,
        registered = counts.registered,
        registration_failed = counts.registration_failed,
        "range onboarded"
    );
    Ok(Some(counts))
}

/// One node: claim it for (profile, version), register it, put its servers in `pool`.
async fn onboard(
    job: &JobContext,
    node: i64,
    profile: i64,
    version: i64,
    pool: Option<i64>,
) -> DbResult<Tried> {
    let ctx = &job.ctx;
    if job.cancel.is_cancelled()
        || !nodes::claim_for_onboarding(&ctx.db, node, profile, version).await?
    {
        return Ok(Tried::Skipped);
    }
    match register_node(ctx, node, profile).await {
        Ok(_) => {}
        // Registered by hand meanwhile, or deleted: nothing to count.
        Err(RegisterError::Busy(_) | RegisterError::Missing | RegisterError::Interrupted) => {
            return Ok(Tried::Skipped)
        }
        // The cause is on the node's `last_error`.
        Err(RegisterError::Bmc(..) | RegisterError::Identity(..)) => return Ok(Tried::Failed),
        Err(RegisterError::Db(e)) => {
            tracing::warn!(node, error = %e, "onboarding: registration failed in storage");
            return Ok(Tried::Failed);
        }
    }
    if let Some(pool) = pool {
        join_pool(ctx, node, pool).await?;
    }
    Ok(Tried::Registered)
}

/// Puts the servers of `node` into `pool` with the rules of `assign_servers`: a server in
/// another pool stays there, and the node's `last_error` says so.
async fn join_pool(ctx: &crate::ctx::Ctx, node: i64, pool: i64) -> DbResult<()> {
    let servers = nodes::servers_of(&ctx.db, node).await?;
    if servers.is_empty() {
        return Ok(());
    }
    let mut tx = ctx.db.begin().await?;
    let moved = match pools::assign(&mut tx, "servers", &servers, pool).await {
        Ok(n) => n,
        Err(e) if e.is_foreign_key_violation() => {
            drop(tx);
            return nodes::set_last_error(
                &ctx.db,
                node,
                &format!("Pool {pool} no longer exists; the servers stay unassigned."),
            )
            .await;
        }
        Err(e) => return Err(e),
    };
    let elsewhere: Vec<String> = if usize::try_from(moved).unwrap_or(0) == servers.len() {
        Vec::new()
    } else {
        pools::members(&mut tx, "servers", &servers, false, None)
            .await?
            .into_iter()
            .filter_map(|m| match m.pool {
                Some(p) if p != pool => Some(format!(
                    "Server {} ({}) is already in pool {} ({}).",
                    m.id,
                    m.name,
                    p,
                    m.pool_name.as_deref().unwrap_or("")
                )),
                _ => None,
            })
            .collect()
    };
    tx.commit().await?;
    if !elsewhere.is_empty() {
        nodes::set_last_error(&ctx.db, node, &elsewhere.join(" ")).await?;
    }
    tracing::info!(
        node,
        pool,
        servers = moved,
        "onboarded servers joined their pool"
    );
    Ok(())
}
