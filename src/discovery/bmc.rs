//! The credentialed side of a BMC for registration: a client that talks only to the
//! certificate recorded at discovery, login over a profile's credentials in order (one attempt
//! each, stop at the first accepted), and a session that is always deleted afterwards.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::probe::read_capped;

/// Largest resource body read from a BMC.
const BODY_CAP: usize = 8 * 1024 * 1024;
/// Budget of one request to a BMC.
const REQUEST_BUDGET: Duration = Duration::from_secs(20);

/// Accepts exactly the leaf certificate whose SHA-256 was recorded at discovery.
#[derive(Debug)]
struct Pinned {
    sha256_hex: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if hex::encode(Sha256::digest(end_entity.as_ref())).eq_ignore_ascii_case(&self.sha256_hex) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the BMC certificate does not match the one recorded at discovery".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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

/// A client for one BMC: pinned to `cert_sha256` over HTTPS, plain over HTTP.
pub fn client_for(
    url: &str,
    cert_sha256: Option<&str>,
    allow_http: bool,
) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .timeout(REQUEST_BUDGET)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent("mojo-server");
    let builder = if url.starts_with("https://") {
        let pin =
            cert_sha256.ok_or("no certificate was recorded at discovery; rescan the range")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                sha256_hex: pin.to_string(),
                provider,
            }))
            .with_no_client_auth();
        builder.use_preconfigured_tls(config)
    } else if allow_http {
        builder
    } else {
        return Err("plain-HTTP BMCs are refused (credentials would travel unencrypted; set MOJO_ALLOW_HTTP_BMC=true to allow)".into());
    };
    builder.build().map_err(|e| e.to_string())
}

/// A credential to try: (id, username, password).
pub type Attempt = (i64, String, String);

#[derive(Clone)]
enum Auth {
    Token(HeaderValue),
    Basic(String, String),
}

/// A logged-in session on one BMC; call [`Session::logout`] when done.
pub struct Session {
    client: reqwest::Client,
    base: String,
    auth: Auth,
    location: Option<String>,
    /// The credential the BMC accepted.
    pub credential: i64,
}

/// A message for a failed request, without the URL's query or any header.
fn cause(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// A path on the same origin as `base` from a `Location`/`@odata.id` value, else None.
pub fn same_origin_path(base: &str, link: &str) -> Option<String> {
    if link.starts_with('/') && !link.starts_with("//") {
        return Some(link.to_string());
    }
    let rest = link.strip_prefix(base)?;
    rest.starts_with('/').then(|| rest.to_string())
}

/// Logs in with the first credential the BMC accepts. A 401/403 moves on to the next one;
/// basic auth is used only when sessions are unsupported (404/405/501) or full (503).
pub async fn login(
    client: &reqwest::Client,
    base: &str,
    attempts: &[Attempt],
) -> Result<Session, String> {
    for (id, user, password) in attempts {
        let body = serde_json::json!({"UserName": user, "Password": password});
        let resp = client
            .post(format!("{base}/redfish/v1/SessionService/Sessions"))
            .json(&body)
            .send()
            .await
            .map_err(|e| cause(&e))?;
        let status = resp.status();
        if status.is_success() {
            let token = resp.headers().get("x-auth-token").cloned();
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| same_origin_path(base, l));
            let Some(token) = token else {
                return Err("the BMC created a session without an X-Auth-Token".into());
            };
            return Ok(Session {
                client: client.clone(),
                base: base.to_string(),
                auth: Auth::Token(token),
                location,
                credential: *id,
            });
        }
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => continue,
            StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED
            | StatusCode::SERVICE_UNAVAILABLE => {
                let probe = client
                    .get(format!("{base}/redfish/v1/Systems"))
                    .basic_auth(user, Some(password))
                    .send()
                    .await
                    .map_err(|e| cause(&e))?;
                match probe.status() {
                    s if s.is_success() => {
                        return Ok(Session {
                            client: client.clone(),
                            base: base.to_string(),
                            auth: Auth::Basic(user.clone(), password.clone()),
                            location: None,
                            credential: *id,
                        })
                    }
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => continue,
                    s => return Err(format!("login failed with HTTP {}", s.as_u16())),
                }
            }
            s => return Err(format!("login failed with HTTP {}", s.as_u16())),
        }
    }
    Err("none of the auth profile's credentials was accepted".into())
}

impl Session {
    fn headers(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::Token(t) => {
                let mut h = HeaderMap::new();
                h.insert("x-auth-token", t.clone());
                req.headers(h)
            }
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        }
    }

    /// GETs a path on this BMC as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let path = same_origin_path(&self.base, path)
            .ok_or_else(|| format!("refused link {path:?} to another host"))?;
        let resp = self
            .headers(self.client.get(format!("{}{path}", self.base)))
            .send()
            .await
            .map_err(|e| cause(&e))?;
        if !resp.status().is_success() {
            return Err(format!("GET {path}: HTTP {}", resp.status().as_u16()));
        }
        let body = read_capped(resp, BODY_CAP)
            .await
            .ok_or_else(|| format!("GET {path}: body too large or cut off"))?;
        serde_json::from_slice(&body).map_err(|_| format!("GET {path}: not JSON"))
    }

    /// Deletes the session (a no-op for basic auth). Errors are logged, never returned: the
    /// caller's outcome stands.
    pub async fn logout(self) {
        let Some(location) = &self.location else {
            return;
        };
        let req = self.headers(self.client.delete(format!("{}{location}", self.base)));
        match tokio::time::timeout(Duration::from_secs(10), req.send()).await {
            Ok(Ok(r)) if r.status().is_success() || r.status() == StatusCode::NOT_FOUND => {}
            Ok(Ok(r)) => {
                tracing::warn!(bmc = %self.base, status = r.status().as_u16(), "BMC session logout refused")
            }
            Ok(Err(e)) => {
                tracing::warn!(bmc = %self.base, error = %cause(&e), "BMC session logout failed")
            }
            Err(_) => tracing::warn!(bmc = %self.base, "BMC session logout timed out"),
        }
    }
}

/// The members of a Redfish collection.
pub async fn members(session: &Session, path: &str) -> Result<Vec<String>, String> {
    let v = session.get(path).await?;
    Ok(v.get("Members")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    m.get("@odata.id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_links_on_the_bmc() {
        let base = "https://127.0.0.1:9443";
        assert_eq!(
            same_origin_path(base, "/redfish/v1/x").as_deref(),
            Some("/redfish/v1/x")
        );
        assert_eq!(
            same_origin_path(base, "https://127.0.0.1:9443/redfish/v1/x").as_deref(),
            Some("/redfish/v1/x")
        );
        assert_eq!(same_origin_path(base, "https://127.0.0.1:94431/x"), None);
        assert_eq!(same_origin_path(base, "//evil/x"), None);
        assert_eq!(same_origin_path(base, "https://evil/x"), None);
    }
}
