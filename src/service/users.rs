//! Users: creating, changing and deleting accounts. A password change or a deactivation
//! revokes every token the user holds (tokens issued before it are refused).

use super::passwords::{self, HashError};
use super::Viewer;
use crate::db::users::{self, User, UserWrite};
use crate::db::{now, Db, DbError};

/// The validated fields of a user create or update (`None`: not sent).
#[derive(Debug, Default, Clone)]
pub struct UserInput {
    /// User name.
    pub username: Option<String>,
    /// New password, in clear (hashed here).
    pub password: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Superuser flag.
    pub is_superuser: Option<bool>,
    /// Active flag.
    pub is_active: Option<bool>,
    /// Group ids (existence checked by the caller's validation).
    pub groups: Option<Vec<i64>>,
}

/// Why a user change changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// Another user has the name.
    #[error("user name taken")]
    UsernameTaken,
    /// A user may not delete their own account.
    #[error("cannot delete oneself")]
    SelfDelete,
    /// Password hashing is saturated.
    #[error("password hashing busy")]
    Busy,
    /// Password hashing failed.
    #[error("{0}")]
    Hash(String),
    /// Storage failed.
    #[error(transparent)]
    Db(DbError),
}

const USERNAME_UNIQUE: [&str; 2] = ["auth_user_username_key", "auth_user.username"];

impl From<DbError> for UserError {
    fn from(e: DbError) -> Self {
        if USERNAME_UNIQUE.iter().any(|k| e.violates(k)) {
            UserError::UsernameTaken
        } else {
            UserError::Db(e)
        }
    }
}

impl From<HashError> for UserError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => UserError::Busy,
            HashError::Failed(m) => UserError::Hash(m),
            HashError::Db(e) => UserError::Db(e),
        }
    }
}

/// The "valid after" time of a revocation now: now, but always past the previous one, since
/// tokens minted right after a change carry that second as their `iat`.
async fn revocation_time(db: &Db, id: i64) -> Result<chrono::DateTime<chrono::Utc>, UserError> {
    let t = now();
    let previous = users::auth_info(db, id)
        .await?
        .and_then(|u| u.tokens_valid_after)
        .and_then(|secs| chrono::DateTime::from_timestamp(secs + 1, 0));
    Ok(previous.map_or(t, |p| p.max(t)))
}

async fn to_write(input: UserInput) -> Result<UserWrite, UserError> {
    let password_hash = match input.password {
        Some(p) => Some(passwords::hash(p).await?),
        None => None,
    };
    // Old tokens die with the old password, and with the account's deactivation.
    let revoke = password_hash.is_some() || input.is_active == Some(false);
    Ok(UserWrite {
        username: input.username,
        password_hash,
        email: input.email,
        first_name: input.first_name,
        last_name: input.last_name,
        is_superuser: input.is_superuser,
        is_active: input.is_active,
        groups: input.groups,
        // Made exact by `update`, which knows the previous revocation.
        tokens_valid_after: revoke.then(now),
    })
}

/// One user.
pub async fn get(db: &Db, id: i64) -> Result<User, UserError> {
    users::get(db, id).await?.ok_or(UserError::NotFound)
}

/// Creates a user (the caller has required a password).
pub async fn create(db: &Db, viewer: &Viewer<'_>, input: UserInput) -> Result<User, UserError> {
    let mut w = to_write(input).await?;
    w.tokens_valid_after = None;
    let mut tx = db.begin().await?;
    let id = users::insert(&mut tx, &w).await?;
    tx.commit().await?;
    tracing::info!(user_id = id, by = ?viewer.username, "user created");
    get(db, id).await
}

/// Changes the fields that were sent.
pub async fn update(
    db: &Db,
    viewer: &Viewer<'_>,
    id: i64,
    input: UserInput,
) -> Result<User, UserError> {
    if users::get(db, id).await?.is_none() {
        return Err(UserError::NotFound);
    }
    let mut w = to_write(input).await?;
    if w.tokens_valid_after.is_some() {
        w.tokens_valid_after = Some(revocation_time(db, id).await?);
    }
    let mut tx = db.begin().await?;
    users::update(&mut tx, id, &w).await?;
    tx.commit().await?;
    tracing::info!(
        user_id = id,
        by = ?viewer.username,
        tokens_revoked = w.tokens_valid_after.is_some(),
        "user updated"
    );
    get(db, id).await
}

/// Deletes a user other than the caller.
pub async fn delete(db: &Db, viewer: &Viewer<'_>, id: i64) -> Result<(), UserError> {
    if id == viewer.id {
        return Err(UserError::SelfDelete);
    }
    if users::delete(db, id).await? == 0 {
        return Err(UserError::NotFound);
    }
    tracing::info!(user_id = id, by = ?viewer.username, "user deleted");
    Ok(())
}
