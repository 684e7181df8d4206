//! Sending requests on a [`BmcClient`]: credentials, the per-request time limit clipped to the
//! operation's deadline, the body cap, no redirects, and transport errors an operator can read.

use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use super::client::{BmcClient, LOGOUT_TIMEOUT};
use super::error::{clip, RedfishError};

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

impl<'a> Auth<'a> {
    /// Adds the credentials to a request.
    fn apply(self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Token(token) => request.header("X-Auth-Token", token),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        }
    }
}

impl BmcClient {
    /// Time left for a request, or why there is none.
    /// The bool is true when the deadline, not the request limit, bounds the request.
    fn request_budget(&self) -> Result<(Duration, bool), RedfishError> {
        self.budget(self.inner.request_timeout)
    }

    /// `own`, clipped to the time left before the deadline; the bool as for `request_budget`.
    fn budget(&self, own: Duration) -> Result<(Duration, bool), RedfishError> {
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
        request = auth.apply(request);
        if let Some(tag) = if_match {
            request = request.header(reqwest::header::IF_MATCH, tag);
        }
        if let Some(body) = json {
            request = request.json(body);
        }
        let cap = self.inner.body_cap;
        let exchange = async {
            let response = request
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
            let body = self.read_body(response, &path).await?;
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
        let (budget, _) = self.budget(limit)?;
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
        request = auth.apply(request);
        let exchange = async {
            let response = request
                .send()
                .await
                .map_err(|e| self.map_error(&e, &path))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = self.read_body(response, &path).await?;
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

    /// Reads a response's body, refusing it once it grows past the cap.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        path: &str,
    ) -> Result<Vec<u8>, RedfishError> {
        let cap = self.inner.body_cap;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.map_error(&e, path))?
        {
            if body.len() + chunk.len() > cap {
                return Err(RedfishError::BodyTooLarge {
                    path: path.to_string(),
                    limit: cap,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
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
