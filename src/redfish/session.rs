//! Login with guaranteed logout.
//!
//! BMCs have few session slots and leaked sessions are the most common complaint against
//! management tools, so a session is deleted on every path: `with_session` logs out after the work,
//! `Session::logout` does it explicitly, and dropping the last handle of a session that was not
//! logged out spawns the DELETE as a last resort (onto the configured `TaskTracker`, so shutdown
//! waits for it).
//!
//! Lockout policies count failed logins, so each credential is tried at most once, in order, and
//! login stops at the first accepted one.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use super::client::BmcClient;
use super::error::RedfishError;
use super::exchange::Auth;

/// Default path of the sessions collection.
const SESSIONS_PATH: &str = "/redfish/v1/SessionService/Sessions";
/// What Basic authentication is verified against.
const BASIC_CHECK_PATH: &str = "/redfish/v1/Systems";

/// How an accepted credential authenticates later requests.
enum SessionAuth {
    /// A Redfish session: token header, deleted on logout.
    Token {
        /// The `X-Auth-Token` value.
        token: String,
        /// The session resource to DELETE.
        location: Url,
    },
    /// HTTP Basic on every request (sessions unsupported or full): nothing to delete.
    Basic {
        /// User name.
        username: String,
        /// Password, kept in memory only for this session's lifetime.
        password: String,
    },
}

struct SessionInner {
    client: BmcClient,
    credential_index: usize,
    username: String,
    auth: SessionAuth,
    /// The service root read (without credentials) before logging in, when it could be.
    service_root: Option<Value>,
    logged_out: AtomicBool,
}

/// An authenticated session on one BMC; clones share it (and its single logout).
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never prints the token or the password.
        f.debug_struct("Session")
            .field("bmc", &self.inner.client.base_url())
            .field("credential_index", &self.inner.credential_index)
            .field("username", &self.inner.username)
            .field("basic_auth", &self.uses_basic_auth())
            .finish()
    }
}

impl Session {
    /// Index (0-based) of the credential the BMC accepted.
    pub fn credential_index(&self) -> usize {
        self.inner.credential_index
    }

    /// User name of the accepted credential.
    pub fn username(&self) -> &str {
        &self.inner.username
    }

    /// True when the BMC had no session to give and requests use HTTP Basic.
    pub fn uses_basic_auth(&self) -> bool {
        matches!(self.inner.auth, SessionAuth::Basic { .. })
    }

    /// The session resource that logout deletes (None with Basic auth).
    pub fn session_url(&self) -> Option<&str> {
        match &self.inner.auth {
            SessionAuth::Token { location, .. } => Some(location.as_str()),
            SessionAuth::Basic { .. } => None,
        }
    }

    /// The service root as read before logging in (None when it could not be read).
    pub fn service_root(&self) -> Option<&Value> {
        self.inner.service_root.as_ref()
    }

    /// The client this session runs on.
    pub fn client(&self) -> &BmcClient {
        &self.inner.client
    }

    pub(super) fn auth(&self) -> Auth<'_> {
        match &self.inner.auth {
            SessionAuth::Token { token, .. } => Auth::Token(token),
            SessionAuth::Basic { username, password } => Auth::Basic(username, password),
        }
    }

    /// GET a resource of this BMC (path or same-origin URL) as a JSON object.
    pub async fn get_json(&self, path: &str) -> Result<Value, RedfishError> {
        self.inner.client.get_json(path, self.auth()).await
    }

    /// Deletes the session on the BMC; idempotent, and a no-op with Basic auth.
    pub async fn logout(&self) -> Result<(), RedfishError> {
        if self.inner.logged_out.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        match &self.inner.auth {
            SessionAuth::Token { token, location } => {
                delete_session(&self.inner.client, location, token).await
            }
            SessionAuth::Basic { .. } => Ok(()),
        }
    }
}

/// DELETE of a session; a 404 means it is already gone, which is what logout wants.
async fn delete_session(
    client: &BmcClient,
    location: &Url,
    token: &str,
) -> Result<(), RedfishError> {
    let response = client.send_logout(location, token).await?;
    if response.status.is_success() || response.status == StatusCode::NOT_FOUND {
        tracing::debug!(
            bmc = client.base_url(),
            session = location.path(),
            "redfish logout"
        );
        if let Some(journal) = client.journal() {
            journal.0.closed(location.as_str()).await;
        }
        Ok(())
    } else {
        Err(RedfishError::Status {
            method: "DELETE",
            path: location.path().to_string(),
            status: response.status.as_u16(),
        })
    }
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        if self.logged_out.load(Ordering::SeqCst) {
            return;
        }
        let SessionAuth::Token { token, location } = &self.auth else {
            return;
        };
        // Last resort (cancelled work, or a caller that forgot logout): the DELETE cannot run
        // inside drop, so it runs as a task. It is tracked when the app gave a tracker.
        tracing::warn!(
            bmc = self.client.base_url(),
            session = location.path(),
            "redfish session dropped without logout; deleting it in the background"
        );
        let client = self.client.clone();
        let token = token.clone();
        let location = location.clone();
        let task = async move {
            if let Err(error) = delete_session(&client, &location, &token).await {
                tracing::warn!(bmc = client.base_url(), session = location.path(), %error, "redfish logout after drop failed");
            }
        };
        if let Some(tracker) = self.client.tracker() {
            tracker.spawn(task);
        } else if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(task);
        } else {
            tracing::error!(
                bmc = self.client.base_url(),
                "redfish session leaked: no runtime to delete it"
            );
        }
    }
}

/// True when a service root advertises a session service (`SessionService` or `Links.Sessions`).
fn advertises_sessions(root: &Value) -> bool {
    root.get("SessionService").is_some_and(|v| !v.is_null())
        || root
            .pointer("/Links/Sessions")
            .is_some_and(|v| !v.is_null())
}

impl BmcClient {
    /// Deletes a session opened earlier (by this process or another one that died), given its
    /// URL and token; the URL must be on this BMC. A session already gone counts as deleted.
    pub async fn delete_leftover_session(
        &self,
        session_url: &str,
        token: &str,
    ) -> Result<(), RedfishError> {
        let location = self.resolve(session_url)?;
        delete_session(self, &location, token).await
    }
}

/// What one login attempt with one credential gave.
enum Attempt {
    Accepted(SessionAuth),
    Rejected,
    SessionsUnavailable(StatusCode),
}

impl BmcClient {
    /// Tries the credentials in order, once each, and returns a session for the first accepted.
    ///
    /// Sessions first (`POST .../Sessions`); HTTP Basic (checked with `GET /redfish/v1/Systems`)
    /// when the service root advertises no session service, or when the BMC does not support
    /// sessions (404/405/501) or has none left (503). A 401/403
    /// moves on to the next credential. Errors that are not about the credential (unreachable, TLS,
    /// certificate changed, deadline) stop at once.
    pub async fn login<U, P>(&self, credentials: &[(U, P)]) -> Result<Session, RedfishError>
    where
        U: AsRef<str>,
        P: AsRef<str>,
    {
        if credentials.is_empty() {
            return Err(RedfishError::NoCredentials);
        }
        // The unauthenticated service root checks reachability and the certificate before any
        // credential is sent, and says where the sessions collection is.
        let service_root = match self.get_json("/redfish/v1/", Auth::None).await {
            Ok(root) => Some(root),
            Err(error) if error.is_fatal() => return Err(error),
            Err(_) => None,
        };
        let sessions_path = service_root
            .as_ref()
            .and_then(|root| root.pointer("/Links/Sessions/@odata.id"))
            .and_then(Value::as_str)
            .unwrap_or(SESSIONS_PATH)
            .to_string();
        let sessions_url = self.resolve(&sessions_path)?;

        // A root that advertises no session service (neither `SessionService` nor
        // `Links.Sessions`) gets HTTP Basic at once: such BMCs often answer the session POST with
        // 401, which would burn every credential without ever trying the right one properly.
        let mut use_sessions = service_root.as_ref().is_none_or(advertises_sessions);
        if !use_sessions {
            tracing::info!(
                bmc = self.base_url(),
                "redfish service root advertises no sessions; using basic auth"
            );
        }
        let mut rejected = 0usize;
        let mut last_error: Option<RedfishError> = None;
        for (index, (username, password)) in credentials.iter().enumerate() {
            let (username, password) = (username.as_ref(), password.as_ref());
            let mut attempt = if use_sessions {
                self.try_session(&sessions_url, username, password).await
            } else {
                self.try_basic(username, password).await
            };
            if let Ok(Attempt::SessionsUnavailable(status)) = &attempt {
                tracing::info!(
                    bmc = self.base_url(),
                    status = status.as_u16(),
                    "redfish sessions unavailable; using basic auth"
                );
                use_sessions = false;
                attempt = self.try_basic(username, password).await;
            }
            match attempt {
                Ok(Attempt::Accepted(auth)) => {
                    tracing::info!(
                        bmc = self.base_url(),
                        credential_index = index,
                        username,
                        basic_auth = matches!(auth, SessionAuth::Basic { .. }),
                        "redfish login accepted"
                    );
                    return Ok(Session {
                        inner: Arc::new(SessionInner {
                            client: self.clone(),
                            credential_index: index,
                            username: username.to_string(),
                            auth,
                            service_root,
                            logged_out: AtomicBool::new(false),
                        }),
                    });
                }
                Ok(Attempt::Rejected) => {
                    tracing::info!(
                        bmc = self.base_url(),
                        credential_index = index,
                        username,
                        "redfish login rejected"
                    );
                    rejected += 1;
                }
                Ok(Attempt::SessionsUnavailable(_)) => {
                    // try_basic never answers this; kept total for the match.
                    rejected += 1;
                }
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => {
                    tracing::warn!(bmc = self.base_url(), credential_index = index, %error, "redfish login failed");
                    last_error = Some(error);
                }
            }
        }
        match last_error {
            Some(error) if rejected == 0 => Err(error),
            _ => Err(RedfishError::NoCredentialAccepted),
        }
    }

    /// Logs in, runs `work` with the session, and always logs out afterwards.
    ///
    /// Returns the accepted credential's index with the work's result. If this future is dropped
    /// midway (cancellation), the session's drop guard deletes the session in the background.
    pub async fn with_session<U, P, F, Fut, T>(
        &self,
        credentials: &[(U, P)],
        work: F,
    ) -> Result<(usize, T), RedfishError>
    where
        U: AsRef<str>,
        P: AsRef<str>,
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = T>,
    {
        let session = self.login(credentials).await?;
        let index = session.credential_index();
        let output = work(session.clone()).await;
        if let Err(error) = session.logout().await {
            tracing::warn!(bmc = self.base_url(), %error, "redfish logout failed");
        }
        Ok((index, output))
    }

    async fn try_session(
        &self,
        sessions_url: &Url,
        username: &str,
        password: &str,
    ) -> Result<Attempt, RedfishError> {
        let body = json!({ "UserName": username, "Password": password });
        let response = self
            .send(Method::POST, sessions_url, Auth::None, Some(&body))
            .await?;
        match response.status {
            StatusCode::OK | StatusCode::CREATED => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Ok(Attempt::Rejected),
            StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED
            | StatusCode::SERVICE_UNAVAILABLE => {
                return Ok(Attempt::SessionsUnavailable(response.status))
            }
            status => {
                return Err(RedfishError::Status {
                    method: "POST",
                    path: sessions_url.path().to_string(),
                    status: status.as_u16(),
                })
            }
        }
        let token = response.header("x-auth-token").map(str::to_string);
        let document = response.json_object(sessions_url.path()).ok();
        let location = self.session_location(&response, document.as_ref(), sessions_url);
        match (token, location) {
            (Some(token), Some(location)) => {
                // Recorded before the token is used: a process killed from here on leaves a
                // record that lets the session be deleted later.
                if let Some(journal) = self.journal() {
                    if let Err(reason) = journal
                        .0
                        .opened(self.base_url(), location.as_str(), &token)
                        .await
                    {
                        if let Err(error) = delete_session(self, &location, &token).await {
                            tracing::warn!(bmc = self.base_url(), %error, "redfish logout of an unrecorded session failed");
                        }
                        return Err(RedfishError::Journal(reason.to_string()));
                    }
                }
                Ok(Attempt::Accepted(SessionAuth::Token { token, location }))
            }
            (None, Some(location)) => {
                // Without a token the session is unusable and cannot be deleted: nothing to undo.
                Err(RedfishError::BadSession(format!(
                    "no X-Auth-Token for session {}",
                    location.path()
                )))
            }
            (Some(_), None) => {
                tracing::error!(
                    bmc = self.base_url(),
                    "redfish session created without a usable URL; it cannot be deleted"
                );
                Err(RedfishError::BadSession(
                    "no session URL to log out with".into(),
                ))
            }
            (None, None) => Err(RedfishError::BadSession(
                "no X-Auth-Token and no session URL".into(),
            )),
        }
    }

    /// The session URL: `Location`, else the body's `@odata.id`, else the collection plus `Id`.
    fn session_location(
        &self,
        response: &super::exchange::BmcResponse,
        document: Option<&Value>,
        sessions_url: &Url,
    ) -> Option<Url> {
        let from_header = response.header("location").map(str::to_string);
        let from_body = document
            .and_then(|d| d.get("@odata.id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let from_id = document
            .and_then(|d| d.get("Id"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(|id| format!("{}/{id}", sessions_url.path().trim_end_matches('/')));
        [from_header, from_body, from_id]
            .into_iter()
            .flatten()
            .find_map(|candidate| match self.resolve(&candidate) {
                Ok(url) => Some(url),
                Err(error) => {
                    tracing::warn!(bmc = self.base_url(), %error, "redfish session URL refused");
                    None
                }
            })
    }

    async fn try_basic(&self, username: &str, password: &str) -> Result<Attempt, RedfishError> {
        let url = self.resolve(BASIC_CHECK_PATH)?;
        let response = self
            .send(Method::GET, &url, Auth::Basic(username, password), None)
            .await?;
        match response.status {
            status if status.is_success() => Ok(Attempt::Accepted(SessionAuth::Basic {
                username: username.to_string(),
                password: password.to_string(),
            })),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(Attempt::Rejected),
            status => Err(RedfishError::Status {
                method: "GET",
                path: url.path().to_string(),
                status: status.as_u16(),
            }),
        }
    }
}
