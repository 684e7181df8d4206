//! Servers: taking servers out of their pools, all or nothing.

use super::Viewer;
use crate::db::{servers, Db, DbError};

/// Why servers were not removed from their pools.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// An id names no server the caller can see.
    #[error("invalid id {0}")]
    InvalidPk(i64),
    /// A server is locked by an active deployment.
    #[error("server {0} is locked")]
    Locked(i64),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Unassigns the servers `ids` (distinct, in request order) in one transaction; every one must
/// be visible to the viewer and none may be locked.
pub async fn remove_from_pool(
    db: &Db,
    viewer: &Viewer<'_>,
    ids: &[i64],
) -> Result<(), RemoveError> {
    let mut tx = db.begin().await?;
    let found = servers::visible_ids(&mut tx, ids, viewer.scope()).await?;
    if let Some(missing) = ids.iter().find(|i| !found.contains(i)) {
        return Err(RemoveError::InvalidPk(*missing));
    }
    if let Some(id) = servers::first_locked(db, ids).await? {
        return Err(RemoveError::Locked(id));
    }
    servers::set_pool(&mut tx, ids, None).await?;
    tx.commit().await?;
    tracing::info!(count = ids.len(), user = %viewer.username, "servers removed from pools");
    Ok(())
}
