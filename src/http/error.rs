//! The one API error type: every failure becomes a DRF-shaped JSON body here, and only here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::db::DbError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a field map (`{"field":["msg"]}`), exactly as a DRF serializer reports it.
    #[error("validation failed")]
    Validation(Map<String, Value>),
    /// 400 `{"detail": ...}` (a conflict of state, a BMC failure, ...).
    #[error("{0}")]
    BadRequest(String),
    /// 401 with `WWW-Authenticate: Bearer realm="api"` and the given body.
    #[error("unauthorized")]
    Unauthorized(Value),
    /// 403.
    #[error("permission denied")]
    Forbidden,
    /// 404 `No <Model> matches the given query.`
    #[error("no {0} matches")]
    NoMatch(&'static str),
    /// 404 with a plain detail (`Not found.`, `Invalid page.`).
    #[error("{0}")]
    NotFound(&'static str),
    /// 405 with an `Allow` header.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The method that was used.
        method: String,
        /// Value of the `Allow` header.
        allow: String,
    },
    /// 413.
    #[error("request body too large")]
    TooLarge(String),
    /// 415.
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    /// 429 with `Retry-After`.
    #[error("throttled")]
    Throttled(u64),
    /// 503 `{"detail": ...}` (e.g. the database is down for /readyz).
    #[error("{0}")]
    Unavailable(String),
    /// 500: the cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// 500 from storage: the database error is kept as the source, logged, never shown.
    #[error("database error")]
    Db(#[source] DbError),
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 400 for one field with one message.
    pub fn field(name: &str, msg: impl Into<String>) -> ApiError {
        let mut m = Map::new();
        m.insert(name.to_string(), json!([msg.into()]));
        ApiError::Validation(m)
    }

    /// 401 `Authentication credentials were not provided.`
    pub fn not_authenticated() -> ApiError {
        ApiError::Unauthorized(json!({"detail": "Authentication credentials were not provided."}))
    }

    /// 400 `{"detail": msg}`.
    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NoMatch(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) | ApiError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> Value {
        match self {
            ApiError::Validation(m) => Value::Object(m.clone()),
            ApiError::BadRequest(d) | ApiError::TooLarge(d) | ApiError::Unavailable(d) => {
                json!({ "detail": d })
            }
            ApiError::Unauthorized(v) => v.clone(),
            ApiError::Forbidden => {
                json!({"detail": "You do not have permission to perform this action."})
            }
            ApiError::NoMatch(model) => {
                json!({ "detail": format!("No {model} matches the given query.") })
            }
            ApiError::NotFound(d) => json!({ "detail": d }),
            ApiError::MethodNotAllowed { method, .. } => {
                json!({ "detail": format!("Method \"{method}\" not allowed.") })
            }
            ApiError::UnsupportedMediaType(ct) => {
                json!({ "detail": format!("Unsupported media type \"{ct}\" in request.") })
            }
            ApiError::Throttled(secs) => {
                let unit = if *secs == 1 { "second" } else { "seconds" };
                json!({ "detail": format!("Request was throttled. Expected available in {secs} {unit}.") })
            }
            ApiError::Internal(_) | ApiError::Db(_) => {
                json!({"detail": "A server error occurred."})
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => tracing::error!(error = %cause, "request failed"),
            ApiError::Db(e) => tracing::error!(error = %e, "request failed in the database"),
            _ => {}
        }
        let status = self.status();
        let mut resp = (status, axum::Json(self.body())).into_response();
        let headers = resp.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"api\""),
                );
            }
            ApiError::Throttled(secs) => {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, v);
                }
            }
            _ => {}
        }
        resp
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::Db(e)
    }
}

/// A constraint name (Postgres) or the text SQLite reports (`table.column`), with the error to
/// answer when it is violated.
pub type ConstraintRule = (&'static str, fn() -> ApiError);

/// Maps a violated database constraint to a client error, once, instead of pre-checking in
/// every handler. `rules` pairs a constraint name (Postgres) or the columns SQLite reports
/// (`table.column`) with the error to answer.
pub trait OnConstraint<T> {
    /// Turns a matching constraint violation into `Err(map())`.
    fn on_constraint(self, rules: &[ConstraintRule]) -> Result<T, ApiError>;
}

impl<T> OnConstraint<T> for Result<T, DbError> {
    fn on_constraint(self, rules: &[ConstraintRule]) -> Result<T, ApiError> {
        self.map_err(|e| match rules.iter().find(|(key, _)| e.violates(key)) {
            Some((_, make)) => make(),
            None => e.into(),
        })
    }
}
