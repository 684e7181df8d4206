//! `/api/groups/` (superusers): groups control who sees which pools.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Superuser;
use super::error::{ApiError, ApiResult, ConstraintRule, OnConstraint};
use super::extract::{Fields, Ids};
use super::list::{self, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{check_pks, validate_into, Errors, Field, Kind, Mode};
use super::AppState;
use crate::db::groups::{self, Group, DEFAULT_GROUP_ID, GROUP_COLUMNS};

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
            max_items: None,
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

fn name_taken() -> ApiError {
    ApiError::field("name", "group with this name already exists.")
}

const NAME_RULES: &[ConstraintRule] = &[
    ("auth_group_name_key", name_taken),
    ("auth_group.name", name_taken),
];

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
    let g = groups::get(&state.db, ids.first())
        .await?
        .ok_or(ApiError::NoMatch("Group"))?;
    Ok(Json(g.into()))
}

async fn write(state: &AppState, id: Option<i64>, body: &Fields, mode: Mode) -> ApiResult<i64> {
    let mut errors = Errors::default();
    let v = validate_into(body, GROUP_FIELDS, mode, &mut errors)?;
    if let Some(users) = v.ints("users") {
        check_pks(&state.db, "auth_user", "users", &users, &mut errors).await?;
    }
    errors.check()?;
    let mut tx = state.db.begin().await?;
    let id = match (id, v.str("name")) {
        (None, name) => groups::insert(&mut tx, &name.unwrap_or_default())
            .await
            .on_constraint(NAME_RULES)?,
        (Some(id), Some(name)) => {
            groups::rename(&mut tx, id, &name)
                .await
                .on_constraint(NAME_RULES)?;
            id
        }
        (Some(id), None) => id,
    };
    if let Some(users) = v.ints("users") {
        groups::set_users(&mut tx, id, &users).await?;
    }
    tx.commit().await?;
    state.identities.forget();
    Ok(id)
}

async fn create_group(
    State(state): State<AppState>,
    _: Superuser,
    body: Fields,
) -> ApiResult<Response> {
    let id = write(&state, None, &body, Mode::Full).await?;
    let g = groups::get(&state.db, id)
        .await?
        .ok_or(ApiError::NoMatch("Group"))?;
    Ok((StatusCode::CREATED, Json(GroupOut::from(g))).into_response())
}

async fn update(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
    mode: Mode,
    body: Fields,
) -> ApiResult<Json<GroupOut>> {
    let id = ids.first();
    list::require(&state.db, "auth_group", "Group", id).await?;
    write(&state, Some(id), &body, mode).await?;
    let g = groups::get(&state.db, id)
        .await?
        .ok_or(ApiError::NoMatch("Group"))?;
    Ok(Json(g.into()))
}

async fn delete_group(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    let id = ids.first();
    if id == DEFAULT_GROUP_ID {
        return Err(ApiError::bad_request(
            "Group 1 (Default) cannot be deleted.",
        ));
    }
    match groups::delete(&state.db, id).await {
        Ok(0) => return Err(ApiError::NoMatch("Group")),
        Ok(_) => state.identities.forget(),
        Err(e) if e.is_foreign_key_violation() => {
            return Err(ApiError::bad_request(format!(
                "Group {id} is in use by pools; move or delete them first."
            )))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(StatusCode::NO_CONTENT)
}
