//! Logins: the throttle around the password check.
//!
//! Each attempt is counted *before* its password is checked, so parallel attempts cannot
//! all pass the limit while the slow checks run. Two windows apply: per (client address,
//! user name) (`MOJO_LOGIN_THROTTLE`) and per user name across every address
//! (`MOJO_LOGIN_THROTTLE_USER`). Attempts live in the database (`login_attempts`), so replicas
//! on one PostgreSQL share them. A successful login (or one refused before its password was
//! checked) forgets its own attempt; failed ones stay until their window passes. The user
//! name window lets an attacker delay one user's logins, never lock the account: the limit
//! lifts by itself when the window passes.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::passwords::{self, HashError};
use crate::config::Throttle;
use crate::db::{login_attempts, now, Db, DbError};

/// Why a login gave no user.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Too many attempts: retry after this many seconds.
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// No active user with these credentials.
    #[error("no active account with these credentials")]
    Invalid,
    /// Password checking is saturated: retry after this many seconds.
    #[error("password checks busy")]
    Busy(u64),
    /// Hashing failed.
    #[error("{0}")]
    Hash(String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The two throttle windows.
#[derive(Debug, Clone, Copy)]
pub struct LoginRules {
    /// Per (client address, user name).
    pub per_client: Throttle,
    /// Per user name, across addresses.
    pub per_user: Throttle,
}

fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Checks a login under the throttle; the id of the user on success.
pub async fn login(
    db: &Db,
    rules: LoginRules,
    client: IpAddr,
    username: &str,
    password: &str,
) -> Result<i64, LoginError> {
    let client_text = client.to_string();
    let windows = [
        (
            key(&[b"client", client_text.as_bytes(), username.as_bytes()]),
            rules.per_client,
        ),
        (key(&[b"user", username.as_bytes()]), rules.per_user),
    ];
    let mut recorded = Vec::new();
    let mut wait: Option<u64> = None;
    let t = now();
    for (key, rule) in windows.iter().filter(|(_, r)| r.count > 0) {
        let per = chrono::Duration::from_std(rule.per).unwrap_or(chrono::Duration::days(1));
        let (id, n, oldest) = login_attempts::record(db, key, t - per).await?;
        recorded.push(id);
        if n > i64::from(rule.count) {
            let left = oldest
                .map(|o| (o + per - t).num_milliseconds())
                .unwrap_or(1000);
            let secs = u64::try_from((left + 999) / 1000).unwrap_or(1).max(1);
            wait = Some(wait.map_or(secs, |w| w.max(secs)));
        }
    }
    if let Some(secs) = wait {
        login_attempts::forget(db, &recorded).await?;
        tracing::info!(username, client = %client, "login throttled");
        return Err(LoginError::Throttled(secs));
    }
    match passwords::check(db, username, password).await {
        Ok(Some(id)) => {
            login_attempts::forget(db, &recorded).await?;
            Ok(id)
        }
        Ok(None) => {
            tracing::info!(username, client = %client, "login failed");
            Err(LoginError::Invalid)
        }
        Err(e) => {
            login_attempts::forget(db, &recorded).await?;
            Err(match e {
                HashError::Busy => LoginError::Busy(passwords::BUSY_RETRY_AFTER),
                HashError::Failed(m) => LoginError::Hash(m),
                HashError::Db(e) => LoginError::Db(e),
            })
        }
    }
}

/// Drops throttle records older than the longest window.
pub async fn prune(db: &Db, rules: LoginRules) -> Result<u64, DbError> {
    let longest = rules.per_client.per.max(rules.per_user.per);
    let longest = chrono::Duration::from_std(longest).unwrap_or(chrono::Duration::days(1));
    login_attempts::prune(db, now() - longest).await
}
