//! `/api/users/` (superusers) and `/api/users/me/` (everyone).

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
use super::validate::{check_pks, validate_into, Errors, Field, Kind, Mode, Valid, MAX_LIST_ITEMS};
use super::wire::render_time;
use super::AppState;
use crate::db::users::{self, User, USER_COLUMNS};
use crate::service;
use crate::service::passwords::BUSY_RETRY_AFTER;
use crate::service::users::{UserError, UserInput};

/// A user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Unique user name (150 characters at most).
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Superusers see and do everything.
    pub is_superuser: bool,
    /// Inactive users cannot log in.
    pub is_active: bool,
    /// Group ids.
    pub groups: Vec<i64>,
    /// Last successful login.
    #[schema(read_only)]
    pub last_login: Option<String>,
    /// When the user was created.
    #[schema(read_only)]
    pub date_joined: String,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        UserOut {
            id: u.id,
            username: u.username,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            is_superuser: u.is_superuser,
            is_active: u.is_active,
            groups: u.groups,
            last_login: u.last_login.as_ref().map(render_time),
            date_joined: render_time(&u.date_joined),
        }
    }
}

/// Body of a user create or update.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRequest {
    /// Unique user name.
    pub username: String,
    /// Password (write-only; required on create).
    #[schema(write_only)]
    pub password: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Superuser flag.
    pub is_superuser: Option<bool>,
    /// Active flag.
    pub is_active: Option<bool>,
    /// Group ids.
    pub groups: Option<Vec<i64>>,
}

/// The list declaration of users.
pub static USER_LIST: ListSpec = ListSpec {
    model: "User",
    from: "auth_user u",
    columns: USER_COLUMNS,
    search: &[
        ("username", "u.username"),
        ("email", "u.email"),
        ("first_name", "u.first_name"),
        ("last_name", "u.last_name"),
    ],
    filters: &[
        Filter {
            param: "username",
            column: "u.username",
            kind: FilterKind::Exact,
        },
        Filter {
            param: "is_superuser",
            column: "u.is_superuser",
            kind: FilterKind::Bool,
        },
        Filter {
            param: "is_active",
            column: "u.is_active",
            kind: FilterKind::Bool,
        },
    ],
    ordering: &[
        ("id", "u.id"),
        ("username", "u.username"),
        ("email", "u.email"),
        ("date_joined", "u.date_joined"),
        ("last_login", "u.last_login"),
    ],
    id_column: "u.id",
    shape: Shape::Envelope,
    scope: None,
};

const USER_FIELDS: &[Field] = &[
    Field::text("username", 150),
    Field::new("password", Kind::Secret).optional(),
    Field {
        max_len: Some(254),
        ..Field::new("email", Kind::Email).optional().blank()
    },
    Field {
        max_len: Some(150),
        ..Field::new("first_name", Kind::Str).optional().blank()
    },
    Field {
        max_len: Some(150),
        ..Field::new("last_name", Kind::Str).optional().blank()
    },
    Field::new("is_superuser", Kind::Bool).optional(),
    Field::new("is_active", Kind::Bool).optional(),
    Field::new(
        "groups",
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
            "/api/users/me/",
            get(me),
            [Op::get("users_me_retrieve", "The authenticated user").ok::<UserOut>()],
        )
        .route(
            "/api/users/",
            get(list_users).post(create_user),
            [
                Op::get("users_list", "List users").list::<UserOut>(&USER_LIST),
                Op::post("users_create", "Create a user")
                    .body::<UserRequest>()
                    .created::<UserOut>(),
            ],
        )
        .route(
            "/api/users/{id}/",
            get(get_user).put(update).patch(update).delete(delete_user),
            [
                Op::get("users_retrieve", "A user").ok::<UserOut>(),
                Op::put("users_update", "Replace a user")
                    .body::<UserRequest>()
                    .ok::<UserOut>(),
                Op::patch("users_partial_update", "Change some fields of a user")
                    .body::<UserRequest>()
                    .ok::<UserOut>(),
                Op::delete("users_destroy", "Delete a user"),
            ],
        )
}

fn user_error(e: UserError) -> ApiError {
    match e {
        UserError::NotFound => ApiError::NoMatch("User"),
        UserError::UsernameTaken => {
            ApiError::field("username", "A user with that username already exists.")
        }
        UserError::SelfDelete => ApiError::bad_request("You cannot delete your own account."),
        UserError::Busy => ApiError::Throttled(BUSY_RETRY_AFTER),
        UserError::Hash(m) => ApiError::Internal(m),
        UserError::Db(e) => e.into(),
    }
}

async fn me(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<UserOut>> {
    let u = service::users::get(&state.db, user.id)
        .await
        .map_err(user_error)?;
    Ok(Json(u.into()))
}

async fn list_users(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    q: ListQuery,
) -> ApiResult<Response> {
    let mut listed = list::run(&state.db, &USER_LIST, &q, &user, User::from_row).await?;
    users::attach_groups(&state.db, &mut listed.items).await?;
    Ok(listed.map(UserOut::from).respond())
}

async fn get_user(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<Json<UserOut>> {
    let u = service::users::get(&state.db, ids.first())
        .await
        .map_err(user_error)?;
    Ok(Json(u.into()))
}

/// Validates a user body as the serializer does: field types, a password on create, and
/// that every group exists.
async fn user_input(
    state: &AppState,
    body: &Fields,
    mode: Mode,
    creating: bool,
) -> ApiResult<UserInput> {
    let mut errors = Errors::default();
    let v: Valid = validate_into(body, USER_FIELDS, mode, &mut errors)?;
    if creating && !v.has("password") {
        errors.add("password", "This field is required.");
    }
    if let Some(groups) = v.ints("groups") {
        check_pks(&state.db, "auth_group", "groups", &groups, &mut errors).await?;
    }
    errors.check()?;
    Ok(UserInput {
        username: v.str("username"),
        password: v.str("password"),
        email: v.str("email"),
        first_name: v.str("first_name"),
        last_name: v.str("last_name"),
        is_superuser: v.bool("is_superuser"),
        is_active: v.bool("is_active"),
        groups: v.ints("groups"),
    })
}

async fn create_user(
    State(state): State<AppState>,
    Superuser(me): Superuser,
    body: Fields,
) -> ApiResult<Response> {
    let input = user_input(&state, &body, Mode::Full, true).await?;
    let u = service::users::create(&state.db, &me.viewer(), input)
        .await
        .map_err(user_error)?;
    Ok((StatusCode::CREATED, Json(UserOut::from(u))).into_response())
}

async fn update(
    State(state): State<AppState>,
    Superuser(me): Superuser,
    ids: Ids,
    mode: Mode,
    body: Fields,
) -> ApiResult<Json<UserOut>> {
    let id = ids.first();
    list::require(&state.db, "auth_user", "User", id).await?;
    let input = user_input(&state, &body, mode, false).await?;
    let result = service::users::update(&state.db, &me.viewer(), id, input).await;
    state.identities.forget();
    Ok(Json(result.map_err(user_error)?.into()))
}

async fn delete_user(
    State(state): State<AppState>,
    Superuser(me): Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    let result = service::users::delete(&state.db, &me.viewer(), ids.first()).await;
    state.identities.forget();
    result.map_err(user_error)?;
    Ok(StatusCode::NO_CONTENT)
}
