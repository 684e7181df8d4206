//! Auth profiles and their credentials: names unique, a profile that nodes use is kept, and a
//! password is sealed with the credential key (its row id bound in) before it is stored.

use crate::db::auth_profiles::{self, AuthProfile};
use crate::db::{Db, DbError};
use crate::discovery::sealing::{self, SealError};
use crate::keys::CredentialKey;

/// Why a profile change changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No profile with that id.
    #[error("no such auth profile")]
    NotFound,
    /// The profile has no credential with that id.
    #[error("no such credential")]
    NoCredential,
    /// Another profile has this `node_classification`.
    #[error("the node classification is taken")]
    NameTaken,
    /// Nodes registered with the profile (the first few ids).
    #[error("auth profile {profile} is in use")]
    InUse {
        /// The profile.
        profile: i64,
        /// The first few nodes using it.
        nodes: Vec<i64>,
    },
    /// The password could not be sealed.
    #[error("cannot seal the credential: {0}")]
    Seal(#[from] SealError),
    /// Storage failed.
    #[error(transparent)]
    Db(DbError),
}

impl From<DbError> for ProfileError {
    fn from(e: DbError) -> Self {
        if auth_profiles::is_name_taken(&e) {
            ProfileError::NameTaken
        } else {
            ProfileError::Db(e)
        }
    }
}

async fn read_back(db: &Db, id: i64) -> Result<AuthProfile, ProfileError> {
    auth_profiles::get(db, id)
        .await?
        .ok_or(ProfileError::NotFound)
}

/// The profile `id`.
pub async fn get(db: &Db, id: i64) -> Result<AuthProfile, ProfileError> {
    read_back(db, id).await
}

/// Fails with NotFound unless profile `id` exists.
pub async fn require(db: &Db, id: i64) -> Result<(), ProfileError> {
    read_back(db, id).await.map(drop)
}

/// Creates a profile.
pub async fn create(
    db: &Db,
    node_classification: &str,
    bmc: &str,
) -> Result<AuthProfile, ProfileError> {
    let id = auth_profiles::insert(db, node_classification, bmc).await?;
    tracing::info!(auth_profile_id = id, "auth profile created");
    read_back(db, id).await
}

/// Changes the fields given of profile `id`.
pub async fn update(
    db: &Db,
    id: i64,
    node_classification: Option<String>,
    bmc: Option<String>,
) -> Result<AuthProfile, ProfileError> {
    require(db, id).await?;
    auth_profiles::update(db, id, node_classification, bmc).await?;
    read_back(db, id).await
}

/// Deletes profile `id` with its credentials, refused while nodes use it (their foreign key
/// protects it, so a node registered concurrently is never left without its profile).
pub async fn delete(db: &Db, id: i64) -> Result<(), ProfileError> {
    match auth_profiles::delete(db, id).await {
        Ok(0) => Err(ProfileError::NotFound),
        Ok(_) => {
            tracing::info!(auth_profile_id = id, "auth profile deleted");
            Ok(())
        }
        Err(e) if e.is_foreign_key_violation() => Err(ProfileError::InUse {
            profile: id,
            nodes: auth_profiles::nodes_using(db, id, 10).await?,
        }),
        Err(e) => Err(e.into()),
    }
}

/// The (id, username) of a profile's credentials, in the order they are tried.
pub async fn credentials(db: &Db, profile: i64) -> Result<Vec<(i64, String)>, ProfileError> {
    require(db, profile).await?;
    Ok(auth_profiles::credential_names(db, profile).await?)
}

/// Adds a credential to a profile: insert, seal with the row id, store the seal, in one
/// transaction. Returns the credential id.
pub async fn add_credential(
    db: &Db,
    key: &CredentialKey,
    profile: i64,
    username: &str,
    password: &str,
) -> Result<i64, ProfileError> {
    require(db, profile).await?;
    let mut tx = db.begin().await?;
    let id = auth_profiles::insert_credential(&mut tx, profile, username).await?;
    let sealed = sealing::seal(key, id, password)?;
    auth_profiles::set_secret(&mut tx, id, sealed).await?;
    tx.commit().await?;
    tracing::info!(
        auth_profile_id = profile,
        credential_id = id,
        "credential added"
    );
    Ok(id)
}

/// Removes credential `id` of `profile`.
pub async fn delete_credential(db: &Db, profile: i64, id: i64) -> Result<(), ProfileError> {
    require(db, profile).await?;
    match auth_profiles::delete_credential(db, profile, id).await? {
        0 => Err(ProfileError::NoCredential),
        _ => Ok(()),
    }
}
