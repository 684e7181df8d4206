//! The `inventory` job: re-reads the whole inventory of a server's BMC as registration does
//! and writes it (the server and its processors, interfaces, storage and firmware, and any
//! other ComputerSystem of the same BMC) in one transaction.

use futures::future::BoxFuture;

use super::bmc::with_bmc;
use super::fleet::{self, ServerOutcome, ServerWork};
use crate::ctx::Ctx;
use crate::db::jobs::Job;
use crate::db::{DbResult, Tx};
use crate::discovery::register::record_inventory;
use crate::jobs::{JobContext, JobHandler, Outcome};
use crate::redfish;

/// Kind of the inventory refresh job.
pub const KIND: &str = "inventory";

/// The inventory refresh job handler.
#[derive(Default)]
pub struct InventoryJob;

impl JobHandler for InventoryJob {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, jc: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let ctx = &jc.ctx;
            fleet::run_servers(jc, ctx.config.bmc_concurrency, |w| async move {
                refresh_server(ctx, jc, w).await
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

async fn refresh_server(ctx: &Ctx, jc: &JobContext, w: ServerWork) -> ServerOutcome {
    let limit = ctx.config.register_timeout;
    let read = with_bmc(ctx, Some(w.job()), w.server, |session, t| async move {
        let inv = redfish::read_inventory(&session).await?;
        Ok((inv, t))
    });
    let (inv, t) = match tokio::time::timeout(limit, read).await {
        Err(_) => {
            return fleet::failed(
                jc,
                w.server,
                format!(
                    "the inventory was not read within MOJO_REGISTER_TIMEOUT ({} s)",
                    limit.as_secs()
                ),
            )
        }
        Ok(Err(e)) => return fleet::failed(jc, w.server, e.to_string()),
        Ok(Ok(read)) => read,
    };
    let db_err = |e: crate::db::DbError| format!("database error: {e}");
    let written = async {
        let mut tx = ctx.db.begin().await.map_err(db_err)?;
        // Another registered node's server (identity rules): said as it is, not as a storage error.
        record_inventory(&mut tx, &t.node, &inv)
            .await
            .map_err(|e| match e {
                crate::db::servers::UpsertError::Db(e) => db_err(e),
                other => other.to_string(),
            })?;
        tx.commit().await.map_err(db_err)
    };
    match written.await {
        Ok(()) => ServerOutcome::Succeeded(format!(
            "inventory read: {} system(s), {} firmware item(s)",
            inv.systems.len(),
            inv.firmwares.len()
        )),
        Err(e) => fleet::failed(jc, w.server, e),
    }
}
