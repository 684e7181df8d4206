//! Groups: names and members; group 1 (Default) stays, and a group that pools use stays.

use super::Viewer;
use crate::db::groups::{self, Group, DEFAULT_GROUP_ID};
use crate::db::{Db, DbError};

/// Why a group change changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// No such group.
    #[error("no such group")]
    NotFound,
    /// Another group has the name.
    #[error("group name taken")]
    NameTaken,
    /// Group 1 cannot be deleted.
    #[error("the default group cannot be deleted")]
    DefaultGroup,
    /// Pools still belong to the group.
    #[error("group {0} is in use by pools")]
    InUse(i64),
    /// Storage failed.
    #[error(transparent)]
    Db(DbError),
}

const NAME_UNIQUE: [&str; 2] = ["auth_group_name_key", "auth_group.name"];

impl From<DbError> for GroupError {
    fn from(e: DbError) -> Self {
        if NAME_UNIQUE.iter().any(|k| e.violates(k)) {
            GroupError::NameTaken
        } else {
            GroupError::Db(e)
        }
    }
}

/// One group with its members.
pub async fn get(db: &Db, id: i64) -> Result<Group, GroupError> {
    groups::get(db, id).await?.ok_or(GroupError::NotFound)
}

/// Creates (`id` None) or changes a group: its name and, when sent, its members (existence
/// checked by the caller's validation), in one transaction.
pub async fn write(
    db: &Db,
    viewer: &Viewer<'_>,
    id: Option<i64>,
    name: Option<String>,
    users: Option<Vec<i64>>,
) -> Result<Group, GroupError> {
    if let Some(id) = id {
        if !groups::exists(db, id).await? {
            return Err(GroupError::NotFound);
        }
    }
    let mut tx = db.begin().await?;
    let id = match (id, name) {
        (None, name) => groups::insert(&mut tx, &name.unwrap_or_default()).await?,
        (Some(id), Some(name)) => {
            groups::rename(&mut tx, id, &name).await?;
            id
        }
        (Some(id), None) => id,
    };
    if let Some(users) = &users {
        groups::set_users(&mut tx, id, users).await?;
    }
    tx.commit().await?;
    tracing::info!(group_id = id, by = ?viewer.username, "group written");
    get(db, id).await
}

/// Deletes a group, refused for group 1 and for groups that pools use.
pub async fn delete(db: &Db, viewer: &Viewer<'_>, id: i64) -> Result<(), GroupError> {
    if id == DEFAULT_GROUP_ID {
        return Err(GroupError::DefaultGroup);
    }
    match groups::delete(db, id).await {
        Ok(0) => Err(GroupError::NotFound),
        Ok(_) => {
            tracing::info!(group_id = id, by = ?viewer.username, "group deleted");
            Ok(())
        }
        Err(e) if e.is_foreign_key_violation() => Err(GroupError::InUse(id)),
        Err(e) => Err(e.into()),
    }
}
