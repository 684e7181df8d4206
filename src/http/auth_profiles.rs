//! `/api/node_discovery/auth_profile/` (superusers) and its credentials. Passwords are sealed
//! before they are stored and never leave the server again.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Superuser;
use super::error::{ApiError, ApiResult};
use super::extract::{Fields, Ids};
use super::list::{self, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{validate, Field, Kind, Mode};
use super::AppState;
use crate::db::auth_profiles::{AuthProfile, AUTH_PROFILE_COLUMNS};
use crate::service;
use crate::service::auth_profiles::ProfileError;

/// An auth profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthProfileOut {
    /// Id.
    #[schema(read_only)]
    pub id: i64,
    /// Unique name (255 characters at most).
    pub node_classification: String,
    /// Management protocol: `redfish`.
    pub bmc: String,
    /// Number of credentials.
    #[schema(read_only)]
    pub credentials_count: i64,
}

impl From<AuthProfile> for AuthProfileOut {
    fn from(p: AuthProfile) -> Self {
        AuthProfileOut {
            id: p.id,
            node_classification: p.node_classification,
            bmc: p.bmc,
            credentials_count: p.credentials_count,
        }
    }
}

/// Body of an auth profile create or update.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthProfileRequest {
    /// Unique name.
    pub node_classification: String,
    /// `redfish` (the default).
    pub bmc: Option<String>,
}

/// A credential as shown: never its password.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialOut {
    /// Id.
    pub id: i64,
    /// BMC user name.
    pub username: String,
}

/// Body of a credential create.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialRequest {
    /// BMC user name.
    pub username: String,
    /// BMC password (write-only, stored encrypted).
    #[schema(write_only)]
    pub password: String,
}

/// The list declaration of auth profiles.
pub static AUTH_PROFILE_LIST: ListSpec = ListSpec {
    model: "AuthProfile",
    from: "auth_profiles p",
    columns: AUTH_PROFILE_COLUMNS,
    search: &[("node_classification", "p.node_classification")],
    filters: &[],
    ordering: &[
        ("id", "p.id"),
        ("node_classification", "p.node_classification"),
    ],
    id_column: "p.id",
    shape: Shape::Envelope,
    scope: None,
};

const BMC_KINDS: &[&str] = &["redfish"];

const FIELDS: &[Field] = &[
    Field::text("node_classification", 255),
    Field::new("bmc", Kind::Choice(BMC_KINDS)).optional(),
];

const CREDENTIAL_FIELDS: &[Field] = &[
    Field::text("username", 255),
    Field {
        max_len: Some(1024),
        ..Field::new("password", Kind::Secret)
    },
];

/// Routes of this resource.
pub fn routes() -> Api {
    Api::new()
        .route(
            "/api/node_discovery/auth_profile/",
            get(list_profiles).post(create_profile),
            [
                Op::get("node_discovery_auth_profile_list", "List auth profiles")
                    .list::<AuthProfileOut>(&AUTH_PROFILE_LIST),
                Op::post(
                    "node_discovery_auth_profile_create",
                    "Create an auth profile",
                )
                .body::<AuthProfileRequest>()
                .created::<AuthProfileOut>(),
            ],
        )
        .route(
            "/api/node_discovery/auth_profile/{id}/",
            get(get_profile)
                .put(update)
                .patch(update)
                .delete(delete_profile),
            [
                Op::get("node_discovery_auth_profile_retrieve", "An auth profile")
                    .ok::<AuthProfileOut>(),
                Op::put(
                    "node_discovery_auth_profile_update",
                    "Replace an auth profile",
                )
                .body::<AuthProfileRequest>()
                .ok::<AuthProfileOut>(),
                Op::patch(
                    "node_discovery_auth_profile_partial_update",
                    "Change some fields of an auth profile",
                )
                .body::<AuthProfileRequest>()
                .ok::<AuthProfileOut>(),
                Op::delete(
                    "node_discovery_auth_profile_destroy",
                    "Delete an auth profile (refused while nodes use it)",
                ),
            ],
        )
        .route(
            "/api/node_discovery/auth_profile/{id}/credentials/",
            get(list_credentials).post(add_credential),
            [
                Op::get(
                    "node_discovery_auth_profile_credentials_list",
                    "Credentials of a profile (usernames only)",
                )
                .array::<CredentialOut>(),
                Op::post(
                    "node_discovery_auth_profile_credentials_create",
                    "Add a credential to a profile",
                )
                .body::<CredentialRequest>()
                .created::<CredentialOut>(),
            ],
        )
        .route(
            "/api/node_discovery/auth_profile/{id}/credentials/{cid}/",
            delete(delete_credential),
            [Op::delete(
                "node_discovery_auth_profile_credentials_destroy",
                "Remove a credential",
            )],
        )
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::NotFound => ApiError::NoMatch("AuthProfile"),
            ProfileError::NoCredential => ApiError::NoMatch("Credential"),
            ProfileError::NameTaken => ApiError::field(
                "node_classification",
                "auth profile with this node classification already exists.",
            ),
            ProfileError::InUse { profile, nodes } => {
                let list = nodes
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                ApiError::bad_request(format!(
                    "Auth profile {profile} is used by nodes {list}; it cannot be deleted."
                ))
            }
            ProfileError::Seal(e) => ApiError::Internal(e.to_string()),
            ProfileError::Db(e) => e.into(),
        }
    }
}

async fn list_profiles(
    State(state): State<AppState>,
    Superuser(user): Superuser,
    q: ListQuery,
) -> ApiResult<Response> {
    list::respond(&state.db, &AUTH_PROFILE_LIST, &q, &user, |r| {
        AuthProfile::from_row(r).map(AuthProfileOut::from)
    })
    .await
}

async fn get_profile(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<Json<AuthProfileOut>> {
    let p = service::auth_profiles::get(&state.db, ids.first()).await?;
    Ok(Json(p.into()))
}

async fn create_profile(
    State(state): State<AppState>,
    _: Superuser,
    body: Fields,
) -> ApiResult<Response> {
    let v = validate(&body, FIELDS, Mode::Full)?;
    let p = service::auth_profiles::create(
        &state.db,
        &v.str("node_classification").unwrap_or_default(),
        &v.str("bmc").unwrap_or_else(|| "redfish".into()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(AuthProfileOut::from(p))).into_response())
}

async fn update(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
    mode: Mode,
    body: Fields,
) -> ApiResult<Json<AuthProfileOut>> {
    let id = ids.first();
    service::auth_profiles::require(&state.db, id).await?;
    let v = validate(&body, FIELDS, mode)?;
    let p =
        service::auth_profiles::update(&state.db, id, v.str("node_classification"), v.str("bmc"))
            .await?;
    Ok(Json(p.into()))
}

async fn delete_profile(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    service::auth_profiles::delete(&state.db, ids.first()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_credentials(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<Json<Vec<CredentialOut>>> {
    let items = service::auth_profiles::credentials(&state.db, ids.first())
        .await?
        .into_iter()
        .map(|(id, username)| CredentialOut { id, username })
        .collect();
    Ok(Json(items))
}

async fn add_credential(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
    body: Fields,
) -> ApiResult<Response> {
    let profile = ids.first();
    service::auth_profiles::require(&state.db, profile).await?;
    let v = validate(&body, CREDENTIAL_FIELDS, Mode::Full)?;
    let username = v.str("username").unwrap_or_default();
    let password = v.str("password").unwrap_or_default();
    let id = service::auth_profiles::add_credential(
        &state.db,
        &state.credential_key,
        profile,
        &username,
        &password,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CredentialOut { id, username })).into_response())
}

async fn delete_credential(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    service::auth_profiles::delete_credential(&state.db, ids.first(), ids.second()).await?;
    Ok(StatusCode::NO_CONTENT)
}
