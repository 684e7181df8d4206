//! Firmware updates from the catalogue: `POST /api/server/{id}/firmware_update/`,
//! `POST /api/pool/{id}/firmware_update/` and `POST /api/firmware_baseline/{id}/apply/`, each
//! answering 202 with the `firmware_update` job to poll.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::jobs::JobOut;
use super::routes::{Api, Op};
use super::validate::{invalid_pk, validate_into, Errors, Field, Kind, Mode};
use super::AppState;
use crate::service::firmware::{self as service, ApplyTo, UpdateError};
use crate::service::lifecycle::StartError;

/// Body of a server firmware update.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirmwareUpdateRequest {
    /// Firmware package id.
    pub firmware: i64,
}

/// Body of a pool firmware update.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolFirmwareUpdateRequest {
    /// Firmware package id.
    pub firmware: i64,
    /// Also the servers of sub-pools (default false).
    pub include_sub_pools: Option<bool>,
}

/// Body of a baseline apply: `servers` or `resource_pool`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirmwareBaselineApplyRequest {
    /// Server ids.
    pub servers: Option<Vec<i64>>,
    /// A pool (its sub-pools included).
    pub resource_pool: Option<i64>,
}

const SERVER_FIELDS: &[Field] = &[Field::new("firmware", Kind::Pk)];
const POOL_FIELDS: &[Field] = &[
    Field::new("firmware", Kind::Pk),
    Field::new("include_sub_pools", Kind::Bool).optional(),
];
const APPLY_FIELDS: &[Field] = &[
    Field::new(
        "servers",
        Kind::IntList {
            min: None,
            max: None,
            allow_empty: false,
            max_items: Some(10_000),
        },
    )
    .optional(),
    Field::new("resource_pool", Kind::Pk).optional(),
];

/// Routes of firmware updates.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/server/{id}/firmware_update/",
            post(update_server),
            [Op::post(
                "server_firmware_update_create",
                "Install a catalogue firmware package on a server",
            )
            .body::<FirmwareUpdateRequest>()
            .accepted::<JobOut>()],
        )
        .route(
            "/api/pool/{id}/firmware_update/",
            post(update_pool),
            [Op::post(
                "pool_firmware_update_create",
                "Install a catalogue firmware package on a pool's servers",
            )
            .body::<PoolFirmwareUpdateRequest>()
            .accepted::<JobOut>()],
        )
        .route(
            "/api/firmware_baseline/{id}/apply/",
            post(apply_baseline),
            [Op::post(
                "firmware_baseline_apply_create",
                "Install what servers lack of a firmware baseline",
            )
            .body::<FirmwareBaselineApplyRequest>()
            .accepted::<JobOut>()],
        )
}

/// The answer to a refused update; `in_body` says whether servers and pools were named in
/// the body (400 Invalid pk) rather than the path (404).
fn api_error(e: UpdateError, in_body: bool) -> ApiError {
    match e {
        UpdateError::InvalidPk(field, id) => ApiError::field(field, invalid_pk(id)),
        UpdateError::NotApplicable(m) => ApiError::field("firmware", m),
        UpdateError::NoBaseline => ApiError::NoMatch("FirmwareBaseline"),
        UpdateError::Start(StartError::ServerNotFound(id)) if in_body => {
            ApiError::field("servers", invalid_pk(id))
        }
        UpdateError::Start(StartError::PoolNotFound(id)) if in_body => {
            ApiError::field("resource_pool", invalid_pk(id))
        }
        UpdateError::Start(StartError::ServerNotFound(_)) => ApiError::NoMatch("Server"),
        UpdateError::Start(StartError::PoolNotFound(_)) => ApiError::NoMatch("Pool"),
        UpdateError::Start(e @ StartError::Busy(_)) => ApiError::bad_request(e.to_string()),
        UpdateError::Start(StartError::Db(e)) | UpdateError::Db(e) => ApiError::Db(e),
    }
}

fn accepted(job: crate::db::jobs::Job) -> Response {
    (StatusCode::ACCEPTED, Json(JobOut::from(job))).into_response()
}

async fn update_server(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Response> {
    let mut errors = Errors::default();
    let v = validate_into(&body, SERVER_FIELDS, Mode::Full, &mut errors)?;
    errors.check()?;
    let firmware = v.int("firmware").unwrap_or_default();
    let job = service::update_server(&state.ctx, &user.viewer(), ids.first(), firmware)
        .await
        .map_err(|e| api_error(e, false))?;
    Ok(accepted(job))
}

async fn update_pool(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Response> {
    let mut errors = Errors::default();
    let v = validate_into(&body, POOL_FIELDS, Mode::Full, &mut errors)?;
    errors.check()?;
    let firmware = v.int("firmware").unwrap_or_default();
    let sub_pools = v.bool("include_sub_pools").unwrap_or(false);
    let job = service::update_pool(&state.ctx, &user.viewer(), ids.first(), firmware, sub_pools)
        .await
        .map_err(|e| api_error(e, false))?;
    Ok(accepted(job))
}

async fn apply_baseline(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Response> {
    let mut errors = Errors::default();
    let v = validate_into(&body, APPLY_FIELDS, Mode::Full, &mut errors)?;
    let to = match (v.ints("servers"), v.int("resource_pool")) {
        (Some(s), None) => Some(ApplyTo::Servers(s)),
        (None, Some(p)) => Some(ApplyTo::Pool(p)),
        _ => {
            errors.add("non_field_errors", "Give either servers or resource_pool.");
            None
        }
    };
    errors.check()?;
    let Some(to) = to else {
        return Err(ApiError::bad_request(
            "Give either servers or resource_pool.",
        ));
    };
    let job = service::apply_baseline(&state.ctx, &user.viewer(), ids.first(), to)
        .await
        .map_err(|e| api_error(e, true))?;
    Ok(accepted(job))
}
