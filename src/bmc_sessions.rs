//! The session journal: every Redfish session this server opens is recorded (BMC, session URL,
//! token sealed under the credential key, the certificate it was opened against) before its
//! token is used, and forgotten once its DELETE succeeded. A process killed in between leaves
//! the record; any replica deletes the session on the BMC and then the record:
//!
//! - once the record's `expires_at` passed (the time by which the process that opened it would
//!   have logged out: a registration's deadline plus the logout time), at start-up and every
//!   [`REAP_EVERY`] after ([`start`], in `app::BACKGROUND`);
//! - when a job's lease is taken over, for the sessions that job opened ([`reap_job`]).
//!
//! Between the database (`db::bmc_sessions`) and the BMCs (`redfish`), which do not know each
//! other: `redfish` calls the [`crate::redfish::SessionJournal`] implemented here.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::ctx::Ctx;
use crate::db::bmc_sessions::{self, JournalRow, NewSession};
use crate::db::DbError;
use crate::redfish::{BmcClient, BmcClientConfig, CaBundle, Journal, JournalError, SessionJournal};

/// How often every replica looks for expired records.
pub const REAP_EVERY: Duration = Duration::from_secs(3);
/// Records handled per pass.
const REAP_BATCH: i64 = 100;

/// Associated data of a sealed token: the session it belongs to.
fn aad(session_url: &str) -> Vec<u8> {
    format!("bmc-session:{session_url}").into_bytes()
}

/// The journal of sessions opened by one operation.
pub struct DbJournal {
    ctx: Ctx,
    cert_sha256: Option<String>,
    job: Option<i64>,
    expires_at: DateTime<Utc>,
}

impl DbJournal {
    /// A journal for sessions opened against a BMC whose certificate is `cert_sha256`, by job
    /// `job` (if a job), that the operation is certainly done with by `expires_at`.
    pub fn journal(
        ctx: &Ctx,
        cert_sha256: Option<String>,
        job: Option<i64>,
        expires_at: DateTime<Utc>,
    ) -> Journal {
        Journal(Arc::new(DbJournal {
            ctx: ctx.clone(),
            cert_sha256,
            job,
            expires_at,
        }))
    }
}

impl SessionJournal for DbJournal {
    fn opened<'a>(
        &'a self,
        bmc: &'a str,
        session_url: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            let sealed = crate::keys::seal(
                &self.ctx.credential_key,
                &aad(session_url),
                token.as_bytes(),
            )
            .ok_or_else(|| JournalError("sealing failed".into()))?;
            bmc_sessions::insert(
                &self.ctx.db,
                &NewSession {
                    bmc_url: bmc,
                    session_url,
                    token: sealed,
                    cert_sha256: self.cert_sha256.as_deref(),
                    job: self.job,
                    expires_at: self.expires_at,
                },
            )
            .await
            .map_err(|e| JournalError(e.to_string()))
        })
    }

    fn closed<'a>(&'a self, session_url: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(error) = bmc_sessions::delete_by_url(&self.ctx.db, session_url).await {
                tracing::warn!(%error, "cannot forget a deleted BMC session; it is deleted again later");
            }
        })
    }
}

/// Deletes one leftover session on its BMC, then its record. A BMC that cannot be reached
/// keeps the record for the next pass; a token that does not open (the credential key was
/// rotated) cannot be used and the record is dropped.
async fn reap(ctx: &Ctx, row: &JournalRow) -> Result<bool, DbError> {
    let Some(token) = crate::keys::open(&ctx.credential_key, &aad(&row.session_url), &row.token)
        .and_then(|t| String::from_utf8(t).ok())
    else {
        tracing::warn!(bmc = %row.bmc_url, "journalled BMC session token does not open; record dropped");
        bmc_sessions::delete(&ctx.db, row.id).await?;
        return Ok(false);
    };
    let mut config = BmcClientConfig::new(row.bmc_url.clone());
    config.cert_sha256 = row.cert_sha256.clone();
    config.allow_http = ctx.config.allow_http_bmc;
    if let Some(path) = &ctx.config.bmc_ca_bundle {
        config.ca_bundle = CaBundle::from_file(path).ok();
    }
    let deleted = match BmcClient::new(config) {
        Ok(client) => {
            client
                .delete_leftover_session(&row.session_url, &token)
                .await
        }
        Err(e) => Err(e),
    };
    match deleted {
        Ok(()) => {
            bmc_sessions::delete(&ctx.db, row.id).await?;
            tracing::info!(bmc = %row.bmc_url, job = row.job, "leftover BMC session deleted");
            Ok(true)
        }
        Err(error) => {
            tracing::warn!(bmc = %row.bmc_url, %error, "cannot delete a leftover BMC session yet");
            Ok(false)
        }
    }
}

/// Deletes the sessions whose records expired; returns how many were deleted on their BMC.
pub async fn reap_expired(ctx: &Ctx) -> Result<usize, DbError> {
    let mut n = 0;
    for row in bmc_sessions::expired(&ctx.db, REAP_BATCH).await? {
        if reap(ctx, &row).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes the sessions job `job` opened (its lease was taken over: the worker that held it is
/// gone or cut off, and the new attempt opens its own).
pub async fn reap_job(ctx: &Ctx, job: i64) -> Result<usize, DbError> {
    let mut n = 0;
    for row in bmc_sessions::of_job(&ctx.db, job).await? {
        if reap(ctx, &row).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Re-seals every journalled token under `new` inside a key rotation's transaction; a token
/// that does not open under `old` is dropped (it could not be used anyway). Returns how many
/// were re-sealed.
pub async fn reseal(
    tx: &mut crate::db::Tx,
    old: &crate::keys::CredentialKey,
    new: &crate::keys::CredentialKey,
) -> Result<usize, DbError> {
    let mut n = 0;
    for (id, url, token) in bmc_sessions::all_tokens(tx).await? {
        let resealed = crate::keys::open(old, &aad(&url), &token)
            .and_then(|plain| crate::keys::seal(new, &aad(&url), &plain));
        n += usize::from(resealed.is_some());
        bmc_sessions::set_token(tx, id, resealed).await?;
    }
    Ok(n)
}

/// Background work: reaps expired records at start-up and every [`REAP_EVERY`].
pub fn start(ctx: &Ctx) {
    let ctx = ctx.clone();
    ctx.tasks.clone().spawn(async move {
        let mut tick = tokio::time::interval(REAP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(error) = reap_expired(&ctx).await {
                tracing::warn!(%error, "cannot reap leftover BMC sessions");
            }
        }
    });
}
