//! Pool membership: assigning servers (or the nodes that stand for them) and switches to a
//! pool in one transaction, refusing the whole call when any member belongs to another pool.

use std::collections::{HashMap, HashSet};

use super::Viewer;
use crate::db::pools::{self, Member};
use crate::db::{Db, DbError};

/// What an assignment moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    /// Servers; an id that is not a server may name a node standing for its servers.
    Servers,
    /// Switches.
    Switches,
}

impl Members {
    /// The request field (and table) of these members.
    pub fn field(self) -> &'static str {
        match self {
            Members::Servers => "servers",
            Members::Switches => "switches",
        }
    }

    fn table(self) -> &'static str {
        self.field()
    }

    fn label(self) -> &'static str {
        match self {
            Members::Servers => "Server",
            Members::Switches => "Switch",
        }
    }

    fn by_node(self) -> bool {
        self == Members::Servers
    }
}

/// Why an assignment changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    /// An id names no member the caller may assign.
    #[error("invalid id {0}")]
    InvalidPk(i64),
    /// Members already in other pools, one message each.
    #[error("members in other pools")]
    Conflicts(Vec<String>),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn conflicts(kind: Members, rows: &[Member], targets: &[i64], pool: i64) -> Vec<String> {
    let targets: HashSet<i64> = targets.iter().copied().collect();
    rows.iter()
        .filter(|m| targets.contains(&m.id))
        .filter_map(|m| match m.pool {
            Some(p) if p != pool => Some(format!(
                "{} {} ({}) is already in pool {} ({}).",
                kind.label(),
                m.id,
                m.name,
                p,
                m.pool_name.as_deref().unwrap_or("")
            )),
            _ => None,
        })
        .collect()
}

/// Puts the members named by `requested` (distinct ids, in request order) into `pool`, all or
/// nothing; returns how many members moved. A member already in `pool` stays; one in another
/// pool refuses the whole call, also when a concurrent assignment takes it between the read
/// and the write.
pub async fn assign(
    db: &Db,
    viewer: &Viewer<'_>,
    pool: i64,
    kind: Members,
    requested: &[i64],
) -> Result<usize, AssignError> {
    let mut tx = db.begin().await?;
    let rows = pools::members(
        &mut tx,
        kind.table(),
        requested,
        kind.by_node(),
        viewer.scope(),
    )
    .await?;
    let by_id: HashSet<i64> = rows.iter().map(|m| m.id).collect();
    let mut by_node: HashMap<i64, Vec<i64>> = HashMap::new();
    for m in &rows {
        if let Some(n) = m.node {
            by_node.entry(n).or_default().push(m.id);
        }
    }
    let mut targets: Vec<i64> = Vec::new();
    let mut taken = HashSet::new();
    for r in requested {
        // A member id wins; otherwise the id names a node standing for its servers.
        let found = if by_id.contains(r) {
            vec![*r]
        } else {
            by_node.get(r).cloned().unwrap_or_default()
        };
        if found.is_empty() {
            return Err(AssignError::InvalidPk(*r));
        }
        targets.extend(found.into_iter().filter(|f| taken.insert(*f)));
    }
    let clash = conflicts(kind, &rows, &targets, pool);
    if !clash.is_empty() {
        return Err(AssignError::Conflicts(clash));
    }
    let n = pools::assign(&mut tx, kind.table(), &targets, pool).await?;
    if usize::try_from(n).unwrap_or(0) != targets.len() {
        // A concurrent assignment took some of them between the read and the update.
        let rows = pools::members(&mut tx, kind.table(), &targets, false, None).await?;
        return Err(AssignError::Conflicts(conflicts(
            kind, &rows, &targets, pool,
        )));
    }
    tx.commit().await?;
    tracing::info!(pool_id = pool, count = targets.len(), what = kind.table(), user = %viewer.username, "assigned to pool");
    Ok(targets.len())
}
