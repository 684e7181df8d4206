//! TLS policy for BMCs: trust on first use.
//!
//! Discovery accepts any certificate (BMCs ship self-signed ones) and records the leaf's SHA-256;
//! authenticated work later accepts only that same certificate, optionally also checked against a
//! CA bundle. Handshake signatures are always verified, so a copied certificate without its private
//! key does not pass a pin.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use super::error::RedfishError;

/// Lowercase hex SHA-256 of a DER certificate, the fingerprint recorded on a node.
pub fn cert_sha256(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Normalises an operator- or database-supplied fingerprint (any case, optional `:` separators).
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// The ring provider: the crate builds rustls with ring only (no aws-lc).
pub(crate) fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Trusted CA certificates for optional strict verification of BMC certificates.
#[derive(Clone, Debug)]
pub struct CaBundle {
    roots: Arc<RootCertStore>,
}

impl CaBundle {
    /// Parses one or more PEM certificates; fails if none is usable.
    pub fn from_pem(pem: &[u8]) -> Result<Self, RedfishError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| RedfishError::CaBundle(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| RedfishError::CaBundle(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(RedfishError::CaBundle("no certificate found".into()));
        }
        Ok(Self {
            roots: Arc::new(roots),
        })
    }

    /// Reads a PEM bundle from a file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, RedfishError> {
        let pem = std::fs::read(path)
            .map_err(|e| RedfishError::CaBundle(format!("{}: {e}", path.display())))?;
        Self::from_pem(&pem)
    }
}

/// What the pinning verifier saw when it refused a certificate, read back to build a clear error
/// (the TLS stack only reports a generic failure).
#[derive(Debug, Default)]
pub(crate) struct PinState {
    mismatch: Mutex<Option<String>>,
}

impl PinState {
    /// Fingerprint of the last refused certificate, if a pin mismatch happened.
    pub(crate) fn mismatch(&self) -> Option<String> {
        self.mismatch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, actual: String) {
        *self.mismatch.lock().unwrap_or_else(PoisonError::into_inner) = Some(actual);
    }
}

/// Which certificates a BMC connection accepts.
#[derive(Debug)]
enum Policy {
    /// Any certificate (discovery: trust on first use, the fingerprint is recorded and pinned
    /// later).
    AcceptAny,
    /// Only the pinned certificate and/or one that chains to the CA bundle (at least one of
    /// the two is set).
    Pinned {
        pinned: Option<String>,
        ca: Option<Arc<WebPkiServerVerifier>>,
        state: Arc<PinState>,
    },
}

/// The certificate check of BMC connections. Whatever the policy, the handshake signatures are
/// verified, so the server must own the certificate's key.
#[derive(Debug)]
struct BmcVerifier {
    policy: Policy,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for BmcVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = || {
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )
        };
        let (pinned, ca, state) = match &self.policy {
            Policy::AcceptAny => return Ok(ServerCertVerified::assertion()),
            Policy::Pinned { pinned, ca, state } => (pinned, ca, state),
        };
        if let Some(expected) = pinned {
            let actual = cert_sha256(end_entity.as_ref());
            if &actual != expected {
                state.record(actual);
                return Err(refused());
            }
        }
        match ca {
            Some(ca) => {
                ca.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None if pinned.is_some() => Ok(ServerCertVerified::assertion()),
            // Unreachable by construction (client_tls_config demands one of them); refuse anyway.
            None => Err(refused()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Client configuration for discovery probes: any certificate, TLS 1.2 and 1.3, ring.
pub(crate) fn probe_tls_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = ring_provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(BmcVerifier {
            policy: Policy::AcceptAny,
            provider,
        }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Client configuration for authenticated work: the pinned certificate and/or the CA bundle.
pub(crate) fn client_tls_config(
    pinned: Option<&str>,
    ca: Option<&CaBundle>,
) -> Result<(ClientConfig, Arc<PinState>), RedfishError> {
    let pinned = match pinned {
        Some(text) => Some(normalize_fingerprint(text).ok_or_else(|| {
            RedfishError::InvalidUrl("recorded certificate fingerprint is not a SHA-256".into())
        })?),
        None => None,
    };
    if pinned.is_none() && ca.is_none() {
        return Err(RedfishError::NoTrustAnchor);
    }
    let provider = ring_provider();
    let ca_verifier = match ca {
        Some(bundle) => Some(
            WebPkiServerVerifier::builder_with_provider(bundle.roots.clone(), provider.clone())
                .build()
                .map_err(|e| RedfishError::CaBundle(e.to_string()))?,
        ),
        None => None,
    };
    let state = Arc::new(PinState::default());
    let verifier = BmcVerifier {
        policy: Policy::Pinned {
            pinned,
            ca: ca_verifier,
            state: state.clone(),
        },
        provider: provider.clone(),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RedfishError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((config, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_lowercase_hex_sha256() {
        assert_eq!(
            cert_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn fingerprint_normalisation_accepts_colons_and_case() {
        let colon = "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";
        assert_eq!(
            normalize_fingerprint(colon).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(normalize_fingerprint("abcd"), None);
        assert_eq!(normalize_fingerprint(&"g".repeat(64)), None);
    }

    #[test]
    fn config_needs_a_pin_or_a_ca() {
        assert!(matches!(
            client_tls_config(None, None),
            Err(RedfishError::NoTrustAnchor)
        ));
        assert!(client_tls_config(Some(&"a".repeat(64)), None).is_ok());
        assert!(client_tls_config(Some("nope"), None).is_err());
    }

    #[test]
    fn ca_bundle_rejects_garbage() {
        assert!(CaBundle::from_pem(b"not a pem").is_err());
    }
}
