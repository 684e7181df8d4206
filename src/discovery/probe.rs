//! The real prober: TCP connect, TLS that accepts self-signed BMC certificates, an anonymous
//! `GET /redfish/v1/`, all within the probe budget. A peer that answers the TLS handshake with
//! plain HTTP is asked once more over HTTP.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{endpoint_url, Found, ProbeOutcome, Prober};

/// Largest service root read.
const ROOT_CAP: usize = 256 * 1024;
/// TCP connect budget.
const CONNECT: Duration = Duration::from_millis(500);

/// Probes over reqwest with rustls.
pub struct HttpProber {
    https: reqwest::Client,
    http: reqwest::Client,
    budget: Duration,
}

fn client(budget: Duration, tls_info: bool) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(CONNECT)
        .timeout(budget)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .no_proxy()
        .user_agent("mojo-server discovery");
    if tls_info {
        // Discovery only reads the public service root; trust is pinned by fingerprint later.
        b = b.danger_accept_invalid_certs(true).tls_info(true);
    }
    b.build()
}

impl HttpProber {
    /// A prober whose every probe ends within `budget`.
    pub fn new(budget: Duration) -> Result<HttpProber, String> {
        Ok(HttpProber {
            https: client(budget, true).map_err(|e| e.to_string())?,
            http: client(budget, false).map_err(|e| e.to_string())?,
            budget,
        })
    }

    async fn probe_inner(&self, ip: IpAddr, port: u16) -> ProbeOutcome {
        let addr = SocketAddr::new(ip, port);
        match tokio::time::timeout(CONNECT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => {}
            _ => return ProbeOutcome::NotListening,
        }
        let https_url = endpoint_url("https", ip, port);
        match self
            .https
            .get(format!("{https_url}/redfish/v1/"))
            .send()
            .await
        {
            Ok(resp) => {
                let cert = resp
                    .extensions()
                    .get::<reqwest::tls::TlsInfo>()
                    .and_then(|i| i.peer_certificate())
                    .map(|der| hex::encode(Sha256::digest(der)));
                service_root(resp, "https", https_url, cert).await
            }
            Err(e) if e.is_timeout() => ProbeOutcome::NotRedfish,
            Err(e) => match rustls_error(&e) {
                Some(rustls::Error::InvalidMessage(_)) => {
                    let http_url = endpoint_url("http", ip, port);
                    match self
                        .http
                        .get(format!("{http_url}/redfish/v1/"))
                        .send()
                        .await
                    {
                        Ok(resp) => service_root(resp, "http", http_url, None).await,
                        Err(_) => ProbeOutcome::NotRedfish,
                    }
                }
                Some(tls) => ProbeOutcome::Tls(format!("TLS: {tls}")),
                None => ProbeOutcome::NotRedfish,
            },
        }
    }
}

impl Prober for HttpProber {
    fn probe(&self, ip: IpAddr, port: u16) -> BoxFuture<'_, ProbeOutcome> {
        Box::pin(async move {
            tokio::time::timeout(self.budget, self.probe_inner(ip, port))
                .await
                .unwrap_or(ProbeOutcome::NotRedfish)
        })
    }
}

/// The rustls error somewhere in an error's source chain.
fn rustls_error(e: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.clone());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r.clone());
            }
        }
        cur = err.source();
    }
    None
}

/// Reads at most `cap` bytes of a body; None when it is longer or breaks off.
pub async fn read_capped(resp: reqwest::Response, cap: usize) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > cap {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

async fn service_root(
    resp: reqwest::Response,
    scheme: &str,
    url: String,
    cert: Option<String>,
) -> ProbeOutcome {
    if !resp.status().is_success() {
        return ProbeOutcome::NotRedfish;
    }
    let Some(body) = read_capped(resp, ROOT_CAP).await else {
        return ProbeOutcome::NotRedfish;
    };
    match parse_service_root(&body) {
        Some(mut found) => {
            found.scheme = scheme.to_string();
            found.url = url;
            found.cert_sha256 = cert;
            ProbeOutcome::Found(found)
        }
        None => ProbeOutcome::NotRedfish,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(255).collect())
}

/// The facts of a Redfish service root, or None when the body is not one.
pub fn parse_service_root(body: &[u8]) -> Option<Found> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let is_root = v.get("RedfishVersion").is_some()
        || v.get("@odata.type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.contains("ServiceRoot"));
    if !is_root {
        return None;
    }
    let vendor = text(&v, "Vendor").or_else(|| {
        v.get("Oem")
            .and_then(Value::as_object)
            .and_then(|o| o.keys().next().cloned())
    });
    Some(Found {
        vendor,
        product: text(&v, "Product"),
        uuid: text(&v, "UUID"),
        redfish_version: text(&v, "RedfishVersion"),
        ..Found::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_service_roots() {
        let f = parse_service_root(
            br#"{"RedfishVersion":"1.6.0","UUID":"u","Vendor":"Dell","Product":"iDRAC"}"#,
        )
        .unwrap();
        assert_eq!(f.vendor.as_deref(), Some("Dell"));
        assert_eq!(f.redfish_version.as_deref(), Some("1.6.0"));
        let f = parse_service_root(
            br##"{"@odata.type":"#ServiceRoot.v1_5_0.ServiceRoot","Oem":{"Hpe":{}}}"##,
        )
        .unwrap();
        assert_eq!(f.vendor.as_deref(), Some("Hpe"));
        assert!(parse_service_root(b"<html>").is_none());
        assert!(parse_service_root(br#"{"hello":1}"#).is_none());
    }
}
