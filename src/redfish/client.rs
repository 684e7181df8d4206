//! HTTP client for authenticated work on one BMC.
//!
//! The client only ever talks to the BMC's own scheme://host:port: it follows no redirects, and
//! every URL taken from a response must resolve to that origin. Over HTTPS it trusts only the
//! certificate recorded at discovery (and/or a CA bundle); plain HTTP needs an explicit opt-in.
//! Each request has a time limit, clipped to the operation's overall deadline, and a body cap.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use url::Url;

use super::error::{clip, RedfishError};
use super::journal::Journal;
use super::origin::same_origin_ref;
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

/// What a client holds; the request side ([`super::exchange`]) reads it too.
pub(super) struct ClientInner {
    pub(super) http: reqwest::Client,
    pub(super) origin: Url,
    pub(super) base_url: String,
    pub(super) pinned: Option<String>,
    pub(super) pin_state: Option<Arc<PinState>>,
    pub(super) deadline: Option<Instant>,
    pub(super) request_timeout: Duration,
    pub(super) body_cap: usize,
    pub(super) tracker: Option<TaskTracker>,
    pub(super) journal: Option<Journal>,
}

/// A client bound to one BMC origin; cheap to clone.
#[derive(Clone)]
pub struct BmcClient {
    pub(super) inner: Arc<ClientInner>,
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
