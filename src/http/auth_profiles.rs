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
use super::error::{ApiError, ApiResult, ConstraintRule, OnConstraint};
use super::extract::{Fields, Ids};
use super::list::{self, ListQuery, ListSpec, Shape};
use super::routes::{Api, Op};
use super::validate::{validate, Field, Kind, Mode};
use super::AppState;
use crate::db::auth_profiles::{self, AuthProfile, AUTH_PROFILE_COLUMNS};
use crate::discovery::sealing;

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

fn name_taken() -> ApiError {
    ApiError::field(
        "node_classification",
        "auth profile with this node classification already exists.",
    )
}

const NAME_RULES: &[ConstraintRule] = &[
    ("auth_profiles_node_classification_key", name_taken),
    ("auth_profiles.node_classification", name_taken),
];

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
    let p = auth_profiles::get(&state.db, ids.first())
        .await?
        .ok_or(ApiError::NoMatch("AuthProfile"))?;
    Ok(Json(p.into()))
}

async fn create_profile(
    State(state): State<AppState>,
    _: Superuser,
    body: Fields,
) -> ApiResult<Response> {
    let v = validate(&body, FIELDS, Mode::Full)?;
    let mut tx = state.db.begin().await?;
    let id = auth_profiles::insert(
        &mut tx,
        &v.str("node_classification").unwrap_or_default(),
        &v.str("bmc").unwrap_or_else(|| "redfish".into()),
    )
    .await
    .on_constraint(NAME_RULES)?;
    tx.commit().await?;
    let p = auth_profiles::get(&state.db, id)
        .await?
        .ok_or(ApiError::NoMatch("AuthProfile"))?;
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
    list::require(&state.db, "auth_profiles", "AuthProfile", id).await?;
    let v = validate(&body, FIELDS, mode)?;
    let mut tx = state.db.begin().await?;
    auth_profiles::update(&mut tx, id, v.str("node_classification"), v.str("bmc"))
        .await
        .on_constraint(NAME_RULES)?;
    tx.commit().await?;
    let p = auth_profiles::get(&state.db, id)
        .await?
        .ok_or(ApiError::NoMatch("AuthProfile"))?;
    Ok(Json(p.into()))
}

fn in_use(id: i64, nodes: &[i64]) -> ApiError {
    let list = nodes
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    ApiError::bad_request(format!(
        "Auth profile {id} is used by nodes {list}; it cannot be deleted."
    ))
}

async fn delete_profile(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    let id = ids.first();
    // A profile that nodes use is protected by their foreign key; the violation names them.
    match auth_profiles::delete(&state.db, id).await {
        Ok(0) => Err(ApiError::NoMatch("AuthProfile")),
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(e) if e.is_foreign_key_violation() => {
            let using = auth_profiles::nodes_using(&state.db, id, 10).await?;
            Err(in_use(id, &using))
        }
        Err(e) => Err(e.into()),
    }
}

async fn list_credentials(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<Json<Vec<CredentialOut>>> {
    let id = ids.first();
    list::require(&state.db, "auth_profiles", "AuthProfile", id).await?;
    let items = auth_profiles::credential_names(&state.db, id)
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
    list::require(&state.db, "auth_profiles", "AuthProfile", profile).await?;
    let v = validate(&body, CREDENTIAL_FIELDS, Mode::Full)?;
    let username = v.str("username").unwrap_or_default();
    let password = v.str("password").unwrap_or_default();
    // The row id is the seal's associated data: insert, seal, update, one transaction.
    let mut tx = state.db.begin().await?;
    let id = auth_profiles::insert_credential(&mut tx, profile, &username).await?;
    let sealed = sealing::seal(&state.credential_key, id, &password)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    auth_profiles::set_secret(&mut tx, id, sealed).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(CredentialOut { id, username })).into_response())
}

async fn delete_credential(
    State(state): State<AppState>,
    _: Superuser,
    ids: Ids,
) -> ApiResult<StatusCode> {
    let (profile, id) = (ids.first(), ids.second());
    list::require(&state.db, "auth_profiles", "AuthProfile", profile).await?;
    match auth_profiles::delete_credential(&state.db, profile, id).await? {
        0 => Err(ApiError::NoMatch("Credential")),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}
