//! Node registration: log in with a profile's credentials, read the inventory, write it in one
//! transaction, always log out. Runs as a task owned by `state.tasks` that the HTTP handler
//! awaits, so a client that disconnects does not cut it off halfway.

use std::time::Duration;

use crate::db::nodes::{self, Begin, Node};
use crate::db::{auth_profiles, DbError};
use crate::http::AppState;

use super::bmc::{self, Attempt, Session};
use super::sealing;

/// Why a registration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// No such node.
    #[error("no such node")]
    Missing,
    /// Another registration of the node runs.
    #[error("Node {0} is being registered.")]
    Busy(i64),
    /// The BMC part failed: `BMC <url>: <cause>`; the node keeps its previous status.
    #[error("BMC {0}: {1}")]
    Bmc(String, String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The task did not run to its end (shutdown).
    #[error("registration was interrupted")]
    Interrupted,
}

/// What registration read from the BMC.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Paths of the ComputerSystems.
    pub systems: Vec<String>,
}

/// Reads what registration records.
async fn read_inventory(session: &Session) -> Result<Inventory, String> {
    let systems = bmc::members(session, "/redfish/v1/Systems").await?;
    for s in &systems {
        session.get(s).await?;
    }
    Ok(Inventory { systems })
}

/// Writes the inventory of a registered node inside `tx`; returns the node's server.
async fn record_inventory(
    _tx: &mut crate::db::Tx,
    _node: &Node,
    _inv: &Inventory,
) -> Result<Option<i64>, DbError> {
    Ok(None)
}

/// Registers a node with an auth profile, within `MOJO_REGISTER_TIMEOUT`.
pub async fn register_node(
    state: &AppState,
    node_id: i64,
    profile: i64,
) -> Result<Node, RegisterError> {
    let timeout = state.config.register_timeout;
    let deadline = crate::db::now()
        + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::seconds(60));
    let node = match nodes::begin_registration(&state.db, node_id, deadline).await? {
        Begin::Started(n) => *n,
        Begin::Busy => return Err(RegisterError::Busy(node_id)),
        Begin::Missing => return Err(RegisterError::Missing),
    };
    let task = {
        let state = state.clone();
        let node = node.clone();
        state
            .tasks
            .clone()
            .spawn(async move { run(&state, node, profile, timeout).await })
    };
    match task.await {
        Ok(r) => r,
        Err(_) => {
            let _ =
                nodes::fail_registration(&state.db, node_id, "registration was interrupted").await;
            Err(RegisterError::Interrupted)
        }
    }
}

async fn run(
    state: &AppState,
    node: Node,
    profile: i64,
    timeout: Duration,
) -> Result<Node, RegisterError> {
    let url = node.url.clone();
    let outcome = attempt(state, &node, profile, timeout).await;
    match outcome {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(RegisterError::Missing),
        Err(RegisterError::Bmc(u, cause)) => {
            tracing::info!(node = node.id, bmc = %u, cause = %cause, "registration failed");
            state
                .metrics
                .add("mojo_bmc_errors_total", "op=\"register\"", 1);
            nodes::fail_registration(&state.db, node.id, &cause).await?;
            Err(RegisterError::Bmc(u, cause))
        }
        Err(e) => {
            let _ = nodes::fail_registration(&state.db, node.id, &e.to_string()).await;
            let _ = url;
            Err(e)
        }
    }
}

async fn attempt(
    state: &AppState,
    node: &Node,
    profile: i64,
    timeout: Duration,
) -> Result<Option<Node>, RegisterError> {
    let bmc_err = |cause: String| RegisterError::Bmc(node.url.clone(), cause);
    let mut tries: Vec<Attempt> = Vec::new();
    for c in auth_profiles::credentials(&state.db, profile).await? {
        let password = sealing::open(&state.credential_key, c.id, &c.secret)
            .map_err(|e| bmc_err(format!("credential {}: {e}", c.id)))?;
        tries.push((c.id, c.username, password));
    }
    if tries.is_empty() {
        return Err(bmc_err(format!(
            "auth profile {profile} has no credentials"
        )));
    }
    let client = bmc::client_for(
        &node.url,
        node.cert_sha256.as_deref(),
        state.config.allow_http_bmc,
    )
    .map_err(bmc_err)?;
    let started = tokio::time::Instant::now();
    let session = match tokio::time::timeout(timeout, bmc::login(&client, &node.url, &tries)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(cause)) => return Err(bmc_err(cause)),
        Err(_) => return Err(bmc_err(format!("no answer within {}s", timeout.as_secs()))),
    };
    drop(tries);
    let remaining = timeout.saturating_sub(started.elapsed());
    // The inventory read is bounded by the deadline; the logout below always runs.
    let inventory = tokio::time::timeout(remaining, read_inventory(&session)).await;
    let credential = session.credential;
    session.logout().await;
    let inventory = match inventory {
        Ok(Ok(inv)) => inv,
        Ok(Err(cause)) => return Err(bmc_err(cause)),
        Err(_) => {
            return Err(bmc_err(format!(
                "registration did not finish within {}s",
                timeout.as_secs()
            )))
        }
    };
    let mut tx = state.db.begin().await?;
    let server = record_inventory(&mut tx, node, &inventory).await?;
    nodes::complete_registration(&mut tx, node.id, server, profile, credential).await?;
    tx.commit().await?;
    Ok(nodes::get(&state.db, node.id).await?)
}
