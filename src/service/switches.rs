//! Switches: who may put a switch where, and its writes. A switch is visible, like a server,
//! through its pool, so a non-superuser keeps every switch they write in a pool they can see.

use super::Viewer;
use crate::db::switches::{self, Switch, SwitchWrite};
use crate::db::{Db, DbError};

/// Why the pool of a switch write is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolRefused {
    /// The pool does not exist or the viewer cannot see it.
    Invisible(i64),
    /// A non-superuser tried to take the switch out of every pool.
    Null,
    /// A non-superuser replaced a switch without naming its pool.
    Required,
}

/// Checks the `resource_pool` of a write: `pool` is None when the body does not name it,
/// `Some(None)` when it sets it to null; `full` is a create or replace.
pub async fn check_pool(
    db: &Db,
    viewer: &Viewer<'_>,
    pool: Option<Option<i64>>,
    full: bool,
) -> Result<Option<PoolRefused>, DbError> {
    Ok(match pool {
        Some(Some(p)) if !super::pools::can_see(db, viewer, p).await? => {
            Some(PoolRefused::Invisible(p))
        }
        Some(None) if !viewer.is_superuser => Some(PoolRefused::Null),
        None if full && !viewer.is_superuser => Some(PoolRefused::Required),
        _ => None,
    })
}

/// Why a switch write changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The switch vanished between the write and the read back.
    #[error("switch {0} does not exist")]
    Gone(i64),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

async fn read_back(db: &Db, id: i64) -> Result<Switch, SwitchError> {
    switches::get(db, id).await?.ok_or(SwitchError::Gone(id))
}

/// Creates a switch from a checked write.
pub async fn create(db: &Db, viewer: &Viewer<'_>, w: &SwitchWrite) -> Result<Switch, SwitchError> {
    let id = switches::insert(db, w).await?;
    tracing::info!(switch_id = id, user = %viewer.username, "switch created");
    read_back(db, id).await
}

/// Changes a switch the viewer can see with a checked write.
pub async fn update(
    db: &Db,
    viewer: &Viewer<'_>,
    id: i64,
    w: SwitchWrite,
) -> Result<Switch, SwitchError> {
    switches::update(db, id, w).await?;
    tracing::info!(switch_id = id, user = %viewer.username, "switch updated");
    read_back(db, id).await
}

/// Deletes a switch the viewer can see.
pub async fn delete(db: &Db, viewer: &Viewer<'_>, id: i64) -> Result<(), DbError> {
    switches::delete(db, id).await?;
    tracing::info!(switch_id = id, user = %viewer.username, "switch deleted");
    Ok(())
}
