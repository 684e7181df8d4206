//! `/api/firmware_baseline/`: named sets of firmware packages (superusers write, everyone
//! reads; an unpaginated list is a bare array, newest first) and their compliance view.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{CurrentUser, Superuser};
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{check_pks, validate_into, Errors, Field, Kind, Mode};
use super::wire::render_time;
use super::AppState;
use crate::db::baselines::{Baseline, ComponentStatus, BASELINE_COLUMNS, BASELINE_FROM};
use crate::service::baselines::{self as service, BaselineError, Report, Scope, ServerStatus};

/// A firmware baseline.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirmwareBaselineOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Name (unique).
    pub name: String,
    /// Description.
    pub description: String,
    /// Firmware package ids, in the order they are installed.
    pub firmware_binaries: Vec<i64>,
    /// User id of the creator.
    #[schema(read_only)]
    pub created_by: Option<i64>,
    /// Creation time.
    #[schema(read_only)]
    pub created_at: String,
    /// Last change.
    #[schema(read_only)]
    pub updated_at: String,
}

impl From<Baseline> for FirmwareBaselineOut {
    fn from(b: Baseline) -> Self {
        FirmwareBaselineOut {
            id: b.id,
            name: b.name,
            description: b.description,
            firmware_binaries: b.firmware_binaries,
            created_by: b.created_by,
            created_at: render_time(&b.created_at),
            updated_at: render_time(&b.updated_at),
        }
    }
}

/// Body of a baseline create or update.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirmwareBaselineRequest {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Firmware package ids.
    pub firmware_binaries: Option<Vec<i64>>,
}

/// One component of a server's compliance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceComponent {
    /// Firmware package id.
    pub firmware: i64,
    /// Its name.
    pub name: String,
    /// Its type.
    pub firmware_type: String,
    /// The version it installs.
    pub expected_version: String,
    /// The server's version of that type (null when it has none).
    pub installed_version: Option<String>,
    /// `compliant`, `non_compliant` or `missing`.
    pub status: String,
}

/// One server's compliance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplianceServer {
    /// Server id.
    pub server: i64,
    /// Server name.
    pub name: String,
    /// `compliant`, `non_compliant` or `not_applicable`.
    pub status: String,
    /// The binaries that apply to it.
    pub components: Vec<ComplianceComponent>,
}

/// A compliance report.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirmwareBaselineCompliance {
    /// Baseline id.
    pub baseline: i64,
    /// `compliant` when no server is non-compliant, else `non_compliant`.
    pub status: String,
    /// Per server.
    pub servers: Vec<ComplianceServer>,
}

/// The list declaration of baselines (unpaginated: a bare array).
pub static BASELINE_LIST: ListSpec = ListSpec {
    model: "FirmwareBaseline",
    from: BASELINE_FROM,
    columns: BASELINE_COLUMNS,
    search: &[("name", "b.name"), ("description", "b.description")],
    filters: &[Filter {
        param: "name",
        column: "b.name",
        kind: FilterKind::Exact,
    }],
    ordering: &[
        ("name", "b.name"),
        ("created_at", "b.created_at"),
        ("updated_at", "b.updated_at"),
        ("id", "b.id"),
    ],
    id_column: "b.id",
    shape: Shape::BareArray,
    scope: None,
};

const BASELINE_FIELDS: &[Field] = &[
    Field::text("name", 255),
    Field {
        max_len: Some(1000),
        ..Field::new("description", Kind::Str).optional().blank()
    },
    Field::new(
        "firmware_binaries",
        Kind::IntList {
            min: None,
            max: None,
            allow_empty: true,
            max_items: Some(1000),
        },
    )
    .optional(),
];

const COMPLIANCE_QUERY: &[(&str, &str)] = &[
    ("server", "Only this server"),
    (
        "resource_pool",
        "The servers of this pool and its sub-pools",
    ),
];

/// Routes of baselines.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/firmware_baseline/",
            get(list_baselines).post(create_baseline),
            [
                Op::get("firmware_baseline_list", "List firmware baselines")
                    .list::<FirmwareBaselineOut>(&BASELINE_LIST),
                Op::post("firmware_baseline_create", "Create a firmware baseline")
                    .body::<FirmwareBaselineRequest>()
                    .created::<FirmwareBaselineOut>(),
            ],
        )
        .route(
            "/api/firmware_baseline/{id}/",
            get(get_baseline)
                .put(update_baseline)
                .patch(update_baseline)
                .delete(delete_baseline),
            [
                Op::get("firmware_baseline_retrieve", "A firmware baseline")
                    .ok::<FirmwareBaselineOut>(),
                Op::put("firmware_baseline_update", "Replace a firmware baseline")
                    .body::<FirmwareBaselineRequest>()
                    .ok::<FirmwareBaselineOut>(),
                Op::patch(
                    "firmware_baseline_partial_update",
                    "Change some fields of a firmware baseline",
                )
                .body::<FirmwareBaselineRequest>()
                .ok::<FirmwareBaselineOut>(),
                Op::delete("firmware_baseline_destroy", "Delete a firmware baseline"),
            ],
        )
        .route(
            "/api/firmware_baseline/{id}/compliance/",
            get(compliance),
            [Op::get(
                "firmware_baseline_compliance_retrieve",
                "Compliance of servers with a firmware baseline (from the stored inventory)",
            )
            .query(COMPLIANCE_QUERY)
            .ok::<FirmwareBaselineCompliance>()],
        )
}

/// The answer to a failed baseline operation.
fn api_error(e: BaselineError) -> ApiError {
    match e {
        BaselineError::NotFound => ApiError::NoMatch(BASELINE_LIST.model),
        BaselineError::NameTaken => ApiError::field("name", e.to_string()),
        BaselineError::InvalidChoice(field) => ApiError::field(field, service::INVALID_CHOICE),
        BaselineError::Db(e) => ApiError::Db(e),
    }
}

async fn fetch(state: &AppState, user: &CurrentUser, id: i64) -> ApiResult<FirmwareBaselineOut> {
    list::fetch_one(&state.db, &BASELINE_LIST, user, id, |r| {
        Baseline::from_row(r).map(FirmwareBaselineOut::from)
    })
    .await
}

async fn list_baselines(
    State(state): State<AppState>,
    user: CurrentUser,
    q: ListQuery,
) -> ApiResult<Response> {
    // Most recently created first unless the client orders otherwise.
    let q = q.default_ordering("-id");
    list::respond(&state.db, &BASELINE_LIST, &q, &user, |r| {
        Baseline::from_row(r).map(FirmwareBaselineOut::from)
    })
    .await
}

async fn get_baseline(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<FirmwareBaselineOut>> {
    Ok(Json(fetch(&state, &user, ids.first()).await?))
}

/// A validated body: (name, description, binaries), each None when not sent.
type BaselineWrite = (Option<String>, Option<String>, Option<Vec<i64>>);

async fn baseline_write(state: &AppState, body: &Fields, mode: Mode) -> ApiResult<BaselineWrite> {
    let mut errors = Errors::default();
    let v = validate_into(body, BASELINE_FIELDS, mode, &mut errors)?;
    let binaries = v.ints("firmware_binaries");
    if let Some(ids) = &binaries {
        check_pks(
            &state.db,
            "firmware_images",
            "firmware_binaries",
            ids,
            &mut errors,
        )
        .await?;
    }
    errors.check()?;
    Ok((v.str("name"), v.str("description"), binaries))
}

async fn create_baseline(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    body: Fields,
) -> ApiResult<Response> {
    let (name, description, binaries) = baseline_write(&state, &body, Mode::Full).await?;
    let id = service::create(
        &state.ctx,
        user.viewer(),
        name.as_deref().unwrap_or_default(),
        description.as_deref().unwrap_or_default(),
        binaries.as_deref().unwrap_or_default(),
    )
    .await
    .map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(fetch(&state, &user, id).await?)).into_response())
}

async fn update_baseline(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    ids: Ids,
    mode: Mode,
    body: Fields,
) -> ApiResult<Json<FirmwareBaselineOut>> {
    let id = ids.first();
    fetch(&state, &user, id).await?;
    let (name, description, binaries) = baseline_write(&state, &body, mode).await?;
    service::update(
        &state.ctx,
        id,
        name.as_deref(),
        description.as_deref(),
        binaries.as_deref(),
    )
    .await
    .map_err(api_error)?;
    Ok(Json(fetch(&state, &user, id).await?))
}

async fn delete_baseline(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    service::delete(&state.ctx, ids.first(), user.viewer())
        .await
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads `?server` / `?resource_pool` (a non-integer is an invalid choice, as django-filter says).
fn scope_of(q: &ListQuery) -> ApiResult<Scope> {
    let pick = |name: &'static str| -> ApiResult<Option<i64>> {
        match q.get(name).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::field(name, service::INVALID_CHOICE)),
        }
    };
    Ok(match (pick("server")?, pick("resource_pool")?) {
        (Some(s), _) => Scope::Server(s),
        (None, Some(p)) => Scope::Pool(p),
        (None, None) => Scope::Visible,
    })
}

fn component_status(s: ComponentStatus) -> &'static str {
    match s {
        ComponentStatus::Compliant => "compliant",
        ComponentStatus::NonCompliant => "non_compliant",
        ComponentStatus::Missing => "missing",
        ComponentStatus::NotApplicable => "not_applicable",
    }
}

fn server_status(s: ServerStatus) -> &'static str {
    match s {
        ServerStatus::Compliant => "compliant",
        ServerStatus::NonCompliant => "non_compliant",
        ServerStatus::NotApplicable => "not_applicable",
    }
}

/// The wire form of a report.
pub fn render_report(report: Report) -> FirmwareBaselineCompliance {
    FirmwareBaselineCompliance {
        baseline: report.baseline,
        status: if report.compliant {
            "compliant"
        } else {
            "non_compliant"
        }
        .into(),
        servers: report
            .servers
            .into_iter()
            .map(|s| ComplianceServer {
                server: s.server,
                name: s.name,
                status: server_status(s.status).into(),
                components: s
                    .components
                    .into_iter()
                    .map(|c| ComplianceComponent {
                        firmware: c.binary.id,
                        name: c.binary.name,
                        firmware_type: c.binary.firmware_type,
                        expected_version: c.binary.version,
                        installed_version: c.installed_version,
                        status: component_status(c.status).into(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

async fn compliance(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    q: ListQuery,
) -> ApiResult<Json<FirmwareBaselineCompliance>> {
    let scope = scope_of(&q)?;
    let report = service::compliance(&state.ctx, user.viewer(), ids.first(), scope)
        .await
        .map_err(api_error)?;
    Ok(Json(render_report(report)))
}
