//! Passwords: argon2id hashes, made and checked off the async threads (deliberately slow).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

use crate::db::{users, Db, DbResult};

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// An argon2id hash of a password (blocking; call from a blocking task).
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// An argon2id hash of a password, computed on a blocking thread.
pub async fn hash(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| HashError(format!("hashing task failed: {e}")))?
}

fn verify_blocking(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The id of the active user with these credentials. Unknown users cost the same hashing
/// work as known ones, so response time does not reveal which names exist.
pub async fn check(db: &Db, username: &str, password: &str) -> DbResult<Option<i64>> {
    let (id, hash, active) =
        users::login_row(db, username)
            .await?
            .unwrap_or((0, String::new(), false));
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || {
        if hash.is_empty() {
            // Burn the same work for unknown users.
            let _ = hash_blocking(&password);
            false
        } else {
            verify_blocking(&hash, &password)
        }
    })
    .await
    .unwrap_or(false);
    Ok((ok && active).then_some(id))
}
