//! Pool membership: assigning servers (or the nodes that stand for them) and switches to a
//! pool in one transaction, refusing the whole call when any member belongs to another pool.

use std::collections::{HashMap, HashSet};

use super::Viewer;
use crate::db::pools::{self, Member, Pool, PoolWrite};
use crate::db::{groups, Db, DbError};

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
    /// A server that would move is locked by an active deployment: (server, deployment).
    #[error("{}", crate::db::servers::locked_message(*.0, *.1))]
    Locked(i64, i64),
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
/// nothing; returns how many members moved. A caller sees (and may name) exactly the members
/// the server or switch list shows them; an id that is none of those names a node only when
/// every server of that node is one of those. Anything else is an invalid id. A member already in `pool` stays; one in another
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
    // A node stands for its servers only when the caller could assign every one of them.
    if kind.by_node() && viewer.scope().is_some() {
        let all = pools::members(&mut tx, kind.table(), requested, true, None).await?;
        for m in all.iter().filter(|m| !by_id.contains(&m.id)) {
            if let Some(n) = m.node {
                by_node.remove(&n);
            }
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
    if kind == Members::Servers {
        // The deployment lock comes before every other rule: servers that would move.
        let moving: Vec<i64> = targets
            .iter()
            .copied()
            .filter(|t| rows.iter().any(|m| m.id == *t && m.pool != Some(pool)))
            .collect();
        if let Some((server, deployment)) =
            crate::db::servers::first_locked(&mut tx, &moving).await?
        {
            return Err(AssignError::Locked(server, deployment));
        }
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

/// The pool `id` when the viewer may see it.
pub async fn visible(db: &Db, viewer: &Viewer<'_>, id: i64) -> Result<Option<Pool>, DbError> {
    if viewer.scope().is_some() && !pools::visible(db, viewer.scope(), id).await? {
        return Ok(None);
    }
    pools::get(db, id).await
}

/// True when the viewer may see pool `id`.
pub async fn can_see(db: &Db, viewer: &Viewer<'_>, id: i64) -> Result<bool, DbError> {
    pools::visible(db, viewer.scope(), id).await
}

/// True when `group` exists and the viewer may give a pool to it (superusers: any group;
/// others: their own groups).
pub async fn group_allowed(db: &Db, viewer: &Viewer<'_>, group: i64) -> Result<bool, DbError> {
    if viewer.scope().is_some_and(|g| !g.contains(&group)) {
        return Ok(false);
    }
    groups::exists(db, group).await
}

/// What a pool write is about.
#[derive(Debug, Clone, Copy)]
pub enum PoolTarget<'a> {
    /// A new pool under `parent` (None: top level), in `group` (None: the parent's).
    New {
        /// Parent pool.
        parent: Option<i64>,
    },
    /// An existing pool.
    Existing(&'a Pool),
}

/// Why a pool write changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum PoolWriteError {
    /// Another pool under the same parent has the name.
    #[error("name taken under this parent")]
    NameTaken,
    /// The move would put the pool under itself or one of its sub-pools.
    #[error("cycle")]
    Cycle,
    /// A top-level pool needs a group.
    #[error("group required")]
    GroupRequired,
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The constraint that keeps sibling names unique.
const SIBLING_NAME: &str = "pools_sibling_name";

fn name_taken(e: DbError) -> PoolWriteError {
    if e.violates(SIBLING_NAME) {
        PoolWriteError::NameTaken
    } else {
        PoolWriteError::Db(e)
    }
}

/// Writes a pool in one transaction (validated fields already checked for visibility by the
/// caller): a new pool takes its parent's group when none is given; a move is refused when it
/// would create a cycle. Returns the pool id.
pub async fn write(
    db: &Db,
    viewer: &Viewer<'_>,
    target: PoolTarget<'_>,
    w: PoolWrite,
) -> Result<i64, PoolWriteError> {
    let mut tx = db.begin().await?;
    let id = match target {
        PoolTarget::New { .. } => {
            let parent = w.parent.flatten();
            let group = match (w.group, parent) {
                (Some(g), _) => g,
                (None, Some(pid)) => pools::group_of(&mut tx, pid).await?,
                (None, None) => return Err(PoolWriteError::GroupRequired),
            };
            let name = w.name.unwrap_or_default();
            let description = w.description.unwrap_or_default();
            let id = pools::insert(&mut tx, &name, &description, group, parent)
                .await
                .map_err(name_taken)?;
            if w.firmware_baseline.is_some() {
                let only = pools::PoolWrite {
                    firmware_baseline: w.firmware_baseline,
                    ..Default::default()
                };
                pools::update(&mut tx, id, &only).await?;
            }
            id
        }
        PoolTarget::Existing(pool) => {
            if let Some(Some(pid)) = w.parent {
                if pools::creates_cycle(&mut tx, pool.id, pid).await? {
                    return Err(PoolWriteError::Cycle);
                }
            }
            pools::update(&mut tx, pool.id, &w)
                .await
                .map_err(name_taken)?;
            pool.id
        }
    };
    tx.commit().await?;
    tracing::info!(pool_id = id, user = %viewer.username, "pool written");
    Ok(id)
}
