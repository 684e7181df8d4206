//! `/api/switch/`: network switches. Visible, like servers, through their pool.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::list::{self, Filter, FilterKind, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{invalid_pk, validate_into, Errors, Field, Kind, Mode};
use super::wire::render_time;
use super::AppState;
use crate::db::switches::{Switch, SwitchWrite, SWITCH_COLUMNS, SWITCH_FROM};
use crate::db::Val;
use crate::service;
use crate::service::switches::{PoolRefused, SwitchError};

/// A switch.
#[derive(Debug, Serialize, ToSchema)]
pub struct SwitchOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Name (255 characters at most).
    pub name: String,
    /// Model.
    pub model: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Serial number.
    pub serial_number: String,
    /// Management IP address.
    pub management_ip: Option<String>,
    /// Pool id.
    pub resource_pool: Option<i64>,
    /// Creation time.
    #[schema(read_only)]
    pub created_at: String,
    /// Last change.
    #[schema(read_only)]
    pub updated_at: String,
}

impl From<Switch> for SwitchOut {
    fn from(s: Switch) -> Self {
        SwitchOut {
            id: s.id,
            name: s.name,
            model: s.model,
            manufacturer: s.manufacturer,
            serial_number: s.serial_number,
            management_ip: s.management_ip,
            resource_pool: s.resource_pool,
            created_at: render_time(&s.created_at),
            updated_at: render_time(&s.updated_at),
        }
    }
}

/// Body of a switch create or update.
#[derive(Debug, Serialize, ToSchema)]
pub struct SwitchRequest {
    /// Name.
    pub name: String,
    /// Model.
    pub model: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Management IP address.
    pub management_ip: Option<String>,
    /// Pool id (required for non-superusers).
    pub resource_pool: Option<i64>,
}

/// The list declaration of switches.
pub static SWITCH_LIST: ListSpec = ListSpec {
    model: "Switch",
    from: SWITCH_FROM,
    columns: SWITCH_COLUMNS,
    search: &[
        ("name", "w.name"),
        ("model", "w.model"),
        ("manufacturer", "w.manufacturer"),
        ("serial_number", "w.serial_number"),
        ("management_ip", "w.management_ip"),
    ],
    filters: &[
        Filter {
            param: "resource_pool",
            column: "w.resource_pool_id",
            kind: FilterKind::ForeignKey {
                table: "pools",
                nullable: true,
                visible: Some(crate::db::pools::pool_visible),
            },
        },
        Filter {
            param: "manufacturer",
            column: "w.manufacturer",
            kind: FilterKind::Exact,
        },
        Filter {
            param: "model",
            column: "w.model",
            kind: FilterKind::Exact,
        },
    ],
    ordering: &[
        ("name", "w.name"),
        ("model", "w.model"),
        ("manufacturer", "w.manufacturer"),
        ("serial_number", "w.serial_number"),
        ("management_ip", "w.management_ip"),
        ("resource_pool__name", "rp.name"),
        ("id", "w.id"),
    ],
    id_column: "w.id",
    shape: Shape::Envelope,
    scope: Some(crate::db::pools::switch_list_scope),
};

const SWITCH_FIELDS: &[Field] = &[
    Field::text("name", 255),
    Field {
        max_len: Some(255),
        ..Field::new("model", Kind::Str).optional().blank()
    },
    Field {
        max_len: Some(255),
        ..Field::new("manufacturer", Kind::Str).optional().blank()
    },
    Field {
        max_len: Some(255),
        ..Field::new("serial_number", Kind::Str).optional().blank()
    },
    Field::new("management_ip", Kind::Ip).optional().nullable(),
    Field::new("resource_pool", Kind::Pk).optional().nullable(),
];

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/switch/",
            get(list_switches).post(create_switch),
            [
                Op::get("switch_list", "List switches").list::<SwitchOut>(&SWITCH_LIST),
                Op::post("switch_create", "Create a switch")
                    .body::<SwitchRequest>()
                    .created::<SwitchOut>(),
            ],
        )
        .route(
            "/api/switch/{id}/",
            get(get_switch)
                .put(update)
                .patch(update)
                .delete(delete_switch),
            [
                Op::get("switch_retrieve", "A switch").ok::<SwitchOut>(),
                Op::put("switch_update", "Replace a switch")
                    .body::<SwitchRequest>()
                    .ok::<SwitchOut>(),
                Op::patch("switch_partial_update", "Change some fields of a switch")
                    .body::<SwitchRequest>()
                    .ok::<SwitchOut>(),
                Op::delete("switch_destroy", "Delete a switch"),
            ],
        )
}

async fn visible_switch(state: &AppState, user: &CurrentUser, id: i64) -> ApiResult<Switch> {
    list::fetch_one(&state.db, &SWITCH_LIST, user, id, Switch::from_row).await
}

async fn list_switches(
    State(state): State<AppState>,
    user: CurrentUser,
    q: ListQuery,
) -> ApiResult<Response> {
    list::respond(&state.db, &SWITCH_LIST, &q, &user, |r| {
        Switch::from_row(r).map(SwitchOut::from)
    })
    .await
}

async fn get_switch(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<Json<SwitchOut>> {
    Ok(Json(
        visible_switch(&state, &user, ids.first()).await?.into(),
    ))
}

/// Validates a switch body and where it puts the switch.
async fn switch_write(
    state: &AppState,
    user: &CurrentUser,
    body: &Fields,
    mode: Mode,
) -> ApiResult<SwitchWrite> {
    let mut errors = Errors::default();
    let v = validate_into(body, SWITCH_FIELDS, mode, &mut errors)?;
    let pool = v.has("resource_pool").then(|| v.int("resource_pool"));
    let refused =
        service::switches::check_pool(&state.db, &user.viewer(), pool, mode == Mode::Full).await?;
    match refused {
        Some(PoolRefused::Invisible(p)) => errors.add("resource_pool", invalid_pk(p)),
        Some(PoolRefused::Null) => errors.add("resource_pool", "This field may not be null."),
        Some(PoolRefused::Required) => errors.add("resource_pool", "This field is required."),
        None => {}
    }
    errors.check()?;
    let text = |n: &str| v.str(n).map(Val::Text);
    let nullable = |n: &str| {
        v.has(n).then(|| {
            v.0.get(n)
                .and_then(|x| x.as_str())
                .map_or(Val::Null, Val::from)
        })
    };
    Ok(vec![
        ("name", text("name")),
        ("model", text("model")),
        ("manufacturer", text("manufacturer")),
        ("serial_number", text("serial_number")),
        ("management_ip", nullable("management_ip")),
        ("resource_pool_id", pool.map(Val::from)),
    ])
}

impl From<SwitchError> for ApiError {
    fn from(e: SwitchError) -> Self {
        match e {
            SwitchError::Gone(_) => ApiError::NoMatch("Switch"),
            SwitchError::Db(e) => e.into(),
        }
    }
}

async fn create_switch(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Fields,
) -> ApiResult<Response> {
    let w = switch_write(&state, &user, &body, Mode::Full).await?;
    let s = service::switches::create(&state.db, &user.viewer(), &w).await?;
    Ok((StatusCode::CREATED, Json(SwitchOut::from(s))).into_response())
}

async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
    mode: Mode,
    body: Fields,
) -> ApiResult<Json<SwitchOut>> {
    let sw = visible_switch(&state, &user, ids.first()).await?;
    let w = switch_write(&state, &user, &body, mode).await?;
    let s = service::switches::update(&state.db, &user.viewer(), sw.id, w).await?;
    Ok(Json(s.into()))
}

async fn delete_switch(
    State(state): State<AppState>,
    user: CurrentUser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    let sw = visible_switch(&state, &user, ids.first()).await?;
    service::switches::delete(&state.db, &user.viewer(), sw.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
