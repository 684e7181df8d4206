//! `/api/job/`: every asynchronous operation, read-only, plus cancellation. A job is visible
//! to the user who started it and to superusers (404 for anyone else).

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::Ids;
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::wire::render_time;
use super::AppState;
use crate::db::jobs::{self, Job, JOB_COLUMNS};
use crate::service::lifecycle::{self as lc, CancelError};

/// A job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    /// Id.
    pub id: i64,
    /// What it does: `scan`, `power`, `inventory`, `firmware_update`, `deployment`.
    pub kind: String,
    /// `queued` | `running` | `succeeded` | `failed` | `cancelled`.
    pub status: String,
    /// Kind-specific progress (`{scanned, total, found}` for a scan; `{total, done, failed,
    /// percent}` for the lifecycle kinds).
    #[schema(value_type = Object)]
    pub progress: Value,
    /// Ids of the objects it works on (scan ranges for a scan, servers otherwise).
    #[schema(value_type = Vec<i64>)]
    pub targets: Value,
    /// One entry per server for the lifecycle kinds (`[]` for a scan).
    pub results: Vec<JobResultOut>,
    /// Why it failed.
    pub error: Option<String>,
    /// User who started it.
    pub created_by: Option<i64>,
    /// Queued at.
    pub created_at: String,
    /// First taken by a worker at.
    pub started_at: Option<String>,
    /// Ended at.
    pub finished_at: Option<String>,
}

/// The outcome of a job on one server.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct JobResultOut {
    /// Server id.
    pub server: i64,
    /// `queued` | `running` | `succeeded` | `failed` | `skipped` | `cancelled`.
    pub status: String,
    /// What happened (the BMC's message on failure).
    pub message: Option<String>,
}

impl From<Job> for JobOut {
    fn from(j: Job) -> Self {
        let results = serde_json::from_value(j.results).unwrap_or_default();
        JobOut {
            results,
            id: j.id,
            kind: j.kind,
            status: j.status.to_string(),
            progress: j.progress,
            targets: j.targets,
            error: j.error,
            created_by: j.created_by,
            created_at: render_time(&j.created_at),
            started_at: j.started_at.as_ref().map(render_time),
            finished_at: j.finished_at.as_ref().map(render_time),
        }
    }
}

/// The list declaration of jobs.
pub static JOB_LIST: ListSpec = ListSpec {
    model: "Job",
    from: "jobs j",
    columns: JOB_COLUMNS,
    search: &[("kind", "j.kind"), ("status", "j.status")],
    filters: &[
        Filter {
            param: "status",
            column: "j.status",
            kind: FilterKind::Choice(jobs::STATUSES),
        },
        Filter {
            param: "kind",
            column: "j.kind",
            kind: FilterKind::Exact,
        },
        Filter {
            param: "server",
            column: "j.id",
            kind: FilterKind::NumberIn("SELECT job_id FROM job_servers WHERE server_id"),
        },
        Filter {
            param: "created_by",
            column: "j.created_by",
            kind: FilterKind::Owner,
        },
    ],
    ordering: &[
        ("id", "j.id"),
        ("created_at", "j.created_at"),
        ("status", "j.status"),
        ("kind", "j.kind"),
    ],
    id_column: "j.id",
    shape: Shape::Envelope,
    scope: Some(jobs::job_scope),
};

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/job/",
            get(list_jobs),
            [Op::get("job_list", "List jobs").list::<JobOut>(&JOB_LIST)],
        )
        .route(
            "/api/job/{id}/",
            get(get_job),
            [Op::get("job_retrieve", "A job").ok::<JobOut>()],
        )
        .route(
            "/api/job/{id}/cancel/",
            post(cancel_job),
            [Op::post("job_cancel_create", "Cancel a queued or running job").ok::<JobOut>()],
        )
}

async fn list_jobs(
    State(state): State<AppState>,
    user: CurrentUser,
    q: ListQuery,
) -> ApiResult<Response> {
    list::respond(&state.db, &JOB_LIST, &q, &user, |r| {
        Job::from_row(r).map(JobOut::from)
    })
    .await
}

async fn get_job(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<JobOut>> {
    let j = lc::job_for(&state.ctx, &user.viewer(), ids.first())
        .await?
        .ok_or(ApiError::NoMatch("Job"))?;
    Ok(Json(j.into()))
}

async fn cancel_job(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<JobOut>> {
    match lc::cancel(&state.ctx, &user.viewer(), ids.first()).await {
        Ok(j) => Ok(Json(j.into())),
        Err(CancelError::NotFound(_)) => Err(ApiError::NoMatch("Job")),
        Err(e @ CancelError::Ended(..)) => Err(ApiError::bad_request(e.to_string())),
        Err(CancelError::Db(e)) => Err(e.into()),
    }
}
