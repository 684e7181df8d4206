//! Operations endpoints: liveness, readiness and Prometheus metrics (not in the API schema).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::error::ApiError;
use super::AppState;

/// `/healthz`, `/readyz` and, unless it has a listener of its own (`MOJO_METRICS_LISTEN`),
/// `/metrics`.
pub fn routes(with_metrics: bool) -> Router<AppState> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/healthz/", get(healthz))
        .route("/readyz", get(readyz))
        .route("/readyz/", get(readyz));
    if with_metrics {
        router.merge(metrics_routes())
    } else {
        router
    }
}

fn metrics_routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/", get(metrics))
}

/// The service of the separate metrics listener: `/metrics` only, plain HTTP.
pub fn metrics_router(state: AppState) -> Router {
    metrics_routes()
        .fallback(|| async { ApiError::NotFound("Not found.") })
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match state.db.ping().await {
        Ok(()) => Ok(Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::Unavailable(
                "The database is not reachable.".into(),
            ))
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for refresh in &state.gauges {
        refresh(&state.ctx).await;
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
