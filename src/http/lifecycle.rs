//! Lifecycle actions on servers and pools that answer 202 with a job: power
//! (`/api/server/{id}/power/`, `/api/pool/{id}/power/`) and inventory refresh
//! (`/api/server/{id}/refresh/`). Anyone who can see the server or pool may run them; a busy
//! server is refused with 400 naming the job that holds it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::jobs::JobOut;
use super::list;
use super::pools::can_see_pool;
use super::routes::{Api, Op};
use super::servers::SERVER_LIST;
use super::validate::{validate, Field, Kind, Mode};
use super::AppState;
use crate::db::servers::Server;
use crate::lifecycle::{inventory, power};
use crate::redfish::PowerAction;
use crate::service::lifecycle::{self as lc, StartError};

/// A power action on one server.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PowerRequest {
    /// `On` | `ForceOff` | `GracefulShutdown` | `GracefulRestart` | `ForceRestart` | `PowerCycle`.
    #[schema(value_type = String, example = "On")]
    pub action: String,
}

/// A power action on the servers of a pool.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PoolPowerRequest {
    /// `On` | `ForceOff` | `GracefulShutdown` | `GracefulRestart` | `ForceRestart` | `PowerCycle`.
    #[schema(value_type = String, example = "GracefulShutdown")]
    pub action: String,
    /// Also the servers of every sub-pool, at any depth (default false).
    pub include_sub_pools: Option<bool>,
}

const POWER_FIELDS: &[Field] = &[
    Field::new("action", Kind::Choice(PowerAction::NAMES)),
    Field::new("include_sub_pools", Kind::Bool).optional(),
];

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/server/{id}/power/",
            post(server_power),
            [Op::post(
                "server_power_create",
                "Power a server on, off or restart it (a job)",
            )
            .body::<PowerRequest>()
            .accepted::<JobOut>()],
        )
        .route(
            "/api/pool/{id}/power/",
            post(pool_power),
            [Op::post(
                "pool_power_create",
                "Power the servers of a pool (one job over all of them)",
            )
            .body::<PoolPowerRequest>()
            .accepted::<JobOut>()],
        )
        .route(
            "/api/server/{id}/refresh/",
            post(server_refresh),
            [Op::post(
                "server_refresh_create",
                "Re-read the whole inventory of a server (a job)",
            )
            .accepted::<JobOut>()],
        )
}

/// The answer to a job that was not started.
fn refused(e: StartError) -> ApiError {
    match e {
        StartError::ServerNotFound(_) => ApiError::NoMatch("Server"),
        StartError::PoolNotFound(_) => ApiError::NoMatch("Pool"),
        e @ StartError::Busy(_) => ApiError::bad_request(e.to_string()),
        StartError::Db(e) => e.into(),
    }
}

fn accepted(job: crate::db::jobs::Job) -> Response {
    (StatusCode::ACCEPTED, Json(JobOut::from(job))).into_response()
}

fn action_of(body: &Fields) -> ApiResult<(PowerAction, bool)> {
    let v = validate(body, POWER_FIELDS, Mode::Full)?;
    let action = v
        .str("action")
        .as_deref()
        .and_then(PowerAction::parse)
        .ok_or_else(|| ApiError::field("action", "This field is required."))?;
    Ok((action, v.bool("include_sub_pools").unwrap_or(false)))
}

async fn server_power(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Response> {
    let server = list::fetch_one(
        &state.db,
        &SERVER_LIST,
        &user,
        ids.first(),
        Server::from_row,
    )
    .await?;
    let (action, _) = action_of(&body)?;
    let job = lc::start_job(
        &state.ctx,
        &user.viewer(),
        power::KIND,
        &[server.id],
        &power::params(action),
    )
    .await
    .map_err(refused)?;
    Ok(accepted(job))
}

async fn pool_power(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Response> {
    let pool = ids.first();
    if !can_see_pool(&state.db, &user, pool).await? {
        return Err(ApiError::NoMatch("Pool"));
    }
    let (action, sub_pools) = action_of(&body)?;
    let job = lc::start_pool_job(
        &state.ctx,
        &user.viewer(),
        power::KIND,
        pool,
        sub_pools,
        &power::params(action),
    )
    .await
    .map_err(refused)?;
    Ok(accepted(job))
}

async fn server_refresh(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Response> {
    let server = list::fetch_one(
        &state.db,
        &SERVER_LIST,
        &user,
        ids.first(),
        Server::from_row,
    )
    .await?;
    let job = lc::start_job(
        &state.ctx,
        &user.viewer(),
        inventory::KIND,
        &[server.id],
        &serde_json::json!({}),
    )
    .await
    .map_err(refused)?;
    Ok(accepted(job))
}
