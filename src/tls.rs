//! The HTTPS certificate: the operator's, or a self-signed one generated on first start and
//! kept in the data dir.

use std::path::PathBuf;

use crate::config::Config;
use crate::keys::write_private;

/// Why the HTTPS certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file or directory could not be written.
    #[error("cannot {0} {1}: {2}")]
    Io(&'static str, String, #[source] std::io::Error),
    /// The self-signed certificate could not be generated.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[source] rcgen::Error),
}

/// Paths of the certificate and key in use, generating the self-signed pair when needed.
pub fn cert_paths(config: &Config) -> Result<(PathBuf, PathBuf), TlsError> {
    if let (Some(c), Some(k)) = (&config.tls_cert, &config.tls_key) {
        return Ok((c.clone(), k.clone()));
    }
    let dir = config.data_dir.join("tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| TlsError::Io("create", dir.display().to_string(), e))?;
    let mut sans = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            sans.push(h.to_string());
        }
    }
    sans.extend(
        config
            .tls_sans
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    sans.sort();
    sans.dedup();
    let certified = rcgen::generate_simple_self_signed(sans).map_err(TlsError::Generate)?;
    let _ = std::fs::remove_file(&key);
    write_private(&key, &certified.key_pair.serialize_pem())
        .map_err(|e| TlsError::Io("write", key.display().to_string(), e))?;
    std::fs::write(&cert, certified.cert.pem())
        .map_err(|e| TlsError::Io("write", cert.display().to_string(), e))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}
