//! The audit trail: every successful write through the API is recorded by the web edge through
//! [`record`]; [`start_pruning`] drops entries older than `MOJO_AUDIT_RETENTION` (and expired
//! login-throttle records) once at start-up and every hour.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::ctx::Ctx;
use crate::db::audit::{self, AuditWrite};
use crate::db::{now, Db};
use crate::jobs::Queue;

/// How often old entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Records one write; a storage failure is logged, never turned into a failed request (the
/// write itself is already committed).
pub async fn record(db: &Db, entry: &AuditWrite) {
    if let Err(e) = audit::insert(db, entry).await {
        tracing::warn!(error = %e, path = ?entry.path, "cannot record an audit entry");
    }
}

/// The login throttle's windows, from the configuration.
pub fn login_rules(config: &Config) -> super::logins::LoginRules {
    super::logins::LoginRules {
        per_client: config.login_throttle,
        per_user: config.login_throttle_user,
    }
}

async fn prune_once(ctx: &Ctx) {
    let retention = chrono::Duration::from_std(ctx.config.audit_retention)
        .unwrap_or(chrono::Duration::days(90));
    match audit::prune(&ctx.db, now() - retention).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(entries = n, "pruned old audit entries"),
        Err(e) => tracing::warn!(error = %e, "cannot prune the audit log"),
    }
    if let Err(e) = super::logins::prune(&ctx.db, login_rules(&ctx.config)).await {
        tracing::warn!(error = %e, "cannot prune login attempts");
    }
}

/// Background work: prunes at start-up, then every hour, until shutdown.
pub fn start_pruning(ctx: &Ctx, _: &Arc<Queue>) {
    let ctx = ctx.clone();
    ctx.tasks.clone().spawn(async move {
        loop {
            prune_once(&ctx).await;
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
            }
        }
    });
}
