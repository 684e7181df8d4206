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
use crate::db::{Db, Sql};

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
    pub fn parse(s: &str) -> Result<CredentialKey, String> {
        use base64::Engine;
        let s = s.trim();
        let bytes = hex::decode(s)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or("MOJO_CREDENTIAL_KEY must be 32 bytes as 64 hex characters or base64")?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "MOJO_CREDENTIAL_KEY must be exactly 32 bytes (64 hex characters)")?;
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
    env: &str,
    file: &str,
) -> Result<String, String> {
    if let Some(v) = injected {
        return Ok(v.clone());
    }
    if let Some(v) = secret_from_env(env)? {
        return Ok(v);
    }
    if config.is_postgres() {
        return Err(format!(
            "{env} (or {env}_FILE) is required with PostgreSQL: every replica must share it"
        ));
    }
    let path = config.data_dir.join(file);
    if path.exists() {
        return std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("cannot read {}: {e}", path.display()));
    }
    let value = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &value).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated {env}");
    Ok(value)
}

/// The JWT secret and the credential key of this installation.
pub fn load(config: &Config) -> Result<(Vec<u8>, CredentialKey), String> {
    let inj = &config.injected;
    let jwt = load_or_generate(
        config,
        inj.secret_key.as_ref(),
        "MOJO_SECRET_KEY",
        "secret_key",
    )?;
    if jwt.len() < 16 {
        return Err("MOJO_SECRET_KEY must be at least 16 characters".into());
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
pub async fn verify_credential_key(db: &Db, key: &CredentialKey) -> Result<(), String> {
    let check = key.check_value();
    let row = db
        .fetch_optional(&Sql::new(
            "SELECT value FROM installation WHERE key = 'credential_key_check'",
        ))
        .await
        .map_err(|e| format!("cannot read the key check value: {e}"))?;
    match row.and_then(|r| r.opt_text("value").ok().flatten()) {
        Some(stored) if stored == check => Ok(()),
        Some(_) => Err("MOJO_CREDENTIAL_KEY does not match the key this database was set up with; \
                        refusing to start (use the original key, or rotate-credential-key)"
            .into()),
        None => db
            .execute(
                &Sql::new("INSERT INTO installation (key, value) VALUES ('credential_key_check', $1) ON CONFLICT (key) DO NOTHING")
                    .arg(check),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot store the key check value: {e}")),
    }
}
