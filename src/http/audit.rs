//! The audit trail at the web edge: a layer that records every successful write (after a 2xx
//! answer to POST, PUT, PATCH or DELETE; the token endpoints excepted) and
//! `GET /api/audit_log/` for superusers.
//!
//! The object kind and id come from the route (`/api/pool/{id}/assign_servers/` is kind
//! `pool`, id from the path, summary `assign_servers pool 5`); a create's id from the `id` of
//! its answer. The summary names the action, never a value of the request, so no password or
//! credential can reach the log.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{client_ip, CurrentUser, Superuser};
use super::error::ApiResult;
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::wire::render_time;
use super::AppState;
use crate::db::audit::{AuditEntry, AuditWrite, AUDIT_COLUMNS};

/// Where the authentication extractor leaves the caller of a request for the audit layer.
#[derive(Clone, Default)]
pub struct CallerSlot(Arc<Mutex<Option<(i64, String)>>>);

impl CallerSlot {
    /// Records the authenticated caller.
    pub fn set(&self, user: &CurrentUser) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some((user.id, user.username.clone()));
    }

    fn get(&self) -> Option<(i64, String)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Largest answer body read back for a created object's id.
const ID_PEEK_LIMIT: usize = 1 << 20;

/// Kind, id and action of a write, from its route pattern and path.
fn object_of(pattern: &str, path: &str) -> (String, Option<String>, Option<String>) {
    let pat: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let got: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut kind = String::new();
    let mut id = None;
    let mut last_literal = "";
    let mut after_param = None;
    for (i, seg) in pat.iter().enumerate() {
        if seg.starts_with('{') {
            kind = last_literal.to_string();
            id = got.get(i).map(|s| s.to_string());
            after_param = None;
        } else {
            if *seg != "api" {
                last_literal = seg;
            }
            if id.is_some() {
                after_param = Some(seg.to_string());
            }
        }
    }
    if id.is_none() {
        kind = last_literal.to_string();
    }
    (kind, id, after_param)
}

fn summary(method: &Method, kind: &str, id: Option<&str>, action: Option<&str>) -> String {
    let verb = match (action, method.as_str()) {
        (Some(a), _) => a,
        (None, "POST") => "created",
        (None, "PUT" | "PATCH") => "updated",
        (None, "DELETE") => "deleted",
        (None, other) => other,
    };
    match id {
        Some(id) => format!("{verb} {kind} {id}"),
        None => format!("{verb} {kind}"),
    }
}

/// Records successful writes (see the module documentation).
pub async fn record_writes(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let write = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let path = req.uri().path().to_string();
    if !write || path.starts_with("/api/token/") {
        return next.run(req).await;
    }
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let source = client_ip(req.headers(), peer, &state.config.trusted_proxies);
    let slot = CallerSlot::default();
    req.extensions_mut().insert(slot.clone());
    let resp = next.run(req).await;
    let Some(pattern) = pattern else {
        return resp;
    };
    if !resp.status().is_success() {
        return resp;
    }
    let (kind, mut id, action) = object_of(&pattern, &path);
    let mut resp = resp;
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if id.is_none() && json {
        let (parts, body) = resp.into_parts();
        match axum::body::to_bytes(body, ID_PEEK_LIMIT).await {
            Ok(bytes) => {
                id = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("id").map(super::validate::plain));
                resp = Response::from_parts(parts, Body::from(bytes));
            }
            Err(_) => {
                resp = Response::from_parts(parts, Body::empty());
            }
        }
    }
    let (user_id, username) = match slot.get() {
        Some((id, name)) => (Some(id), name),
        None => (None, String::new()),
    };
    let entry = AuditWrite {
        user_id,
        username,
        source: source.to_string(),
        method: method.to_string(),
        path,
        status: resp.status().as_u16(),
        summary: summary(&method, &kind, id.as_deref(), action.as_deref()),
        object_kind: kind,
        object_id: id,
    };
    crate::service::audit::record(&state.db, &entry).await;
    resp
}

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditLog)]
pub struct AuditLogOut {
    /// Id.
    pub id: i64,
    /// When the write was answered.
    pub created_at: String,
    /// Id of the user who wrote (null once the user is deleted, or for anonymous writes).
    pub user: Option<i64>,
    /// Name of that user at the time.
    pub username: String,
    /// Client address (see MOJO_TRUSTED_PROXIES).
    pub source: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Answer status.
    pub status: u16,
    /// Kind of object written, from the route (`pool`, `users`, `node`, ...).
    pub object_kind: String,
    /// Id of the object written, when known.
    pub object_id: Option<String>,
    /// What was done (never a request value).
    pub summary: String,
}

impl From<AuditEntry> for AuditLogOut {
    fn from(a: AuditEntry) -> Self {
        let e = a.entry;
        AuditLogOut {
            id: a.id,
            created_at: render_time(&a.created_at),
            user: e.user_id,
            username: e.username,
            source: e.source,
            method: e.method,
            path: e.path,
            status: e.status,
            object_kind: e.object_kind,
            object_id: e.object_id,
            summary: e.summary,
        }
    }
}

/// The list declaration of the audit log.
pub static AUDIT_LIST: ListSpec = ListSpec {
    model: "AuditLog",
    from: "audit_log a",
    columns: AUDIT_COLUMNS,
    search: &[
        ("username", "a.username"),
        ("path", "a.path"),
        ("summary", "a.summary"),
    ],
    filters: &[
        Filter {
            param: "user",
            column: "a.user_id",
            kind: FilterKind::Number,
        },
        Filter {
            param: "object_kind",
            column: "a.object_kind",
            kind: FilterKind::Exact,
        },
        Filter {
            param: "object_id",
            column: "a.object_id",
            kind: FilterKind::Exact,
        },
    ],
    ordering: &[("id", "a.id"), ("created_at", "a.created_at")],
    id_column: "a.id",
    shape: Shape::Envelope,
    scope: None,
};

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new().route(
        "/api/audit_log/",
        get(list_audit),
        [Op::get(
            "audit_log_list",
            "Successful writes through the API, newest first (superusers)",
        )
        .list::<AuditLogOut>(&AUDIT_LIST)],
    )
}

async fn list_audit(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    q: ListQuery,
) -> ApiResult<Response> {
    let q = q.default_ordering("-created_at,-id");
    list::respond(&state.db, &AUDIT_LIST, &q, &user, |r| {
        AuditEntry::from_row(r).map(AuditLogOut::from)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_come_from_the_route() {
        assert_eq!(
            object_of(
                "/api/pool/{id}/assign_servers/",
                "/api/pool/5/assign_servers/"
            ),
            (
                "pool".into(),
                Some("5".into()),
                Some("assign_servers".into())
            )
        );
        assert_eq!(
            object_of("/api/users/", "/api/users/"),
            ("users".into(), None, None)
        );
        assert_eq!(
            object_of("/api/users/{id}/", "/api/users/3/"),
            ("users".into(), Some("3".into()), None)
        );
    }
}
