//! Discovered nodes: deleting one only when nothing depends on it.

use crate::ctx::Ctx;
use crate::db::{nodes, servers, DbError, NodeStatus};

/// Why a node was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// No such node.
    #[error("no such node")]
    Missing,
    /// Registration created a server from it (named when it still exists).
    #[error("node {node} has server {server}")]
    HasServer {
        /// The node.
        node: i64,
        /// Its server.
        server: i64,
        /// The server's name.
        name: Option<String>,
    },
    /// A registration is under way.
    #[error("node {0} is being registered")]
    Registering(i64),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Deletes node `id` unless it has a server or is being registered: one guarded statement, and
/// only when it deleted nothing is the node read to say why.
pub async fn delete(ctx: &Ctx, id: i64) -> Result<(), DeleteError> {
    if nodes::delete_unused(&ctx.db, id).await? {
        return Ok(());
    }
    let n = nodes::get(&ctx.db, id).await?.ok_or(DeleteError::Missing)?;
    if let Some(server) = n.server {
        let name = servers::get(&ctx.db, server).await?.map(|s| s.name);
        return Err(DeleteError::HasServer {
            node: id,
            server,
            name,
        });
    }
    if n.status == NodeStatus::Registering {
        return Err(DeleteError::Registering(id));
    }
    // Changed between the statement and the read (a registration just ended): once more.
    if nodes::delete_unused(&ctx.db, id).await? {
        return Ok(());
    }
    Err(DeleteError::Registering(id))
}

/// Every few seconds until shutdown, ends the registrations a dead process left behind
/// ([`crate::db::nodes::expire_registrations`]), so no node stays `registering`.
pub async fn run_registration_sweeper(ctx: crate::ctx::Ctx) {
    while !ctx.shutdown.is_cancelled() {
        match crate::db::nodes::expire_registrations(&ctx.db).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                nodes = n,
                "ended registrations interrupted by a stopped process"
            ),
            Err(e) => tracing::warn!(error = %e, "registration sweeper: database unavailable"),
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    }
}
