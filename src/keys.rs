//! Per-installation secrets: the JWT signing key and the key that seals BMC credentials.
//!
//! On SQLite both are generated once into the data dir (mode 0600) unless given; on Postgres
//! they are required settings, since every replica must share them. The database keeps a
//! check value of the credential key so that a process holding the wrong key refuses to start
//! instead of writing ciphertexts nobody can read.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::{secret_from_env, Config};
use crate::db::{installation, Db, DbError};

/// Where the installation keeps the credential key's check value.
pub const CHECK_VALUE_KEY: &str = "credential_key_check";

/// Why the keys of this installation could not be loaded or checked.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key has the wrong form.
    #[error("{0}")]
    Invalid(&'static str),
    /// A setting that PostgreSQL needs is missing.
    #[error("{0} (or {0}_FILE) is required with PostgreSQL: every replica must share it")]
    Required(&'static str),
    /// A setting could not be read from the environment or its file.
    #[error("{0}")]
    Setting(String),
    /// A key file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, #[source] std::io::Error),
    /// A key file could not be written.
    #[error("cannot write {0}: {1}")]
    Write(String, #[source] std::io::Error),
    /// The credential key is not the one the database was set up with.
    #[error(
        "MOJO_CREDENTIAL_KEY does not match the key this database was set up with; \
         refusing to start (use the original key, or rotate-credential-key)"
    )]
    Mismatch,
    /// The check value could not be read or stored.
    #[error("cannot {0} the key check value: {1}")]
    Check(&'static str, #[source] DbError),
}

/// The 32-byte AEAD key for stored BMC credentials.
#[derive(Clone)]
pub struct CredentialKey(pub [u8; 32]);

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialKey(<redacted>)")
    }
}

impl CredentialKey {
    /// Parses 64 hex characters or standard base64 of 32 bytes.
    pub fn parse(s: &str) -> Result<CredentialKey, KeyError> {
        use base64::Engine;
        let s = s.trim();
        let bytes = hex::decode(s)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or(KeyError::Invalid(
                "MOJO_CREDENTIAL_KEY must be 32 bytes as 64 hex characters or base64",
            ))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            KeyError::Invalid("MOJO_CREDENTIAL_KEY must be exactly 32 bytes (64 hex characters)")
        })?;
        Ok(CredentialKey(arr))
    }

    /// A value that identifies the key without revealing it.
    pub fn check_value(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"mojo-credential-key-check-v1");
        h.update(self.0);
        hex::encode(h.finalize())
    }
}

/// Writes `contents` to a new file readable only by the owner.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

fn load_or_generate(
    config: &Config,
    injected: Option<&String>,
    env: &'static str,
    file: &str,
) -> Result<String, KeyError> {
    if let Some(v) = injected {
        return Ok(v.clone());
    }
    if let Some(v) = secret_from_env(env).map_err(KeyError::Setting)? {
        return Ok(v);
    }
    if config.is_postgres() {
        return Err(KeyError::Required(env));
    }
    let path = config.data_dir.join(file);
    if path.exists() {
        return std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|e| KeyError::Read(path.display().to_string(), e));
    }
    let value = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &value).map_err(|e| KeyError::Write(path.display().to_string(), e))?;
    tracing::info!(path = %path.display(), "generated {env}");
    Ok(value)
}

/// The JWT secret and the credential key of this installation.
pub fn load(config: &Config) -> Result<(Vec<u8>, CredentialKey), KeyError> {
    let inj = &config.injected;
    let jwt = load_or_generate(
        config,
        inj.secret_key.as_ref(),
        "MOJO_SECRET_KEY",
        "secret_key",
    )?;
    if jwt.len() < 16 {
        return Err(KeyError::Invalid(
            "MOJO_SECRET_KEY must be at least 16 characters",
        ));
    }
    let cred = CredentialKey::parse(&load_or_generate(
        config,
        inj.credential_key.as_ref(),
        "MOJO_CREDENTIAL_KEY",
        "credential_key",
    )?)?;
    Ok((jwt.into_bytes(), cred))
}

/// Records the key's check value on first start; refuses a different key afterwards.
pub async fn verify_credential_key(db: &Db, key: &CredentialKey) -> Result<(), KeyError> {
    let check = key.check_value();
    let stored = installation::get(db, CHECK_VALUE_KEY)
        .await
        .map_err(|e| KeyError::Check("read", e))?;
    match stored {
        Some(stored) if stored == check => Ok(()),
        Some(_) => Err(KeyError::Mismatch),
        None => {
            installation::insert_if_absent(db, CHECK_VALUE_KEY, &check)
                .await
                .map_err(|e| KeyError::Check("store", e))?;
            // Another process may have stored its value between the read and the insert (the
            // insert then did nothing): what counts is the value stored now.
            let stored = installation::get(db, CHECK_VALUE_KEY)
                .await
                .map_err(|e| KeyError::Check("read", e))?;
            if stored.as_deref() == Some(check.as_str()) {
                Ok(())
            } else {
                Err(KeyError::Mismatch)
            }
        }
    }
}

/// AES-256-GCM under the credential key: `nonce || ciphertext` of `msg` with `aad` as
/// associated data (None when sealing fails).
pub fn seal(key: &CredentialKey, aad: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    let cipher = Aes256Gcm::new_from_slice(&key.0).ok()?;
    let nonce: [u8; SEAL_NONCE_LEN] = rand::random();
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg, aad })
        .ok()?;
    let mut out = Vec::with_capacity(SEAL_NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Some(out)
}

/// What [`seal`] sealed with `aad` (None for a wrong key, wrong associated data or tampering).
pub fn open(key: &CredentialKey, aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    if blob.len() < SEAL_NONCE_LEN {
        return None;
    }
    let (nonce, msg) = blob.split_at(SEAL_NONCE_LEN);
    let cipher = Aes256Gcm::new_from_slice(&key.0).ok()?;
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
        .ok()
}

/// Nonce length of [`seal`] (96 bits).
const SEAL_NONCE_LEN: usize = 12;
