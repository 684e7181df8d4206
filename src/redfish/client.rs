//! HTTP client for authenticated work on one BMC.
//!
//! The client only ever talks to the BMC's own scheme://host:port: it follows no redirects, and
//! every URL taken from a response must resolve to that origin. Over HTTPS it trusts only the
//! certificate recorded at discovery (and/or a CA bundle); plain HTTP needs an explicit opt-in.
//! Each request has a time limit, clipped to the operation's overall deadline, and a body cap.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, ACCEPT};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use url::Url;

use super::error::{clip, RedfishError};
use super::tls::{self, CaBundle, PinState};

/// Default time limit of one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest resource body accepted.
pub const RESOURCE_CAP: usize = 8 * 1024 * 1024;
/// Time a logout gets, even after the operation's deadline passed.
pub const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach and trust one BMC.
#[derive(Clone, Debug)]
pub struct BmcClientConfig {
    /// Base URL as recorded at discovery, e.g. `https://10.0.0.5:443`.
    pub base_url: String,
    /// Certificate fingerprint recorded at discovery (lowercase hex SHA-256).
    pub cert_sha256: Option<String>,
    /// Whether credentials may go to a plain-HTTP BMC (`MOJO_ALLOW_HTTP_BMC`).
    pub allow_http: bool,
    /// Optional strict verification of the BMC certificate (`MOJO_BMC_CA_BUNDLE`).
    pub ca_bundle: Option<CaBundle>,
    /// Overall deadline of the operation (e.g. registration); requests never run past it.
    pub deadline: Option<Instant>,
    /// Time limit of each request.
    pub request_timeout: Duration,
    /// Body cap of each response.
    pub body_cap: usize,
    /// Where a session dropped without logout spawns its DELETE (falls back to the current runtime).
    pub tracker: Option<TaskTracker>,
    /// Where sessions are recorded while open (see [`SessionJournal`]).
    pub journal: Option<Journal>,
}

/// Records each Redfish session while it is open, so that a session a killed process leaves
/// behind can be deleted later by whoever reads the record. The session code calls
/// [`SessionJournal::opened`] after the BMC created a session and *before* the token is used
/// (an error there deletes the session again and fails the login), and
/// [`SessionJournal::closed`] once its DELETE succeeded (or the BMC said it is gone).
pub trait SessionJournal: Send + Sync {
    /// A session `session_url` with `token` was opened on the BMC at `bmc` (`scheme://host:port`).
    fn opened<'a>(
        &'a self,
        bmc: &'a str,
        session_url: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), JournalError>>;
    /// The session `session_url` is deleted on the BMC.
    fn closed<'a>(&'a self, session_url: &'a str) -> BoxFuture<'a, ()>;
}

/// Why a session could not be recorded (the journal's own words).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JournalError(pub String);

/// A shared [`SessionJournal`].
#[derive(Clone)]
pub struct Journal(pub Arc<dyn SessionJournal>);

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

impl BmcClientConfig {
    /// Config with defaults: no pin, no HTTP, no CA bundle, no deadline, 20 s per request, 8 MiB.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            cert_sha256: None,
            allow_http: false,
            ca_bundle: None,
            deadline: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            body_cap: RESOURCE_CAP,
            tracker: None,
            journal: None,
        }
    }
}

/// Who a request authenticates as.
#[derive(Clone)]
pub(crate) enum Auth<'a> {
    /// No credentials (service root).
    None,
    /// A Redfish session token.
    Token(&'a str),
    /// HTTP Basic.
    Basic(&'a str, &'a str),
}

/// A response whose body was read in full (within the cap).
#[derive(Debug)]
pub(crate) struct BmcResponse {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl BmcResponse {
    /// The body as a JSON object.
    pub fn json_object(&self, path: &str) -> Result<Value, RedfishError> {
        let value: Value =
            serde_json::from_slice(&self.body).map_err(|e| RedfishError::InvalidJson {
                path: path.to_string(),
                reason: clip(&e.to_string(), 120),
            })?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(RedfishError::InvalidJson {
                path: path.to_string(),
                reason: "not a JSON object".into(),
            })
        }
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

/// Resolves a reference a BMC supplied (`@odata.id`, `Location`, a task monitor, a next link)
/// against the BMC's `base` URL and returns it only when the *resolved* URL has the BMC's
/// scheme, host and port and carries no user info.
///
/// Refused before resolving: backslashes, control characters and whitespace anywhere (the URL
/// parser drops or rewrites them, so `/\\host/` or `/<TAB>/host/` would turn into a
/// network-path reference to another host), and scheme-relative references (`//host/...`).
/// A fragment (`...#/Controllers/0`) is dropped: the document is the resource.
pub fn same_origin_ref(base: &Url, reference: &str) -> Result<Url, RedfishError> {
    let refused = || RedfishError::ForeignUrl(clip(reference, 120));
    if reference.is_empty()
        || reference
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
        || reference.starts_with("//")
    {
        return Err(refused());
    }
    // An absolute path resolves against the base; anything else must be an absolute URL (a
    // relative path such as `redfish/v1` is no reference a BMC gives).
    let mut url = if reference.starts_with('/') {
        base.join(reference)
    } else {
        Url::parse(reference)
    }
    .map_err(|_| refused())?;
    let same_origin = url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none();
    if !same_origin {
        return Err(refused());
    }
    url.set_fragment(None);
    Ok(url)
}

struct ClientInner {
    http: reqwest::Client,
    origin: Url,
    base_url: String,
    pinned: Option<String>,
    pin_state: Option<Arc<PinState>>,
    deadline: Option<Instant>,
    request_timeout: Duration,
    body_cap: usize,
    tracker: Option<TaskTracker>,
    journal: Option<Journal>,
}

/// A client bound to one BMC origin; cheap to clone.
#[derive(Clone)]
pub struct BmcClient {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for BmcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcClient")
            .field("base_url", &self.inner.base_url)
            .field("pinned", &self.inner.pinned)
            .finish_non_exhaustive()
    }
}

impl BmcClient {
    /// Builds the client; refuses plain HTTP without `allow_http` and HTTPS without a trust anchor.
    pub fn new(config: BmcClientConfig) -> Result<Self, RedfishError> {
        let parsed = Url::parse(config.base_url.trim()).map_err(|e| {
            RedfishError::InvalidUrl(format!("{}: {e}", clip(&config.base_url, 100)))
        })?;
        if parsed.host_str().is_none()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return Err(RedfishError::InvalidUrl(clip(&config.base_url, 100)));
        }
        let mut origin = parsed.clone();
        origin.set_path("/");
        origin.set_query(None);
        origin.set_fragment(None);
        let base_url = origin.as_str().trim_end_matches('/').to_string();

        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .http1_only()
            .user_agent("mojo-server")
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(8);
        let (builder, pinned, pin_state) = match origin.scheme() {
            "https" => {
                let (tls, state) = tls::client_tls_config(
                    config.cert_sha256.as_deref(),
                    config.ca_bundle.as_ref(),
                )?;
                let pinned = config
                    .cert_sha256
                    .as_deref()
                    .and_then(tls::normalize_fingerprint);
                (
                    builder.use_preconfigured_tls(tls).https_only(true),
                    pinned,
                    Some(state),
                )
            }
            "http" if config.allow_http => (builder, None, None),
            "http" => return Err(RedfishError::HttpNotAllowed),
            other => {
                return Err(RedfishError::InvalidUrl(format!(
                    "unsupported scheme {}",
                    clip(other, 20)
                )))
            }
        };
        let http = builder
            .build()
            .map_err(|e| RedfishError::Transport(clip(&e.to_string(), 200)))?;
        Ok(Self {
            inner: Arc::new(ClientInner {
                http,
                origin,
                base_url,
                pinned,
                pin_state,
                deadline: config.deadline,
                request_timeout: config.request_timeout,
                body_cap: config.body_cap,
                tracker: config.tracker,
                journal: config.journal,
            }),
        })
    }

    /// Base URL of the BMC, `scheme://host:port` without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The session journal, if any.
    pub(crate) fn journal(&self) -> Option<&Journal> {
        self.inner.journal.as_ref()
    }

    /// Where a last-resort logout should be spawned.
    pub(crate) fn tracker(&self) -> Option<&TaskTracker> {
        self.inner.tracker.as_ref()
    }

    /// Resolves a path or URL taken from a BMC response; refuses anything outside the BMC origin
    /// (see [`same_origin_ref`]).
    pub fn resolve(&self, reference: &str) -> Result<Url, RedfishError> {
        same_origin_ref(&self.inner.origin, reference)
    }

    /// Time left for a request, or why there is none.
    /// The bool is true when the deadline, not the request limit, bounds the request.
    fn request_budget(&self) -> Result<(Duration, bool), RedfishError> {
        let own = self.inner.request_timeout;
        match self.inner.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(RedfishError::DeadlineExceeded);
                }
                Ok((own.min(left), left < own))
            }
            None => Ok((own, false)),
        }
    }

    /// Sends one request and reads its body within the cap and the time limit.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Url,
        auth: Auth<'_>,
        json: Option<&Value>,
    ) -> Result<BmcResponse, RedfishError> {
        self.send_inner(method, url, auth, json, false, None).await
    }

    /// Like `send`, with an `If-Match` header (a conditional PATCH).
    pub(crate) async fn send_if_match(
        &self,
        method: Method,
        url: &Url,
        auth: Auth<'_>,
        json: Option<&Value>,
        if_match: &str,
    ) -> Result<BmcResponse, RedfishError> {
        self.send_inner(method, url, auth, json, false, Some(if_match))
            .await
    }

    /// Like `send`, but with the logout time limit and regardless of the deadline: a session must
    /// be deleted even when the work that used it ran out of time.
    pub(crate) async fn send_logout(
        &self,
        url: &Url,
        token: &str,
    ) -> Result<BmcResponse, RedfishError> {
        self.send_inner(Method::DELETE, url, Auth::Token(token), None, true, None)
            .await
    }

    async fn send_inner(
        &self,
        method: Method,
        url: &Url,
        auth: Auth<'_>,
        json: Option<&Value>,
        logout: bool,
        if_match: Option<&str>,
    ) -> Result<BmcResponse, RedfishError> {
        let path = url.path().to_string();
        let (budget, deadline_bound) = if logout {
            (LOGOUT_TIMEOUT, false)
        } else {
            self.request_budget()?
        };
        let mut request = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .header(ACCEPT, "application/json")
            .header("OData-Version", "4.0");
        request = match auth {
            Auth::None => request,
            Auth::Token(token) => request.header("X-Auth-Token", token),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        };
        if let Some(tag) = if_match {
            request = request.header(reqwest::header::IF_MATCH, tag);
        }
        if let Some(body) = json {
            request = request.json(body);
        }
        let cap = self.inner.body_cap;
        let exchange = async {
            let mut response = request
                .send()
                .await
                .map_err(|e| self.map_error(&e, &path))?;
            let status = response.status();
            let headers = response.headers().clone();
            if response.content_length().is_some_and(|n| n > cap as u64) {
                return Err(RedfishError::BodyTooLarge {
                    path: path.clone(),
                    limit: cap,
                });
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| self.map_error(&e, &path))?
            {
                if body.len() + chunk.len() > cap {
                    return Err(RedfishError::BodyTooLarge {
                        path: path.clone(),
                        limit: cap,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(BmcResponse {
                status,
                headers,
                body,
            })
        };
        let response = match tokio::time::timeout(budget, exchange).await {
            Ok(result) => result?,
            Err(_) if deadline_bound => return Err(RedfishError::DeadlineExceeded),
            Err(_) => return Err(RedfishError::Timeout(format!("{method} {path}"))),
        };
        tracing::trace!(bmc = %self.inner.base_url, %method, %path, status = response.status.as_u16(), "redfish request");
        if response.status.is_redirection() {
            return Err(RedfishError::Redirect {
                path,
                status: response.status.as_u16(),
            });
        }
        Ok(response)
    }

    /// POST a streamed body of known length (an image push): `limit` bounds the whole
    /// exchange (clipped to the deadline), the answer's body is read within the cap.
    pub(crate) async fn send_stream(
        &self,
        url: &Url,
        auth: Auth<'_>,
        content_type: &str,
        content_length: u64,
        body: reqwest::Body,
        limit: Duration,
    ) -> Result<BmcResponse, RedfishError> {
        let path = url.path().to_string();
        let budget = match self.inner.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(RedfishError::DeadlineExceeded);
                }
                limit.min(left)
            }
            None => limit,
        };
        let mut request = self
            .inner
            .http
            .post(url.clone())
            .header(ACCEPT, "application/json")
            .header("OData-Version", "4.0")
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, content_length)
            .timeout(budget)
            .body(body);
        request = match auth {
            Auth::None => request,
            Auth::Token(token) => request.header("X-Auth-Token", token),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        };
        let cap = self.inner.body_cap;
        let exchange = async {
            let mut response = request
                .send()
                .await
                .map_err(|e| self.map_error(&e, &path))?;
            let status = response.status();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| self.map_error(&e, &path))?
            {
                if body.len() + chunk.len() > cap {
                    return Err(RedfishError::BodyTooLarge {
                        path: path.clone(),
                        limit: cap,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(BmcResponse {
                status,
                headers,
                body,
            })
        };
        let response = tokio::time::timeout(budget, exchange)
            .await
            .map_err(|_| RedfishError::Timeout(format!("POST {path}")))??;
        if response.status.is_redirection() {
            return Err(RedfishError::Redirect {
                path,
                status: response.status.as_u16(),
            });
        }
        Ok(response)
    }

    /// GET a resource (no credentials or the given ones) and return it as a JSON object.
    pub(crate) async fn get_json(&self, path: &str, auth: Auth<'_>) -> Result<Value, RedfishError> {
        let url = self.resolve(path)?;
        let response = self.send(Method::GET, &url, auth, None).await?;
        if !response.status.is_success() {
            return Err(RedfishError::Status {
                method: "GET",
                path: url.path().to_string(),
                status: response.status.as_u16(),
            });
        }
        response.json_object(url.path())
    }

    /// Turns a transport error into an operator-readable one (pin mismatch first: it explains the
    /// generic TLS failure).
    fn map_error(&self, error: &reqwest::Error, path: &str) -> RedfishError {
        if let (Some(state), Some(expected)) = (&self.inner.pin_state, &self.inner.pinned) {
            if let Some(actual) = state.mismatch() {
                return RedfishError::CertificateChanged {
                    expected: expected.clone(),
                    actual,
                };
            }
        }
        if error.is_timeout() {
            return RedfishError::Timeout(path.to_string());
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        let mut innermost = error.to_string();
        let mut io_kind = None;
        while let Some(current) = source {
            if let Some(tls_error) = current.downcast_ref::<rustls::Error>() {
                return RedfishError::Tls(clip(&tls_error.to_string(), 200));
            }
            if let Some(io) = current.downcast_ref::<std::io::Error>() {
                if let Some(tls_error) =
                    io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
                {
                    return RedfishError::Tls(clip(&tls_error.to_string(), 200));
                }
                io_kind = Some(io.kind());
            }
            innermost = current.to_string();
            source = current.source();
        }
        let innermost = clip(&innermost, 200);
        use std::io::ErrorKind::*;
        match io_kind {
            Some(
                ConnectionRefused | ConnectionReset | ConnectionAborted | HostUnreachable
                | NetworkUnreachable | AddrNotAvailable,
            ) => RedfishError::Unreachable(innermost),
            Some(TimedOut) => RedfishError::Timeout(path.to_string()),
            _ if error.is_connect() => RedfishError::Unreachable(innermost),
            _ => RedfishError::Transport(innermost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> BmcClient {
        let mut config = BmcClientConfig::new(base);
        config.cert_sha256 = Some("ab".repeat(32));
        config.allow_http = true;
        BmcClient::new(config).expect("client")
    }

    #[test]
    fn resolves_paths_on_the_same_origin_only() {
        let c = client("https://127.0.0.1:9443/");
        assert_eq!(c.base_url(), "https://127.0.0.1:9443");
        assert_eq!(
            c.resolve("/redfish/v1/Systems/1#/x").expect("ok").as_str(),
            "https://127.0.0.1:9443/redfish/v1/Systems/1"
        );
        assert!(c.resolve("https://127.0.0.1:9443/redfish/v1").is_ok());
        for bad in [
            "https://127.0.0.2:9443/redfish/v1",
            "http://127.0.0.1:9443/redfish/v1",
            "https://127.0.0.1:443/redfish/v1",
            "//evil.example/redfish",
            "redfish/v1",
            "https://user@127.0.0.1:9443/redfish/v1",
            "/\\127.0.0.3:9443/redfish/v1",
            "/\\/127.0.0.3/redfish/v1",
            "/\t/127.0.0.3:9443/redfish/v1",
            "/\n/127.0.0.3/redfish/v1",
            " //127.0.0.3/redfish/v1",
            "/redfish/v1/Systems/ 1",
            "\\\\127.0.0.3\\redfish",
            "https:127.0.0.3/redfish/v1",
            "https:/\\127.0.0.3/redfish/v1",
            "",
        ] {
            assert!(
                matches!(c.resolve(bad), Err(RedfishError::ForeignUrl(_))),
                "{bad} should be refused"
            );
        }
        let d = client("https://[::1]/");
        assert!(d.resolve("https://[::1]:443/redfish/v1").is_ok());
    }

    #[test]
    fn refuses_http_without_opt_in_and_https_without_trust() {
        assert!(matches!(
            BmcClient::new(BmcClientConfig::new("http://127.0.0.1:80")),
            Err(RedfishError::HttpNotAllowed)
        ));
        assert!(matches!(
            BmcClient::new(BmcClientConfig::new("https://127.0.0.1:443")),
            Err(RedfishError::NoTrustAnchor)
        ));
        assert!(matches!(
            BmcClient::new(BmcClientConfig::new("ftp://127.0.0.1")),
            Err(RedfishError::InvalidUrl(_))
        ));
    }
}
