//! Node registration: log in with a profile's credentials, read the inventory, write it in one
//! transaction, always log out. Runs as a task owned by `ctx.tasks` that the HTTP handler
//! awaits, so a client that disconnects does not cut it off halfway.

use std::time::Duration;

use crate::ctx::Ctx;
use crate::db::nodes::{self, Begin, Node};
use crate::db::servers::UpsertError;
use crate::db::{auth_profiles, DbError};
use crate::redfish::{self, BmcClient, BmcClientConfig, CaBundle, Inventory, RedfishError};

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
    /// The BMC's server is the server of another registered node (or a concurrent write
    /// recorded it first): `Node <id>: <cause>`; the node keeps its previous status.
    #[error("Node {0}: {1}")]
    Identity(i64, UpsertError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The task did not run to its end (shutdown).
    #[error("registration was interrupted")]
    Interrupted,
}

/// Writes the inventory of a registered node inside `tx` (one server per ComputerSystem);
/// returns the node's server, the first one. Registration and the inventory refresh job use it.
pub async fn record_inventory(
    tx: &mut crate::db::Tx,
    node: &Node,
    inv: &Inventory,
) -> Result<Option<i64>, UpsertError> {
    let mut first = None;
    for server in super::inventory_map::servers_of(inv) {
        let id = crate::db::servers::upsert_from_inventory(&mut *tx, node.id, &node.url, &server)
            .await?;
        first.get_or_insert(id);
    }
    Ok(first)
}

/// Registers a node with an auth profile, within `MOJO_REGISTER_TIMEOUT`.
pub async fn register_node(ctx: &Ctx, node_id: i64, profile: i64) -> Result<Node, RegisterError> {
    let timeout = ctx.config.register_timeout;
    // The stored deadline includes the time a logout gets after the work's deadline: past it the
    // process running the registration is certainly done with it (or dead), and the node is
    // repaired by `service::registration::repair_interrupted` on any replica.
    let deadline = crate::db::now()
        + chrono::Duration::from_std(timeout + redfish::LOGOUT_TIMEOUT)
            .unwrap_or(chrono::Duration::seconds(60));
    let node = match nodes::begin_registration(&ctx.db, node_id, deadline).await? {
        Begin::Started(n) => *n,
        Begin::Busy => return Err(RegisterError::Busy(node_id)),
        Begin::Missing => return Err(RegisterError::Missing),
    };
    let task = {
        let ctx = ctx.clone();
        ctx
            .tasks
            .clone()
            .spawn(async move {
                // On shutdown the attempt is dropped; an open session's drop guard still logs out.
                tokio::select! {
                    r = run(&ctx, node, profile, timeout, deadline) => r,
                    _ = ctx.shutdown.cancelled() => {
                        let _ = nodes::fail_registration(&ctx.db, node_id, "registration was interrupted by a shutdown").await;
                        Err(RegisterError::Interrupted)
                    }
                }
            })
    };
    match task.await {
        Ok(r) => r,
        Err(_) => {
            let _ =
                nodes::fail_registration(&ctx.db, node_id, "registration was interrupted").await;
            Err(RegisterError::Interrupted)
        }
    }
}

async fn run(
    ctx: &Ctx,
    node: Node,
    profile: i64,
    timeout: Duration,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<Node, RegisterError> {
    match attempt(ctx, &node, profile, timeout, until).await {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(RegisterError::Missing),
        Err(RegisterError::Bmc(u, cause)) => {
            tracing::info!(node = node.id, bmc = %u, cause = %cause, "registration failed");
            ctx.metrics.add(
                "mojo_bmc_errors_total",
                "BMC errors by operation.",
                &[("op", "register")],
                1,
            );
            nodes::fail_registration(&ctx.db, node.id, &cause).await?;
            Err(RegisterError::Bmc(u, cause))
        }
        Err(e) => {
            let _ = nodes::fail_registration(&ctx.db, node.id, &e.to_string()).await;
            Err(e)
        }
    }
}

async fn attempt(
    ctx: &Ctx,
    node: &Node,
    profile: i64,
    timeout: Duration,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Node>, RegisterError> {
    let bmc_err = |cause: String| RegisterError::Bmc(node.url.clone(), cause);
    let stored = auth_profiles::credentials(&ctx.db, profile).await?;
    let ids: Vec<i64> = stored.iter().map(|c| c.id).collect();
    let tries = unseal(ctx, stored).map_err(|e| bmc_err(e.to_string()))?;
    if tries.is_empty() {
        return Err(bmc_err(format!(
            "auth profile {profile} has no credentials"
        )));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let client =
        bmc_client(ctx, node, Some(deadline), None, until).map_err(|e| bmc_err(e.to_string()))?;
    // Logs in with the first accepted credential, reads everything, always logs out.
    let read = client
        .with_session(&tries, |session| async move {
            redfish::read_inventory(&session).await
        })
        .await;
    drop(tries);
    let (index, inventory) = match read {
        Ok((index, Ok(inv))) => (index, inv),
        Ok((_, Err(e))) | Err(e) => return Err(bmc_err(cause(&e, profile))),
    };
    let credential = ids.get(index).copied().unwrap_or_default();
    let mut tx = ctx.db.begin().await?;
    let server = match record_inventory(&mut tx, node, &inventory).await {
        Ok(server) => server,
        Err(UpsertError::Db(e)) => return Err(e.into()),
        Err(e) => return Err(RegisterError::Identity(node.id, e)),
    };
    nodes::complete_registration(&mut tx, node.id, server, profile, credential).await?;
    tx.commit().await?;
    Ok(nodes::get(&ctx.db, node.id).await?)
}

fn cause(e: &RedfishError, profile: i64) -> String {
    match e {
        RedfishError::NoCredentialAccepted => {
            format!("none of the credentials of auth profile {profile} was accepted")
        }
        RedfishError::DeadlineExceeded => {
            "registration did not finish within MOJO_REGISTER_TIMEOUT".into()
        }
        other => other.to_string(),
    }
}

/// A client for a registered node's BMC and the credentials to log in with, the one the BMC
/// accepted at registration first (later operations: power, refresh, firmware, deployment).
/// Its sessions are journalled with `job` (the job opening them, if one: a takeover of the
/// job deletes them) until `until` (when a live process is certainly done with them; at least
/// [`ACCESS_SESSION_SECS`] from now).
pub async fn node_access(
    ctx: &Ctx,
    node: &Node,
    job: Option<i64>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(BmcClient, Vec<(String, String)>), AccessError> {
    let bmc_err = |cause: AccessCause| AccessError {
        url: node.url.clone(),
        cause,
    };
    let profile = node
        .auth_profile
        .ok_or_else(|| bmc_err(AccessCause::NotRegistered))?;
    let mut stored = auth_profiles::credentials(&ctx.db, profile)
        .await
        .map_err(|e| bmc_err(e.into()))?;
    stored.sort_by_key(|c| (Some(c.id) != node.credential, c.id));
    let creds = unseal(ctx, stored).map_err(|e| bmc_err(e.into()))?;
    let least = crate::db::now() + chrono::Duration::seconds(ACCESS_SESSION_SECS);
    let until = until.map_or(least, |u| u.max(least));
    let client = bmc_client(ctx, node, None, job, until).map_err(|e| bmc_err(e.into()))?;
    Ok((client, creds))
}

/// Why [`node_access`] has no client or credentials: `BMC <url>: <cause>`.
#[derive(Debug, thiserror::Error)]
#[error("BMC {url}: {cause}")]
pub struct AccessError {
    /// The node's BMC URL.
    pub url: String,
    /// What is missing or failed.
    #[source]
    pub cause: AccessCause,
}

/// What [`AccessError`] ran into.
#[derive(Debug, thiserror::Error)]
pub enum AccessCause {
    /// The node has no auth profile.
    #[error("the node is not registered")]
    NotRegistered,
    /// Its credentials could not be read.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A stored credential does not open.
    #[error(transparent)]
    Unseal(#[from] UnsealError),
    /// No client for the BMC (its CA bundle, its URL).
    #[error(transparent)]
    Client(#[from] RedfishError),
}

/// A stored credential that does not open under the credential key.
#[derive(Debug, thiserror::Error)]
#[error("credential {id}: {source}")]
pub struct UnsealError {
    /// The credential.
    pub id: i64,
    /// Why it did not open.
    pub source: sealing::SealError,
}

/// The (username, password) pairs of stored credentials, in their order.
fn unseal(
    ctx: &Ctx,
    stored: Vec<auth_profiles::StoredCredential>,
) -> Result<Vec<(String, String)>, UnsealError> {
    stored
        .into_iter()
        .map(|c| {
            sealing::open(&ctx.credential_key, c.id, &c.secret)
                .map(|password| (c.username, password))
                .map_err(|source| UnsealError { id: c.id, source })
        })
        .collect()
}

/// How long a session opened through [`node_access`] stays journalled before any replica may
/// delete it as left behind (operations that take longer must pass their own journal).
pub const ACCESS_SESSION_SECS: i64 = 3600;

/// A client for a node's BMC with the server's BMC settings (pinned certificate, plain HTTP
/// allowance, CA bundle), tracked for shutdown, journalling its sessions (with the job that
/// opens them, if one) until `until`.
fn bmc_client(
    ctx: &Ctx,
    node: &Node,
    deadline: Option<tokio::time::Instant>,
    job: Option<i64>,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<BmcClient, RedfishError> {
    let mut config = BmcClientConfig::new(node.url.clone());
    config.journal = Some(crate::bmc_sessions::DbJournal::journal(
        ctx,
        node.cert_sha256.clone(),
        job,
        until,
    ));
    config.cert_sha256 = node.cert_sha256.clone();
    config.allow_http = ctx.config.allow_http_bmc;
    config.deadline = deadline;
    config.tracker = Some(ctx.tasks.clone());
    if let Some(path) = &ctx.config.bmc_ca_bundle {
        config.ca_bundle = Some(CaBundle::from_file(path)?);
    }
    BmcClient::new(config)
}
