//! A BMC session for lifecycle work on one server (or one node): the node's pinned
//! certificate and remembered credential (the one it accepted at registration first), a
//! Redfish session (or Basic auth where the BMC has none), and the session deleted afterwards
//! on every path: after the work, when it fails, and when its future is dropped (a cancelled
//! or stopped job; the session's drop guard deletes it in the background, tracked by
//! `ctx.tasks` so shutdown waits for it).
//!
//! Sessions opened for a job are journalled with its id: when the job is taken over (its
//! worker's process died), the new attempt deletes them at the BMC before it runs
//! (`crate::bmc_sessions::reap_job`), instead of leaving them to the journal's expiry.

use std::future::Future;

use crate::ctx::Ctx;
use crate::db::nodes::{self, Node};
use crate::db::servers::{self, Server};
use crate::db::{DbError, NodeStatus};
use crate::discovery::register::{node_access, AccessError};
use crate::redfish::{RedfishError, Session};

/// Why the work did not run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum BmcError {
    /// The server is gone.
    #[error("server {0} no longer exists")]
    NoServer(i64),
    /// The server has no registered node (BMC) to talk to.
    #[error("server {0} has no registered BMC")]
    NotRegistered(i64),
    /// No client or credentials for the BMC (`BMC <url>: <cause>`).
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The BMC failed (`BMC <url>: <cause>`).
    #[error("BMC {0}: {1}")]
    Redfish(String, RedfishError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The server being worked on and its node.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server row.
    pub server: Server,
    /// Its BMC endpoint.
    pub node: Node,
}

/// Loads a server and its registered node.
pub async fn target(ctx: &Ctx, server_id: i64) -> Result<Target, BmcError> {
    let server = servers::get(&ctx.db, server_id)
        .await?
        .ok_or(BmcError::NoServer(server_id))?;
    let node_id = server.node.ok_or(BmcError::NotRegistered(server_id))?;
    let node = nodes::get(&ctx.db, node_id)
        .await?
        .filter(|n| n.auth_profile.is_some() && n.status != NodeStatus::Discovered)
        .ok_or(BmcError::NotRegistered(server_id))?;
    Ok(Target { server, node })
}

/// How long a journalled job session may stay open before any replica deletes it as left
/// behind: the longest a lifecycle step can hold one (a firmware update within
/// `MOJO_FIRMWARE_TIMEOUT`), with a margin.
fn journal_until(ctx: &Ctx) -> chrono::DateTime<chrono::Utc> {
    let hold = chrono::Duration::from_std(ctx.config.firmware_timeout)
        .unwrap_or(chrono::Duration::hours(2));
    crate::db::now() + hold + chrono::Duration::minutes(5)
}

/// Runs `work` with a session on `node`'s BMC and deletes the session afterwards; the session
/// is journalled with `job` when a job opens it.
pub async fn with_node<T, F, Fut>(
    ctx: &Ctx,
    job: Option<i64>,
    node: &Node,
    work: F,
) -> Result<T, BmcError>
where
    F: FnOnce(Session) -> Fut,
    Fut: Future<Output = Result<T, RedfishError>>,
{
    let until = job.map(|_| journal_until(ctx));
    let (client, creds) = node_access(ctx, node, job, until).await?;
    let url = node.url.clone();
    match client.with_session(&creds, work).await {
        Ok((_, Ok(v))) => Ok(v),
        Ok((_, Err(e))) | Err(e) => Err(BmcError::Redfish(url, e)),
    }
}

/// Runs `work` with a session on the BMC of server `server_id` (and the server's row and node
/// as read before), deleting the session afterwards; journalled with `job` like
/// [`with_node`].
pub async fn with_bmc<T, F, Fut>(
    ctx: &Ctx,
    job: Option<i64>,
    server_id: i64,
    work: F,
) -> Result<T, BmcError>
where
    F: FnOnce(Session, Target) -> Fut,
    Fut: Future<Output = Result<T, RedfishError>>,
{
    let t = target(ctx, server_id).await?;
    let node = t.node.clone();
    with_node(ctx, job, &node, move |session| work(session, t)).await
}
