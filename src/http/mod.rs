//! The HTTP edge: shared state, the router built from every resource's routes, and the
//! middleware that keeps every answer in DRF's shape.

pub mod audit;
pub mod auth;
pub mod auth_profiles;
pub mod baselines;
pub mod catalogue;
pub mod conn;
pub mod deployments;
pub mod error;
pub mod extract;
pub mod firmware_updates;
pub mod groups;
pub mod jobs;
pub mod lifecycle;
pub mod list;
pub mod media;
pub mod nodes;
pub mod openapi;
pub mod ops;
pub mod pools;
pub mod routes;
pub mod scan_ranges;
pub mod servers;
pub mod switches;
pub mod users;
pub mod validate;
pub mod wire;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::ctx::Ctx;
use auth::JwtKeys;
use error::ApiError;
use routes::{matches_pattern, Api};

/// What the web edge adds to the process context: token keys, the login throttle and the
/// identity cache.
pub struct Shared {
    /// The process context (storage, settings, metrics, tasks, the job queue).
    pub ctx: Ctx,
    /// JWT keys.
    pub jwt: JwtKeys,
    /// Recently seen token holders.
    pub identities: auth::IdentityCache,
    /// Access tokens already verified.
    pub tokens: auth::TokenCache,
}

impl Deref for Shared {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

/// Cheaply clonable handle to [`Shared`].
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl AppState {
    /// The web edge's state around `ctx`.
    pub fn new(ctx: Ctx, jwt: JwtKeys) -> AppState {
        AppState(Arc::new(Shared {
            ctx,
            jwt,
            identities: Default::default(),
            tokens: Default::default(),
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Every API route of the server.
pub fn api() -> Api {
    Api::new()
        .merge(auth_routes())
        .merge(users::routes())
        .merge(groups::routes())
        .merge(jobs::routes())
        .merge(scan_ranges::routes())
        .merge(nodes::routes())
        .merge(auth_profiles::routes())
        .merge(pools::routes())
        .merge(servers::routes())
        .merge(switches::routes())
        .merge(catalogue::routes())
        .merge(audit::routes())
        .merge(lifecycle::routes())
        .merge(deployments::routes())
        .merge(baselines::routes())
        .merge(firmware_updates::routes())
}

fn auth_routes() -> Api {
    use axum::routing::post;
    use routes::Op;
    Api::new()
        .route(
            "/api/token/",
            post(auth::token_obtain),
            [
                Op::post("token_create", "Obtain an access and a refresh token")
                    .body::<openapi::TokenObtainPair>()
                    .ok::<openapi::TokenObtainPair>()
                    .public(),
            ],
        )
        .route(
            "/api/token/refresh/",
            post(auth::token_refresh),
            [Op::post(
                "token_refresh_create",
                "Obtain a new access token from a refresh token",
            )
            .body::<openapi::TokenRefresh>()
            .ok::<openapi::TokenRefresh>()
            .public()],
        )
        .route(
            "/api/token/verify/",
            post(auth::token_verify),
            [
                Op::post("token_verify_create", "Check that a token is valid")
                    .body::<openapi::TokenVerify>()
                    .public(),
            ],
        )
        .route(
            "/api/token/blacklist/",
            post(auth::token_blacklist),
            [Op::post("token_blacklist_create", "Revoke a refresh token")
                .body::<openapi::TokenBlacklist>()
                .public()],
        )
}

#[derive(Clone, Copy)]
struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _req: &axum::http::Request<B>) -> Option<RequestId> {
        let id = hex::encode(rand::random::<[u8; 8]>());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Builds the whole HTTP service: API routes, docs, operations endpoints and middleware.
///
/// Only the layer that needs the matched route (metrics and the audit trail, [`observe`]) is
/// applied per route; everything else wraps the router once, so a request clones and boxes
/// one middleware stack instead of one per layer (see README, Design notes).
pub fn router(state: AppState) -> Router {
    let state_for_media = state.clone();
    let api = api();
    let schema = openapi::document(&api.ops);
    let (router, ops, mut paths) = api.into_router();
    let allow = Arc::new(allow_table(&ops));
    let docs = openapi::docs_router(schema);
    paths.extend_from_slice(openapi::DOC_PATHS);
    let paths = Arc::new(SlashIndex::new(&paths));
    let x_request_id = header::HeaderName::from_static("x-request-id");
    let edge_state = Arc::new(Edge {
        allow,
        state: state.clone(),
    });
    let routed = router
        .merge(docs)
        .merge(ops::routes(state.config.metrics_listen.is_none()))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state);
    // Outermost first; the slash rule rewrites URIs, so it runs before everything.
    let stack = tower::ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(paths, trailing_slash))
        .layer(SetRequestIdLayer::new(x_request_id.clone(), MakeId))
        .layer(PropagateRequestIdLayer::new(x_request_id))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<Body>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(edge_state, edge))
        .service(routed);
    Router::new()
        .merge(media::routes(state_for_media))
        .fallback_service(stack)
}

/// The router of the plain-HTTP media listener (`MOJO_MEDIA_LISTEN`): `/media/` only.
pub fn media_router(state: AppState) -> Router {
    media::router(state)
}

/// What the edge middleware needs: the `Allow` table and the settings.
struct Edge {
    allow: Arc<Vec<(&'static str, String)>>,
    state: AppState,
}

fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
}

/// The edge, outermost first: the request deadline, draining what a handler left of a body,
/// the security headers and DRF's shapes for OPTIONS and 405. One middleware rather than
/// four, in the same order, so that a request pays for one boxed service, not four.
async fn edge(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    request_deadline(&edge, req, next).await
}

/// Bounds the handling of a request by `MOJO_REQUEST_TIMEOUT` (503 past it). Uploads
/// (multipart bodies) are bounded by body progress instead, node registration by its own
/// deadline (plus a margin), and streamed answer bodies by the connection's write progress.
async fn request_deadline(edge: &Edge, req: Request, next: Next) -> Response {
    let multipart = is_multipart(&req);
    if multipart {
        return drain_unread_body(edge, true, req, next).await;
    }
    let config = &edge.state.config;
    let mut limit = config.request_timeout;
    if req.uri().path().ends_with("/register/") {
        limit = limit.max(config.register_timeout + std::time::Duration::from_secs(10));
    }
    match tokio::time::timeout(limit, drain_unread_body(edge, false, req, next)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            ApiError::Unavailable("The request did not finish in time.".into()).into_response()
        }
    }
}

/// A request body the handler may leave unread; what is left is drained afterwards.
struct SharedBody(Arc<std::sync::Mutex<Option<Body>>>);

impl axum::body::HttpBody for SharedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(body) = slot.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        let polled = std::pin::Pin::new(body).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None | Some(Err(_)))) {
            *slot = None;
        }
        polled
    }
}

/// Reads what a handler left of a request body (at most `MOJO_MAX_BODY` bytes) before the
/// answer goes out: a POST refused before its body was read (401, 403) then ends its HTTP/2
/// stream cleanly instead of resetting it under a client still sending. Multipart uploads
/// are left alone (they may be far larger).
async fn drain_unread_body(edge: &Edge, multipart: bool, req: Request, next: Next) -> Response {
    if multipart || req.method() == Method::GET || req.method() == Method::HEAD {
        return security_headers(edge, req, next).await;
    }
    let (parts, body) = req.into_parts();
    let slot = Arc::new(std::sync::Mutex::new(Some(body)));
    let req = Request::from_parts(parts, Body::new(SharedBody(slot.clone())));
    let resp = security_headers(edge, req, next).await;
    let left = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(body) = left {
        let limit = usize::try_from(edge.state.config.max_body).unwrap_or(usize::MAX);
        let _ = axum::body::to_bytes(body, limit).await;
    }
    resp
}

/// `X-Content-Type-Options: nosniff` on every answer and, over TLS,
/// `Strict-Transport-Security`.
async fn security_headers(edge: &Edge, req: Request, next: Next) -> Response {
    let mut resp = drf_shapes(&edge.allow, req, next).await;
    let headers = resp.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if edge.state.config.tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not found.")
}

/// The route patterns, for the slash rule: literal ones by text, those with parameters by
/// their number of segments (a lookup instead of a walk over every pattern).
struct SlashIndex {
    literal: std::collections::HashSet<&'static str>,
    with_params: Vec<(usize, &'static str)>,
}

impl SlashIndex {
    fn new(paths: &[&'static str]) -> SlashIndex {
        let mut literal = std::collections::HashSet::new();
        let mut with_params = Vec::new();
        for p in paths {
            if p.contains('{') {
                with_params.push((p.matches('/').count(), *p));
            } else {
                literal.insert(*p);
            }
        }
        SlashIndex {
            literal,
            with_params,
        }
    }

    fn matches(&self, path: &str) -> bool {
        if self.literal.contains(path) {
            return true;
        }
        let segments = path.matches('/').count();
        self.with_params
            .iter()
            .any(|(n, p)| *n == segments && matches_pattern(p, path))
    }
}

/// Routes end in `/`: a GET/HEAD without it is redirected (301, query kept); other methods
/// are served as if the slash were there. Only paths that would match a route are touched.
async fn trailing_slash(
    State(paths): State<Arc<SlashIndex>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if !path.ends_with('/') {
        let slashed = format!("{path}/");
        if paths.matches(&slashed) {
            let target = match req.uri().query() {
                Some(q) => format!("{slashed}?{q}"),
                None => slashed,
            };
            if req.method() == Method::GET || req.method() == Method::HEAD {
                let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
                if let Ok(v) = HeaderValue::from_str(&target) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                return resp;
            }
            if let Ok(uri) = target.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
        }
    }
    next.run(req).await
}

/// The methods each route pattern answers, for `Allow` headers.
fn allow_table(ops: &[routes::Op]) -> Vec<(&'static str, String)> {
    let mut table: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for op in ops {
        match table.iter_mut().find(|(p, _)| *p == op.path) {
            Some((_, methods)) => methods.push(op.method),
            None => table.push((op.path, vec![op.method])),
        }
    }
    table
        .into_iter()
        .map(|(p, mut methods)| {
            if methods.contains(&"GET") {
                methods.push("HEAD");
            }
            methods.push("OPTIONS");
            (p, methods.join(", "))
        })
        .collect()
}

/// Gives axum's own 405 DRF's JSON body and a complete `Allow` header.
async fn drf_shapes(allow: &[(&'static str, String)], req: Request, next: Next) -> Response {
    // Cheap clones (shared buffers); turned into text only for a 405.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    if method == Method::OPTIONS {
        if let Some((_, methods)) = allow.iter().find(|(p, _)| matches_pattern(p, uri.path())) {
            // DRF answers OPTIONS with 200, the `Allow` header and the view's metadata.
            let mut resp = axum::Json(serde_json::json!({
                "renders": ["application/json"],
                "parses": [
                    "application/json",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data"
                ]
            }))
            .into_response();
            if let Ok(v) = HeaderValue::from_str(methods) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
            return resp;
        }
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = allow
            .iter()
            .find(|(p, _)| matches_pattern(p, uri.path()))
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        return ApiError::MethodNotAllowed {
            method: method.to_string(),
            allow,
        }
        .into_response();
    }
    resp
}

/// The per-route layer: request metrics around the audit trail (both need the matched route).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let resp = audit::record_writes(State(state.clone()), req, next).await;
    state.metrics.observe_request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method.as_str(),
        resp.status().as_u16(),
        start.elapsed(),
    );
    resp
}
