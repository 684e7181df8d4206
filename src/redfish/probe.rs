//! Discovery probe: is there a Redfish service at this address and port, and what is it?
//!
//! One probe is a TCP connect, a TLS handshake that accepts any certificate (recording its
//! fingerprint), and an unauthenticated `GET /redfish/v1/`, all within one time budget. It uses a
//! shared rustls config and hyper's connection-level HTTP/1 client on its own stream instead of a
//! full HTTP client (pool, resolver), so a scan can run hundreds of probes at once cheaply.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::error::{clip, RedfishError};
use super::http1::{self, Http1Error};
use super::tls;

/// Default budget for one whole probe (`MOJO_PROBE_TIMEOUT_MS`).
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Default budget for the TCP connect alone.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Largest service root accepted.
pub const SERVICE_ROOT_CAP: usize = 256 * 1024;

/// How probes run; build once per scan and share (cloning is cheap).
#[derive(Clone)]
pub struct ProbeOptions {
    /// Budget for the whole probe, plain-HTTP retry included.
    pub timeout: Duration,
    /// Budget for each TCP connect.
    pub connect_timeout: Duration,
    /// Largest service root body accepted.
    pub body_cap: usize,
    connector: TlsConnector,
}

impl fmt::Debug for ProbeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeOptions")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("body_cap", &self.body_cap)
            .finish_non_exhaustive()
    }
}

impl ProbeOptions {
    /// Default options (1500 ms budget, 500 ms connect) with a freshly built permissive TLS config.
    pub fn new() -> Result<Self, RedfishError> {
        let config = tls::probe_tls_config().map_err(|e| RedfishError::Tls(e.to_string()))?;
        Ok(Self {
            timeout: DEFAULT_PROBE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            body_cap: SERVICE_ROOT_CAP,
            connector: TlsConnector::from(config),
        })
    }

    /// The same options with another whole-probe budget.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// URL scheme a BMC was found on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TLS.
    Https,
    /// Plain HTTP (credentials only with `MOJO_ALLOW_HTTP_BMC`).
    Http,
}

impl Scheme {
    /// `"https"` or `"http"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Redfish service found by a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BmcInfo {
    /// Scheme it answered on.
    pub scheme: Scheme,
    /// Base URL, e.g. `https://127.0.0.1:9443` (no trailing slash).
    pub url: String,
    /// Vendor, from `Vendor`, else derived from `Oem` keys or `Product`.
    pub vendor: Option<String>,
    /// `Product` of the service root.
    pub product: Option<String>,
    /// `UUID` of the service root.
    pub uuid: Option<String>,
    /// `RedfishVersion` of the service root.
    pub redfish_version: Option<String>,
    /// Lowercase hex SHA-256 of the leaf certificate (None over plain HTTP).
    pub cert_sha256: Option<String>,
}

/// What a probe found at one address and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Nothing listening: connection refused, unreachable or reset at once.
    Closed {
        /// The OS error text.
        reason: String,
    },
    /// No answer within the budget (silent host, or a service that accepts and never answers).
    Timeout,
    /// Something answered, but it is not a Redfish service (web page, garbage, other protocol).
    NotRedfish {
        /// Short reason, for logs.
        reason: String,
    },
    /// The peer speaks TLS the client refuses (old versions, weak keys); text starts with `TLS: `.
    TlsError {
        /// Operator-readable message, e.g. `TLS: received fatal alert: ProtocolVersion`.
        message: String,
    },
    /// A Redfish service.
    Redfish(BmcInfo),
}

impl ProbeOutcome {
    /// The BMC found, if any.
    pub fn redfish(&self) -> Option<&BmcInfo> {
        match self {
            ProbeOutcome::Redfish(info) => Some(info),
            _ => None,
        }
    }

    /// Short name of the outcome, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeOutcome::Closed { .. } => "closed",
            ProbeOutcome::Timeout => "timeout",
            ProbeOutcome::NotRedfish { .. } => "not_redfish",
            ProbeOutcome::TlsError { .. } => "tls_error",
            ProbeOutcome::Redfish(_) => "redfish",
        }
    }
}

/// The fields of a service root that discovery records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRoot {
    /// `RedfishVersion`.
    pub redfish_version: Option<String>,
    /// `UUID`.
    pub uuid: Option<String>,
    /// `Vendor`, else derived from `Oem` keys or `Product`.
    pub vendor: Option<String>,
    /// `Product`.
    pub product: Option<String>,
}

/// Why a body is not a Redfish service root (the text is the probe's `NotRedfish` reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceRootError {
    /// Not JSON at all.
    #[error("body is not JSON")]
    NotJson,
    /// JSON, but not an object.
    #[error("JSON is not an object")]
    NotObject,
    /// An object without `RedfishVersion` and without the root's `@odata.id`.
    #[error("JSON is not a Redfish service root")]
    NotServiceRoot,
}

/// Parses a service root; `Err` when the body is not one.
pub fn parse_service_root(body: &[u8]) -> Result<ServiceRoot, ServiceRootError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ServiceRootError::NotJson)?;
    let Some(map) = value.as_object() else {
        return Err(ServiceRootError::NotObject);
    };
    let text = |key: &str| super::inventory::text(&value, key);
    let redfish_version = text("RedfishVersion");
    let is_root_id = text("@odata.id")
        .is_some_and(|id| id.trim_end_matches('/').eq_ignore_ascii_case("/redfish/v1"));
    if redfish_version.is_none() && !is_root_id {
        return Err(ServiceRootError::NotServiceRoot);
    }
    let product = text("Product");
    let oem_keys: Vec<&str> = map
        .get("Oem")
        .and_then(Value::as_object)
        .map(|oem| oem.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let vendor = text("Vendor").or_else(|| derive_vendor(&oem_keys, product.as_deref()));
    Ok(ServiceRoot {
        redfish_version,
        uuid: text("UUID"),
        vendor,
        product,
    })
}

/// Guesses the vendor of a service root that has no `Vendor` (older firmware).
fn derive_vendor(oem_keys: &[&str], product: Option<&str>) -> Option<String> {
    const BY_OEM: &[(&str, &str)] = &[
        ("dell", "Dell"),
        ("hpe", "HPE"),
        ("hp", "HPE"),
        ("lenovo", "Lenovo"),
        ("supermicro", "Supermicro"),
        ("smc", "Supermicro"),
        ("ami", "AMI"),
        ("cisco", "Cisco"),
        ("fujitsu", "Fujitsu"),
        ("ts_fujitsu", "Fujitsu"),
        ("huawei", "Huawei"),
        ("inspur", "Inspur"),
        ("nvidia", "NVIDIA"),
        ("openbmc", "OpenBMC"),
    ];
    const BY_PRODUCT: &[(&str, &str)] = &[
        ("idrac", "Dell"),
        ("poweredge", "Dell"),
        ("dell", "Dell"),
        ("ilo", "HPE"),
        ("proliant", "HPE"),
        ("hpe", "HPE"),
        ("xclarity", "Lenovo"),
        ("thinksystem", "Lenovo"),
        ("lenovo", "Lenovo"),
        ("supermicro", "Supermicro"),
        ("openbmc", "OpenBMC"),
    ];
    for key in oem_keys {
        let key = key.to_ascii_lowercase();
        if let Some((_, vendor)) = BY_OEM.iter().find(|(k, _)| *k == key) {
            return Some((*vendor).to_string());
        }
    }
    if let Some(product) = product {
        let words: Vec<String> = product
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        for (needle, vendor) in BY_PRODUCT {
            if words.iter().any(|w| w == needle) {
                return Some((*vendor).to_string());
            }
        }
    }
    // An unknown OEM section still names its owner better than nothing.
    oem_keys
        .iter()
        .find(|k| !k.starts_with('@'))
        .map(|k| k.to_string())
}

/// Probes one address and port for a Redfish service, within `opts.timeout`.
pub async fn probe(addr: IpAddr, port: u16, opts: &ProbeOptions) -> ProbeOutcome {
    let target = SocketAddr::new(addr, port);
    let deadline = Instant::now() + opts.timeout;
    let outcome = match tokio::time::timeout_at(deadline, probe_inner(target, opts, deadline)).await
    {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::Timeout,
    };
    tracing::debug!(%target, outcome = outcome.kind(), "redfish probe");
    outcome
}

/// Connects with the connect budget, clipped to the probe deadline.
async fn connect(
    target: SocketAddr,
    opts: &ProbeOptions,
    deadline: Instant,
) -> Result<TcpStream, ProbeOutcome> {
    let limit = (Instant::now() + opts.connect_timeout).min(deadline);
    match tokio::time::timeout_at(limit, TcpStream::connect(target)).await {
        Ok(Ok(stream)) => {
            // Small request/response exchanges: do not wait on Nagle.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(ProbeOutcome::Closed {
            reason: e.to_string(),
        }),
        Err(_) => Err(ProbeOutcome::Timeout),
    }
}

async fn probe_inner(target: SocketAddr, opts: &ProbeOptions, deadline: Instant) -> ProbeOutcome {
    let tcp = match connect(target, opts, deadline).await {
        Ok(tcp) => tcp,
        Err(outcome) => return outcome,
    };
    let server_name = ServerName::IpAddress(target.ip().into());
    let handshake = opts
        .connector
        .connect(server_name, HeadRecorder::new(tcp))
        .into_fallible()
        .await;
    match handshake {
        Ok(mut tls) => {
            let cert_sha256 = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|leaf| tls::cert_sha256(leaf.as_ref()));
            service_root(&mut tls, target, Scheme::Https, cert_sha256, opts).await
        }
        Err((error, io)) => {
            if io.looks_like_tls() {
                return ProbeOutcome::TlsError {
                    message: format!("TLS: {}", clip(&error.to_string(), 200)),
                };
            }
            // The peer answered our ClientHello with something that is not TLS (typically an HTTP
            // error page) or just hung up: try the same port once over plain HTTP.
            drop(io);
            let mut tcp = match connect(target, opts, deadline).await {
                Ok(tcp) => tcp,
                Err(outcome) => return outcome,
            };
            match service_root(&mut tcp, target, Scheme::Http, None, opts).await {
                ProbeOutcome::Redfish(info) => ProbeOutcome::Redfish(info),
                ProbeOutcome::NotRedfish { reason } => ProbeOutcome::NotRedfish {
                    reason: format!("not TLS; over HTTP: {reason}"),
                },
                other => other,
            }
        }
    }
}

/// `GET /redfish/v1/` on an established stream and judge the answer.
async fn service_root<S>(
    stream: &mut S,
    target: SocketAddr,
    scheme: Scheme,
    cert_sha256: Option<String>,
    opts: &ProbeOptions,
) -> ProbeOutcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let host = target.to_string();
    let response = match http1::get(stream, &host, "/redfish/v1/", opts.body_cap).await {
        Ok(response) => response,
        Err(Http1Error::Io(e)) if is_closed(&e) => {
            return ProbeOutcome::NotRedfish {
                reason: format!("connection dropped: {e}"),
            }
        }
        Err(e) => {
            return ProbeOutcome::NotRedfish {
                reason: clip(&e.to_string(), 200),
            }
        }
    };
    if response.status() != 200 {
        return ProbeOutcome::NotRedfish {
            reason: format!("GET /redfish/v1/: HTTP {}", response.status().as_u16()),
        };
    }
    match parse_service_root(response.body()) {
        Ok(root) => ProbeOutcome::Redfish(BmcInfo {
            scheme,
            url: format!("{scheme}://{target}"),
            vendor: root.vendor,
            product: root.product,
            uuid: root.uuid,
            redfish_version: root.redfish_version,
            cert_sha256,
        }),
        Err(reason) => ProbeOutcome::NotRedfish {
            reason: reason.to_string(),
        },
    }
}

fn is_closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}

/// A TCP stream that remembers the first bytes the peer sent, to tell a TLS peer that refused us
/// from a plain-HTTP peer that answered our ClientHello with an error page.
struct HeadRecorder {
    inner: TcpStream,
    head: [u8; 3],
    head_len: usize,
}

impl HeadRecorder {
    fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            head: [0; 3],
            head_len: 0,
        }
    }

    /// True when the first bytes received form a TLS record header (content type 20..=24, major
    /// version 3).
    fn looks_like_tls(&self) -> bool {
        let head = &self.head[..self.head_len];
        match head {
            [] => false,
            [kind] => (0x14..=0x18).contains(kind),
            [kind, major, ..] => (0x14..=0x18).contains(kind) && *major == 0x03,
        }
    }
}

impl AsyncRead for HeadRecorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let this = &mut *self;
            let fresh = &buf.filled()[before..];
            let room = this.head.len() - this.head_len;
            let n = room.min(fresh.len());
            this.head[this.head_len..this.head_len + n].copy_from_slice(&fresh[..n]);
            this.head_len += n;
        }
        result
    }
}

impl AsyncWrite for HeadRecorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_service_root() {
        let root = parse_service_root(
            br#"{"@odata.id":"/redfish/v1/","RedfishVersion":"1.15.0","UUID":"u-1",
                "Vendor":"Dell","Product":"Integrated Dell Remote Access Controller"}"#,
        )
        .expect("a root");
        assert_eq!(root.redfish_version.as_deref(), Some("1.15.0"));
        assert_eq!(root.uuid.as_deref(), Some("u-1"));
        assert_eq!(root.vendor.as_deref(), Some("Dell"));
        assert_eq!(
            root.product.as_deref(),
            Some("Integrated Dell Remote Access Controller")
        );
    }

    #[test]
    fn odata_id_alone_is_enough() {
        let root = parse_service_root(br#"{"@odata.id":"/redfish/v1"}"#).expect("a root");
        assert_eq!(root, ServiceRoot::default());
    }

    #[test]
    fn vendor_from_oem_or_product() {
        let root =
            parse_service_root(br#"{"RedfishVersion":"1.6.0","Oem":{"Hpe":{"Manager":[]}}}"#)
                .expect("a root");
        assert_eq!(root.vendor.as_deref(), Some("HPE"));
        let root =
            parse_service_root(br#"{"RedfishVersion":"1.6.0","Product":"ThinkSystem SR650"}"#)
                .expect("a root");
        assert_eq!(root.vendor.as_deref(), Some("Lenovo"));
        let root =
            parse_service_root(br#"{"RedfishVersion":"1.6.0","Oem":{"Acme":{}}}"#).expect("a root");
        assert_eq!(root.vendor.as_deref(), Some("Acme"));
        let root = parse_service_root(br#"{"RedfishVersion":"1.6.0","Vendor":"","Product":"x"}"#)
            .expect("a root");
        assert_eq!(root.vendor, None);
    }

    #[test]
    fn rejects_what_is_not_a_service_root() {
        assert!(parse_service_root(b"<html>It works</html>").is_err());
        assert!(parse_service_root(b"[1,2]").is_err());
        assert!(parse_service_root(br#"{"@odata.id":"/redfish/v1/Systems"}"#).is_err());
        assert!(parse_service_root(br#"{"hello":"world"}"#).is_err());
    }
}
