//! `/api/pool/`: resource pools, their sub-pools and the servers and switches assigned to them.
//!
//! Visibility: a non-superuser sees the pools owned by one of their groups and every pool below
//! those; servers and switches are visible through their pool. The scope functions here are the
//! only place that rule is written.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{invalid_pk, validate_into, Errors, Field, Kind, Mode};
use super::AppState;
use crate::db::pools::{self, Pool, PoolServer, PoolSwitch, PoolWrite, POOL_COLUMNS};
use crate::db::{servers, Db};
use crate::service;
use crate::service::pools::{PoolTarget, PoolWriteError};

mod members;

pub use members::MAX_IDS;
use members::{assign_servers, assign_switches, pool_compliance};

/// True when the caller may see pool `id`.
pub async fn can_see_pool(db: &Db, user: &CurrentUser, id: i64) -> ApiResult<bool> {
    Ok(service::pools::can_see(db, &user.viewer(), id).await?)
}

/// One child pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubPool {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// A pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Name (255 characters at most, unique among siblings).
    pub name: String,
    /// Description (1000 characters at most).
    pub description: String,
    /// The group that controls access to the pool.
    pub group: i64,
    /// Parent pool id (sub-pools only).
    #[schema(read_only)]
    pub parent: Option<i64>,
    /// Direct child pools.
    #[schema(read_only)]
    pub sub_pools: Vec<SubPool>,
    /// Servers directly in the pool.
    #[schema(read_only)]
    pub servers_count: i64,
    /// Switches directly in the pool.
    #[schema(read_only)]
    pub switches_count: i64,
    /// The pool's firmware baseline (null: none).
    pub firmware_baseline: Option<i64>,
}

impl From<Pool> for PoolOut {
    fn from(p: Pool) -> Self {
        PoolOut {
            id: p.id,
            name: p.name,
            description: p.description,
            group: p.group,
            parent: p.parent,
            sub_pools: p
                .sub_pools
                .into_iter()
                .map(|(id, name)| SubPool { id, name })
                .collect(),
            servers_count: p.servers_count,
            switches_count: p.switches_count,
            firmware_baseline: p.firmware_baseline,
        }
    }
}

/// A pool with its servers and switches.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolDetail {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The group that controls access to the pool.
    pub group: i64,
    /// Parent pool id.
    #[schema(read_only)]
    pub parent: Option<i64>,
    /// Direct child pools.
    #[schema(read_only)]
    pub sub_pools: Vec<SubPool>,
    /// Servers directly in the pool.
    #[schema(read_only)]
    pub servers_count: i64,
    /// Switches directly in the pool.
    #[schema(read_only)]
    pub switches_count: i64,
    /// The servers of the pool.
    #[schema(read_only)]
    pub servers: Vec<PoolServer>,
    /// The switches of the pool.
    #[schema(read_only)]
    pub switches: Vec<PoolSwitch>,
    /// The pool's firmware baseline (null: none).
    pub firmware_baseline: Option<i64>,
    /// `compliant` | `non_compliant` against the baseline (servers of sub-pools included);
    /// null without a baseline.
    #[schema(read_only)]
    pub compliance: Option<String>,
}

/// Body of a pool create or update.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolRequest {
    /// Name.
    pub name: String,
    /// Description (default `""`).
    pub description: Option<String>,
    /// Group (required for a top-level pool; a sub-pool defaults to its parent's).
    pub group: Option<i64>,
    /// Parent pool (create and PATCH only; PATCH moves the pool).
    pub parent: Option<i64>,
    /// The pool's firmware baseline (null: none).
    pub firmware_baseline: Option<i64>,
}

/// Body of `create_sub_pool`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubPoolRequest {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Group (default: the parent's).
    pub group: Option<i64>,
}

/// Body of `assign_servers`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignServersRequest {
    /// Server ids, or node (BMC) ids standing for their servers.
    pub servers: Vec<i64>,
}

/// Body of `assign_switches`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignSwitchesRequest {
    /// Switch ids.
    pub switches: Vec<i64>,
}

/// The list declaration of pools.
pub static POOL_LIST: ListSpec = ListSpec {
    model: "Pool",
    from: "pools p",
    columns: POOL_COLUMNS,
    search: &[("name", "p.name"), ("description", "p.description")],
    filters: &[
        Filter {
            param: "group",
            column: "p.group_id",
            kind: FilterKind::ForeignKey {
                table: "auth_group",
                nullable: false,
                visible: None,
            },
        },
        Filter {
            param: "parent",
            column: "p.parent_id",
            kind: FilterKind::ForeignKey {
                table: "pools",
                nullable: true,
                visible: Some(pools::pool_visible),
            },
        },
    ],
    ordering: &[("name", "p.name"), ("id", "p.id")],
    id_column: "p.id",
    shape: Shape::Envelope,
    scope: Some(pools::pool_scope),
};

const DESCRIPTION: Field = Field {
    max_len: Some(1000),
    ..Field::new("description", Kind::Str).optional().blank()
};

const CREATE_FIELDS: &[Field] = &[
    Field::text("name", 255),
    DESCRIPTION,
    Field::new("group", Kind::Pk).optional(),
    Field::new("parent", Kind::Pk).optional().nullable(),
    Field::new("firmware_baseline", Kind::Pk)
        .optional()
        .nullable(),
];

/// PUT and `create_sub_pool`: `parent` is read-only there.
const PUT_FIELDS: &[Field] = &[
    Field::text("name", 255),
    DESCRIPTION,
    Field::new("group", Kind::Pk).optional(),
    Field::new("firmware_baseline", Kind::Pk)
        .optional()
        .nullable(),
];

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/pool/",
            get(list_pools).post(create_pool),
            [
                Op::get("pool_list", "List pools").list::<PoolOut>(&POOL_LIST),
                Op::post("pool_create", "Create a pool")
                    .body::<PoolRequest>()
                    .created::<PoolOut>(),
            ],
        )
        .route(
            "/api/pool/{id}/",
            get(get_pool)
                .put(put_pool)
                .patch(patch_pool)
                .delete(delete_pool),
            [
                Op::get("pool_retrieve", "A pool with its servers and switches").ok::<PoolDetail>(),
                Op::put("pool_update", "Replace a pool")
                    .body::<PoolRequest>()
                    .ok::<PoolOut>(),
                Op::patch(
                    "pool_partial_update",
                    "Change some fields of a pool (PATCH of parent moves it)",
                )
                .body::<PoolRequest>()
                .ok::<PoolOut>(),
                Op::delete(
                    "pool_destroy",
                    "Delete a pool without sub-pools; its members become unassigned",
                ),
            ],
        )
        .route(
            "/api/pool/{id}/create_sub_pool/",
            post(create_sub_pool),
            [Op::post("pool_create_sub_pool_create", "Create a sub-pool")
                .body::<SubPoolRequest>()
                .created::<PoolOut>()],
        )
        .route(
            "/api/pool/{id}/compliance/",
            get(pool_compliance),
            [Op::get(
                "pool_compliance_retrieve",
                "Compliance of the pool's servers (sub-pools included) with its firmware baseline",
            )
            .ok::<super::baselines::FirmwareBaselineCompliance>()],
        )
        .route(
            "/api/pool/{id}/assign_servers/",
            post(assign_servers),
            [Op::post(
                "pool_assign_servers_create",
                "Assign servers (or the servers of nodes) to a pool",
            )
            .body::<AssignServersRequest>()
            .ok::<PoolDetail>()],
        )
        .route(
            "/api/pool/{id}/assign_switches/",
            post(assign_switches),
            [
                Op::post("pool_assign_switches_create", "Assign switches to a pool")
                    .body::<AssignSwitchesRequest>()
                    .ok::<PoolDetail>(),
            ],
        )
}

/// The pool if the caller may see it, else 404.
pub(super) async fn visible_pool(state: &AppState, user: &CurrentUser, id: i64) -> ApiResult<Pool> {
    service::pools::visible(&state.db, &user.viewer(), id)
        .await?
        .ok_or(ApiError::NoMatch("Pool"))
}

pub(super) async fn detail(state: &AppState, id: i64) -> ApiResult<PoolDetail> {
    let p = pools::get(&state.db, id)
        .await?
        .ok_or(ApiError::NoMatch("Pool"))?;
    detail_of(state, p).await
}

/// The detail of a pool already read: its servers and switches added.
async fn detail_of(state: &AppState, p: Pool) -> ApiResult<PoolDetail> {
    let (servers, switches) = pools::members_of(&state.db, p.id).await?;
    let compliance = service::baselines::pool_status(&state.ctx, p.id, p.firmware_baseline)
        .await
        .map_err(|e| match e {
            service::baselines::BaselineError::Db(e) => ApiError::from(e),
            // The baseline vanished between the reads.
            _ => ApiError::NoMatch("Pool"),
        })?
        .map(str::to_string);
    let o = PoolOut::from(p);
    Ok(PoolDetail {
        firmware_baseline: o.firmware_baseline,
        compliance,
        id: o.id,
        name: o.name,
        description: o.description,
        group: o.group,
        parent: o.parent,
        sub_pools: o.sub_pools,
        servers_count: o.servers_count,
        switches_count: o.switches_count,
        servers,
        switches,
    })
}

async fn list_pools(
    State(state): State<AppState>,
    user: CurrentUser,
    q: ListQuery,
) -> ApiResult<Response> {
    let mut listed = list::run(&state.db, &POOL_LIST, &q, &user, Pool::from_row).await?;
    pools::attach_sub_pools(&state.db, &mut listed.items).await?;
    Ok(listed.map(PoolOut::from).respond())
}

async fn get_pool(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<PoolDetail>> {
    let p = visible_pool(&state, &user, ids.first()).await?;
    Ok(Json(detail_of(&state, p).await?))
}

fn name_taken() -> ApiError {
    ApiError::field(
        "name",
        "pool with this name already exists under this parent.",
    )
}

/// Validates and applies a pool write in one transaction; returns the pool id.
async fn write(
    state: &AppState,
    user: &CurrentUser,
    target: PoolTarget<'_>,
    body: &Fields,
    fields: &[Field],
    mode: Mode,
) -> ApiResult<i64> {
    let mut errors = Errors::default();
    let v = validate_into(body, fields, mode, &mut errors)?;
    let parent: Option<Option<i64>> = match &target {
        PoolTarget::New { parent: Some(p) } => Some(Some(*p)),
        _ if v.has("parent") => Some(v.int("parent")),
        _ => None,
    };
    let forced_parent = matches!(target, PoolTarget::New { parent: Some(_) });
    if let (Some(Some(pid)), false) = (parent, forced_parent) {
        if !can_see_pool(&state.db, user, pid).await? {
            errors.add("parent", invalid_pk(pid));
        }
    }
    let group = v.int("group");
    let current_group = match &target {
        PoolTarget::Existing(p) => Some(p.group),
        PoolTarget::New { .. } => None,
    };
    if let Some(g) = group.filter(|g| Some(*g) != current_group) {
        if !service::pools::group_allowed(&state.db, &user.viewer(), g).await? {
            errors.add("group", invalid_pk(g));
        }
    }
    let top_level = match (&target, parent) {
        (_, Some(p)) => p.is_none(),
        (PoolTarget::New { .. }, None) => true,
        (PoolTarget::Existing(p), None) => p.parent.is_none(),
    };
    let group_needed = match &target {
        PoolTarget::New { .. } => top_level,
        PoolTarget::Existing(_) => top_level && mode == Mode::Full,
    };
    if group.is_none() && group_needed && !v.has("group") {
        errors.add("group", "This field is required.");
    }
    let firmware_baseline = v
        .has("firmware_baseline")
        .then(|| v.int("firmware_baseline"));
    if let Some(Some(b)) = firmware_baseline {
        if crate::db::baselines::get(&state.db, b).await?.is_none() {
            errors.add("firmware_baseline", invalid_pk(b));
        }
    }
    errors.check()?;
    let w = PoolWrite {
        name: v.str("name"),
        description: v.str("description"),
        group,
        parent,
        firmware_baseline,
    };
    service::pools::write(&state.db, &user.viewer(), target, w)
        .await
        .map_err(|e| match e {
            PoolWriteError::NameTaken => name_taken(),
            PoolWriteError::Cycle => ApiError::field(
                "parent",
                "A pool cannot be moved under itself or one of its sub-pools.",
            ),
            PoolWriteError::GroupRequired => ApiError::field("group", "This field is required."),
            PoolWriteError::Db(e) => e.into(),
        })
}

async fn pool_out(state: &AppState, id: i64) -> ApiResult<PoolOut> {
    Ok(pools::get(&state.db, id)
        .await?
        .ok_or(ApiError::NoMatch("Pool"))?
        .into())
}

async fn create_pool(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Fields,
) -> ApiResult<Response> {
    let id = write(
        &state,
        &user,
        PoolTarget::New { parent: None },
        &body,
        CREATE_FIELDS,
        Mode::Full,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(pool_out(&state, id).await?)).into_response())
}

async fn create_sub_pool(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Response> {
    let parent = visible_pool(&state, &user, ids.first()).await?;
    let target = PoolTarget::New {
        parent: Some(parent.id),
    };
    let id = write(&state, &user, target, &body, PUT_FIELDS, Mode::Full).await?;
    Ok((StatusCode::CREATED, Json(pool_out(&state, id).await?)).into_response())
}

async fn put_pool(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Json<PoolOut>> {
    let pool = visible_pool(&state, &user, ids.first()).await?;
    let id = write(
        &state,
        &user,
        PoolTarget::Existing(&pool),
        &body,
        PUT_FIELDS,
        Mode::Full,
    )
    .await?;
    Ok(Json(pool_out(&state, id).await?))
}

async fn patch_pool(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Json<PoolOut>> {
    let pool = visible_pool(&state, &user, ids.first()).await?;
    let id = write(
        &state,
        &user,
        PoolTarget::Existing(&pool),
        &body,
        CREATE_FIELDS,
        Mode::Partial,
    )
    .await?;
    Ok(Json(pool_out(&state, id).await?))
}

fn has_sub_pools(id: i64) -> ApiError {
    ApiError::bad_request(format!(
        "Pool {id} has sub-pools; delete or move them first."
    ))
}

async fn delete_pool(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    let pool = visible_pool(&state, &user, ids.first()).await?;
    let mut tx = state.db.begin().await?;
    // The deployment lock comes before every other rule.
    if let Some((server, deployment)) = servers::first_locked_in_pool(&mut tx, pool.id).await? {
        return Err(ApiError::bad_request(servers::locked_message(
            server, deployment,
        )));
    }
    if pools::sub_pool_count(&mut tx, pool.id).await? > 0 {
        return Err(has_sub_pools(pool.id));
    }
    match pools::delete(&mut tx, pool.id).await {
        Ok(_) => {}
        Err(e) if e.is_foreign_key_violation() => return Err(has_sub_pools(pool.id)),
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    tracing::info!(pool_id = pool.id, user = %user.username, "pool deleted");
    Ok(StatusCode::NO_CONTENT)
}
