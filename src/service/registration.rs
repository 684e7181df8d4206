//! Node registration as a request runs it: the node and the auth profile must exist, the node's
//! address must lie inside `MOJO_DISCOVERY_ALLOWED_NETWORKS` *now* (the setting may have
//! narrowed since the scan, or this replica may have another value), then the registration
//! itself ([`crate::discovery::register`]). Registrations whose deadline passed without an end
//! (the process died) are repaired before a node is read or changed here.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::ctx::Ctx;
use crate::db::nodes::{self, Node};
use crate::db::{auth_profiles, DbError};
use crate::discovery::register::{register_node, RegisterError};

/// Why a registration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// No such node.
    #[error("no such node")]
    MissingNode,
    /// No such auth profile.
    #[error("no auth profile {0}")]
    MissingProfile(i64),
    /// The node's address is outside the allowed networks.
    #[error("Node {node} ({ip}) is outside MOJO_DISCOVERY_ALLOWED_NETWORKS.")]
    NotAllowed {
        /// The node.
        node: i64,
        /// Its address.
        ip: String,
    },
    /// The registration itself failed.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Registers node `id` with auth profile `profile`.
pub async fn register(ctx: &Ctx, id: i64, profile: i64) -> Result<Node, RegistrationError> {
    repair_interrupted(ctx).await?;
    let node = nodes::get(&ctx.db, id)
        .await?
        .ok_or(RegistrationError::MissingNode)?;
    if auth_profiles::get(&ctx.db, profile).await?.is_none() {
        return Err(RegistrationError::MissingProfile(profile));
    }
    let allowed = node
        .ip_address
        .parse::<IpAddr>()
        .is_ok_and(|ip| ctx.config.discovery_allowed_networks.contains(&ip));
    if !allowed {
        return Err(RegistrationError::NotAllowed {
            node: id,
            ip: node.ip_address,
        });
    }
    match register_node(ctx, id, profile).await {
        Err(RegisterError::Missing) => Err(RegistrationError::MissingNode),
        other => Ok(other?),
    }
}

/// The text an interrupted registration leaves in the node's `last_error`.
pub const INTERRUPTED: &str =
    "registration was interrupted: its deadline passed before it finished (the process stopped)";

/// Gives every node whose registration deadline passed without an end its previous status back,
/// with `last_error` saying so. Idempotent and safe on every replica at once.
pub async fn repair_interrupted(ctx: &Ctx) -> Result<u64, DbError> {
    let n = nodes::expire_registrations(&ctx.db, INTERRUPTED).await?;
    if n > 0 {
        tracing::warn!(nodes = n, "interrupted registrations repaired");
    }
    Ok(n)
}

/// How often every replica repairs interrupted registrations.
const REPAIR_EVERY: Duration = Duration::from_secs(2);

/// Background work: repairs interrupted registrations at start-up and every
/// [`REPAIR_EVERY`] until shutdown (registered in `app::BACKGROUND`).
pub fn start_repair(ctx: &Ctx, _: &Arc<crate::jobs::Queue>) {
    let ctx = ctx.clone();
    ctx.tasks.clone().spawn(async move {
        let mut tick = tokio::time::interval(REPAIR_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(error) = repair_interrupted(&ctx).await {
                tracing::warn!(%error, "cannot repair interrupted registrations");
            }
        }
    });
}
