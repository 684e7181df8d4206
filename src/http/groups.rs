//! `/api/groups/` (superusers): groups control who sees which pools.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Superuser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::list::{self, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{check_pks, validate_into, Errors, Field, Kind, Mode, MAX_LIST_ITEMS};
use super::AppState;
use crate::db::groups::{self, Group, GROUP_COLUMNS};
use crate::service;
use crate::service::groups::GroupError;

/// A group.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Group)]
pub struct GroupOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Unique name (150 characters at most).
    pub name: String,
    /// Member user ids.
    pub users: Vec<i64>,
}

impl From<Group> for GroupOut {
    fn from(g: Group) -> Self {
        GroupOut {
            id: g.id,
            name: g.name,
            users: g.users,
        }
    }
}

/// Body of a group create or update.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRequest {
    /// Unique name.
    pub name: String,
    /// Member user ids.
    pub users: Option<Vec<i64>>,
}

/// The list declaration of groups.
pub static GROUP_LIST: ListSpec = ListSpec {
    model: "Group",
    from: "auth_group g",
    columns: GROUP_COLUMNS,
    search: &[("name", "g.name")],
    filters: &[],
    ordering: &[("id", "g.id"), ("name", "g.name")],
    id_column: "g.id",
    shape: Shape::Envelope,
    scope: None,
};

const GROUP_FIELDS: &[Field] = &[
    Field::text("name", 150),
    Field::new(
        "users",
        Kind::IntList {
            min: None,
            max: None,
            allow_empty: true,
            max_items: Some(MAX_LIST_ITEMS),
        },
    )
    .optional(),
];

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/groups/",
            get(list_groups).post(create_group),
            [
                Op::get("groups_list", "List groups").list::<GroupOut>(&GROUP_LIST),
                Op::post("groups_create", "Create a group")
                    .body::<GroupRequest>()
                    .created::<GroupOut>(),
            ],
        )
        .route(
            "/api/groups/{id}/",
            get(get_group)
                .put(update)
                .patch(update)
                .delete(delete_group),
            [
                Op::get("groups_retrieve", "A group").ok::<GroupOut>(),
                Op::put("groups_update", "Replace a group")
                    .body::<GroupRequest>()
                    .ok::<GroupOut>(),
                Op::patch("groups_partial_update", "Change some fields of a group")
                    .body::<GroupRequest>()
                    .ok::<GroupOut>(),
                Op::delete("groups_destroy", "Delete a group"),
            ],
        )
}

fn group_error(e: GroupError) -> ApiError {
    match e {
        GroupError::NotFound => ApiError::NoMatch("Group"),
        GroupError::NameTaken => ApiError::field("name", "group with this name already exists."),
        GroupError::DefaultGroup => ApiError::bad_request("Group 1 (Default) cannot be deleted."),
        GroupError::InUse(id) => ApiError::bad_request(format!(
            "Group {id} is in use by pools; move or delete them first."
        )),
        GroupError::Db(e) => e.into(),
    }
}

async fn list_groups(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    q: ListQuery,
) -> ApiResult<Response> {
    let mut listed = list::run(&state.db, &GROUP_LIST, &q, &user, Group::from_row).await?;
    groups::attach_users(&state.db, &mut listed.items).await?;
    Ok(listed.map(GroupOut::from).respond())
}

async fn get_group(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<Json<GroupOut>> {
    let g = service::groups::get(&state.db, ids.first())
        .await
        .map_err(group_error)?;
    Ok(Json(g.into()))
}

/// Validates a group body as the serializer does (every member must exist).
async fn group_input(
    state: &AppState,
    body: &Fields,
    mode: Mode,
) -> ApiResult<(Option<String>, Option<Vec<i64>>)> {
    let mut errors = Errors::default();
    let v = validate_into(body, GROUP_FIELDS, mode, &mut errors)?;
    if let Some(users) = v.ints("users") {
        check_pks(&state.db, "auth_user", "users", &users, &mut errors).await?;
    }
    errors.check()?;
    Ok((v.str("name"), v.ints("users")))
}

async fn create_group(
    State(state): State<AppState>,
    Superuser(me): Superuser,
    body: Fields,
) -> ApiResult<Response> {
    let (name, users) = group_input(&state, &body, Mode::Full).await?;
    let result = service::groups::write(&state.db, &me.viewer(), None, name, users).await;
    state.identities.forget();
    Ok((
        StatusCode::CREATED,
        Json(GroupOut::from(result.map_err(group_error)?)),
    )
        .into_response())
}

async fn update(
    State(state): State<AppState>,
    Superuser(me): Superuser,
    ids: Ids,
    mode: Mode,
    body: Fields,
) -> ApiResult<Json<GroupOut>> {
    let id = ids.first();
    list::require(&state.db, "auth_group", "Group", id).await?;
    let (name, users) = group_input(&state, &body, mode).await?;
    let result = service::groups::write(&state.db, &me.viewer(), Some(id), name, users).await;
    state.identities.forget();
    Ok(Json(result.map_err(group_error)?.into()))
}

async fn delete_group(
    State(state): State<AppState>,
    Superuser(me): Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    let result = service::groups::delete(&state.db, &me.viewer(), ids.first()).await;
    state.identities.forget();
    result.map_err(group_error)?;
    Ok(StatusCode::NO_CONTENT)
}
