//! Servers: changes refused while a server is locked by an active deployment, and taking
//! servers out of their pools, all or nothing.

use super::Viewer;
use crate::db::{servers, Db, DbError};

/// Why a server change changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// An id names no server the caller can see.
    #[error("invalid id {0}")]
    InvalidPk(i64),
    /// A server is locked by an active deployment: (server, deployment).
    #[error("{}", servers::locked_message(*.0, *.1))]
    Locked(i64, i64),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Refuses a pool change of any of `ids` while one is locked by an active deployment.
pub async fn refuse_locked(db: &Db, ids: &[i64]) -> Result<(), ChangeError> {
    match servers::first_locked(db, ids).await? {
        Some((server, deployment)) => Err(ChangeError::Locked(server, deployment)),
        None => Ok(()),
    }
}

/// Unassigns the servers `ids` (distinct, in request order) in one transaction; every one must
/// be visible to the viewer and none may be locked.
pub async fn remove_from_pool(
    db: &Db,
    viewer: &Viewer<'_>,
    ids: &[i64],
) -> Result<(), ChangeError> {
    let mut tx = db.begin().await?;
    let found = servers::visible_ids(&mut tx, ids, viewer.scope()).await?;
    // The lock comes before every other rule (of the servers the viewer sees).
    let seen: Vec<i64> = ids.iter().copied().filter(|i| found.contains(i)).collect();
    if let Some((server, deployment)) = servers::first_locked(&mut tx, &seen).await? {
        return Err(ChangeError::Locked(server, deployment));
    }
    if let Some(missing) = ids.iter().find(|i| !found.contains(i)) {
        return Err(ChangeError::InvalidPk(*missing));
    }
    servers::set_pool(&mut tx, ids, None).await?;
    tx.commit().await?;
    tracing::info!(count = ids.len(), user = %viewer.username, "servers removed from pools");
    Ok(())
}

/// Renames a server and/or moves it to another pool (`Some(None)`: unassigned); a pool change
/// is refused while the server is locked (a rename is not). The caller has checked that it may
/// see the server and the target pool, and that the pool changes.
pub async fn update(
    db: &Db,
    viewer: &Viewer<'_>,
    id: i64,
    name: Option<&str>,
    pool: Option<Option<i64>>,
) -> Result<(), ChangeError> {
    if pool.is_some() {
        refuse_locked(db, &[id]).await?;
    }
    let mut tx = db.begin().await?;
    servers::update(&mut tx, id, name, pool).await?;
    tx.commit().await?;
    tracing::info!(server_id = id, user = %viewer.username, "server updated");
    Ok(())
}

/// Deletes a server (its node goes back to `discovered`), refused while it is locked.
pub async fn delete(db: &Db, viewer: &Viewer<'_>, id: i64) -> Result<(), ChangeError> {
    refuse_locked(db, &[id]).await?;
    let mut tx = db.begin().await?;
    servers::delete(&mut tx, id).await?;
    tx.commit().await?;
    tracing::info!(server_id = id, user = %viewer.username, "server deleted");
    Ok(())
}
