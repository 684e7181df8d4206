//! OS deployments: `POST /api/server/{id}/deploy/` (202 with the deployment and its one-time
//! callback URL), `/api/deployment/` (list, detail, cancel; the starter and superusers) and the
//! installer's callback `POST /media/callback/{token}/` (no other credential).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{validate, Field, Kind, Mode};
use super::wire::render_time;
use super::AppState;
use crate::db::deployments::{Deployment, DEPLOYMENT_COLUMNS, STATUSES};
use crate::service::deployments::{self as svc, DeployError, EndError, Report};
use crate::service::lifecycle::StartError;

/// A deployment.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentOut {
    /// Id.
    pub id: i64,
    /// The server (null once deleted).
    pub server: Option<i64>,
    /// The OS image (null once deleted).
    pub os: Option<i64>,
    /// `queued` | `running` | `complete` | `failed` | `cancelled`.
    pub status: String,
    /// Step reached: `insert_media` | `set_boot` | `reset` | `installing` | `done`.
    pub step: String,
    /// 0-100.
    pub progress: i64,
    /// Why it failed (the installer's message, the BMC's, or the timeout).
    pub error: Option<String>,
    /// The job (kind `deployment`) that runs it.
    pub job: Option<i64>,
    /// The installer's callback URL: only in the answer that started the deployment, null in
    /// every later read.
    pub callback_url: Option<String>,
    /// Who started it.
    pub created_by: Option<i64>,
    /// Started at.
    pub created_at: String,
    /// Ended at.
    pub finished_at: Option<String>,
}

impl From<Deployment> for DeploymentOut {
    fn from(d: Deployment) -> Self {
        DeploymentOut {
            id: d.id,
            server: d.server,
            os: d.os,
            status: d.status,
            step: d.step,
            progress: d.progress,
            error: d.error,
            job: d.job,
            callback_url: None,
            created_by: d.created_by,
            created_at: render_time(&d.created_at),
            finished_at: d.finished_at.as_ref().map(render_time),
        }
    }
}

/// Body of `deploy`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeployRequest {
    /// The OS image to install.
    pub os: i64,
}

/// Body of the installer's callback.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CallbackRequest {
    /// `complete` | `failed`.
    #[schema(example = "complete")]
    pub status: String,
    /// What the installer says (the error of a failed deployment).
    pub message: Option<String>,
}

const DEPLOY_FIELDS: &[Field] = &[Field::new("os", Kind::Pk)];
const CALLBACK_FIELDS: &[Field] = &[
    Field::new("status", Kind::Choice(&["complete", "failed"])),
    Field::text("message", 2000).optional(),
];

/// The list declaration of deployments.
pub static DEPLOYMENT_LIST: ListSpec = ListSpec {
    model: "Deployment",
    from: "deployments d",
    columns: DEPLOYMENT_COLUMNS,
    search: &[("status", "d.status"), ("step", "d.step")],
    filters: &[
        Filter {
            param: "server",
            column: "d.server_id",
            kind: FilterKind::Number,
        },
        Filter {
            param: "status",
            column: "d.status",
            kind: FilterKind::Choice(STATUSES),
        },
        Filter {
            param: "os",
            column: "d.os_id",
            kind: FilterKind::Number,
        },
        Filter {
            param: "created_by",
            column: "d.created_by",
            kind: FilterKind::Owner,
        },
    ],
    ordering: &[
        ("id", "d.id"),
        ("created_at", "d.created_at"),
        ("status", "d.status"),
    ],
    id_column: "d.id",
    shape: Shape::Envelope,
    scope: Some(crate::db::deployments::deployment_scope),
};

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/server/{id}/deploy/",
            post(deploy),
            [Op::post(
                "server_deploy_create",
                "Deploy an OS image on a server over virtual media (answers with the one-time callback URL)",
            )
            .body::<DeployRequest>()
            .accepted::<DeploymentOut>()],
        )
        .route(
            "/api/deployment/",
            get(list_deployments),
            [Op::get("deployment_list", "List deployments").list::<DeploymentOut>(&DEPLOYMENT_LIST)],
        )
        .route(
            "/api/deployment/{id}/",
            get(get_deployment),
            [Op::get("deployment_retrieve", "A deployment").ok::<DeploymentOut>()],
        )
        .route(
            "/api/deployment/{id}/cancel/",
            post(cancel),
            [Op::post(
                "deployment_cancel_create",
                "Cancel an active deployment (ejects the media)",
            )
            .ok::<DeploymentOut>()],
        )
        .route(
            "/media/callback/{token}/",
            post(callback),
            [Op::post(
                "deployment_callback_create",
                "The installer reports the end of a deployment (the URL's token is the only credential)",
            )
            .body::<CallbackRequest>()
            .ok::<DeploymentOut>()
            .public()],
        )
}

fn refused(e: DeployError) -> ApiError {
    match e {
        DeployError::ServerNotFound(_) => ApiError::NoMatch("Server"),
        e @ DeployError::OsNotFound(_) => ApiError::field("os", e.to_string()),
        e @ DeployError::NotRegistered(_) => ApiError::bad_request(e.to_string()),
        DeployError::Start(StartError::ServerNotFound(_)) => ApiError::NoMatch("Server"),
        DeployError::Start(StartError::PoolNotFound(_)) => ApiError::NoMatch("Pool"),
        DeployError::Start(e @ StartError::Busy(_)) => ApiError::bad_request(e.to_string()),
        DeployError::Start(StartError::Db(e)) | DeployError::Db(e) => e.into(),
        DeployError::Media(e) => ApiError::Internal(e.to_string()),
    }
}

async fn deploy(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Response> {
    let v = validate(&body, DEPLOY_FIELDS, Mode::Full)?;
    let os = v
        .int("os")
        .ok_or_else(|| ApiError::field("os", "This field is required."))?;
    let started = svc::deploy(&state.ctx, &user.viewer(), ids.first(), os)
        .await
        .map_err(refused)?;
    let mut out = DeploymentOut::from(started.deployment);
    out.callback_url = Some(started.callback_url);
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}

async fn list_deployments(
    State(state): State<AppState>,
    user: CurrentUser,
    q: ListQuery,
) -> ApiResult<Response> {
    list::respond(&state.db, &DEPLOYMENT_LIST, &q, &user, |r| {
        Deployment::from_row(r).map(DeploymentOut::from)
    })
    .await
}

async fn get_deployment(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<DeploymentOut>> {
    let d = svc::get(&state.ctx, &user.viewer(), ids.first())
        .await?
        .ok_or(ApiError::NoMatch("Deployment"))?;
    Ok(Json(d.into()))
}

fn ended(e: EndError) -> ApiError {
    match e {
        EndError::NotFound => ApiError::NoMatch("Deployment"),
        e @ EndError::Ended(..) => ApiError::bad_request(e.to_string()),
        EndError::Db(e) => e.into(),
    }
}

async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<DeploymentOut>> {
    let d = svc::cancel(&state.ctx, &user.viewer(), ids.first())
        .await
        .map_err(ended)?;
    Ok(Json(d.into()))
}

/// `POST /media/callback/{token}/` (also routed by the media listener).
pub async fn callback(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Fields,
) -> ApiResult<Json<DeploymentOut>> {
    let v = validate(&body, CALLBACK_FIELDS, Mode::Full)?;
    let report = match v.str("status").as_deref() {
        Some("complete") => Report::Complete,
        Some("failed") => Report::Failed,
        _ => return Err(ApiError::field("status", "This field is required.")),
    };
    let message = v.str("message");
    let d = svc::callback(&state.ctx, &token, report, message.as_deref())
        .await
        .map_err(ended)?;
    Ok(Json(d.into()))
}
