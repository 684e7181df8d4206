//! Sealing of stored BMC passwords: AES-256-GCM under the installation's credential key, a
//! random 96-bit nonce per seal, and the credential row id as associated data (so a ciphertext
//! copied onto another row does not open).

use crate::keys::CredentialKey;

/// Sealing failed or a ciphertext did not open (wrong key, wrong row, tampered).
#[derive(Debug, thiserror::Error)]
#[error("the stored credential cannot be decrypted")]
pub struct SealError;

/// `nonce || ciphertext` of `password` for credential `id`.
pub fn seal(key: &CredentialKey, id: i64, password: &str) -> Result<Vec<u8>, SealError> {
    crate::keys::seal(key, &id.to_be_bytes(), password.as_bytes()).ok_or(SealError)
}

/// The password sealed in `blob` for credential `id`.
pub fn open(key: &CredentialKey, id: i64, blob: &[u8]) -> Result<String, SealError> {
    let pt = crate::keys::open(key, &id.to_be_bytes(), blob).ok_or(SealError)?;
    String::from_utf8(pt).map_err(|_| SealError)
}

/// Why a key rotation changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// A stored credential does not open under the old key.
    #[error("credential {0}: {1}")]
    Open(i64, #[source] SealError),
    /// Sealing under the new key failed.
    #[error(transparent)]
    Seal(SealError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// Re-seals every stored credential under `new` and records `new`'s check value, in one
/// transaction; returns how many credentials were re-encrypted. Nothing changes when any
/// credential does not open under `old`.
pub async fn rotate(
    db: &crate::db::Db,
    old: &CredentialKey,
    new: &CredentialKey,
) -> Result<usize, RotateError> {
    use crate::db::{auth_profiles, installation};
    let mut tx = db.begin().await?;
    let all = auth_profiles::all_credentials(&mut tx).await?;
    for c in &all {
        let password = open(old, c.id, &c.secret).map_err(|e| RotateError::Open(c.id, e))?;
        let sealed = seal(new, c.id, &password).map_err(RotateError::Seal)?;
        auth_profiles::set_secret(&mut tx, c.id, sealed).await?;
    }
    crate::bmc_sessions::reseal(&mut tx, old, new).await?;
    installation::set(&mut tx, crate::keys::CHECK_VALUE_KEY, &new.check_value()).await?;
    tx.commit().await?;
    Ok(all.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_per_row_with_fresh_nonces() {
        let key = CredentialKey([7; 32]);
        let a = seal(&key, 1, "calvin").unwrap();
        let b = seal(&key, 1, "calvin").unwrap();
        assert_ne!(a, b, "nonce must differ per seal");
        assert!(!a.windows(6).any(|w| w == b"calvin"));
        assert_eq!(open(&key, 1, &a).unwrap(), "calvin");
        assert!(open(&key, 2, &a).is_err(), "row id is associated data");
        assert!(open(&CredentialKey([8; 32]), 1, &a).is_err());
        assert!(open(&key, 1, &a[..5]).is_err());
    }
}
