//! `pools`: a tree of resource pools, each owned by a group that controls who sees it.

use super::list::Caller;
use super::{in_list, now, update_columns, DbResult, Exec, Row, Sql, Val};

/// A pool as the API shows it.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Id.
    pub id: i64,
    /// Name (unique among siblings).
    pub name: String,
    /// Description.
    pub description: String,
    /// Owning group.
    pub group: i64,
    /// Parent pool.
    pub parent: Option<i64>,
    /// Direct child pools (id, name).
    pub sub_pools: Vec<(i64, String)>,
    /// Servers directly in this pool.
    pub servers_count: i64,
    /// Switches directly in this pool.
    pub switches_count: i64,
    /// The pool's firmware baseline.
    pub firmware_baseline: Option<i64>,
}

/// Columns selected for [`Pool::from_row`] (table alias `p`).
pub const POOL_COLUMNS: &str =
    "p.id, p.name, p.description, p.group_id, p.parent_id, p.firmware_baseline_id, \
     (SELECT COUNT(*) FROM servers cs WHERE cs.resource_pool_id = p.id) AS servers_count, \
     (SELECT COUNT(*) FROM switches cw WHERE cw.resource_pool_id = p.id) AS switches_count";

impl Pool {
    /// Decodes a row selected with [`POOL_COLUMNS`] (children come from [`attach_sub_pools`]).
    pub fn from_row(r: &Row) -> DbResult<Pool> {
        Ok(Pool {
            id: r.int("id")?,
            name: r.text("name")?,
            description: r.text("description")?,
            group: r.int("group_id")?,
            parent: r.opt_int("parent_id")?,
            sub_pools: Vec::new(),
            servers_count: r.int("servers_count")?,
            switches_count: r.int("switches_count")?,
            firmware_baseline: r.opt_int("firmware_baseline_id")?,
        })
    }
}

/// True when pool `id` exists and is visible to a member of `groups` (None: to a superuser).
pub async fn visible(mut db: impl Exec, groups: Option<&[i64]>, id: i64) -> DbResult<bool> {
    let mut sql = Sql::new("SELECT COUNT(*) FROM pools WHERE pools.id = $1").arg(id);
    if let Some(groups) = groups {
        sql.push(" AND pools.id IN ");
        push_visible_ids(&mut sql, groups);
    }
    Ok(db.fetch_int(&sql).await? > 0)
}

/// The group of pool `id` (inside the writing transaction).
pub async fn group_of(mut tx: impl Exec, id: i64) -> DbResult<i64> {
    tx.fetch_int(&Sql::new("SELECT group_id FROM pools WHERE id = $1").arg(id))
        .await
}

/// Appends ` AND <col> IN (visible pools)` for a member of `groups`; nothing for a superuser
/// (None).
pub fn scope_on(groups: Option<&[i64]>, sql: &mut Sql, col: &str) {
    if let Some(groups) = groups {
        sql.push(&format!(" AND {col} IN "));
        push_visible_ids(sql, groups);
    }
}

/// List scope of pools (alias `p`).
pub fn pool_scope(caller: &Caller<'_>, sql: &mut Sql) {
    scope_on(caller.groups, sql, "p.id");
}

/// List scope of servers: [`server_scope`] for the caller's groups.
pub fn server_list_scope(caller: &Caller<'_>, sql: &mut Sql) {
    server_scope(caller.groups, sql);
}

/// List scope of switches: [`switch_scope`] for the caller's groups.
pub fn switch_list_scope(caller: &Caller<'_>, sql: &mut Sql) {
    switch_scope(caller.groups, sql);
}

/// Which pools a foreign-key filter or field may name (`pools.id`).
pub fn pool_visible(groups: Option<&[i64]>, sql: &mut Sql) {
    scope_on(groups, sql, "pools.id");
}

/// A list scope: appends the condition that limits rows to what `groups` see.
pub type ScopeFn = fn(Option<&[i64]>, &mut Sql);

/// Servers a caller sees: those in a visible pool (alias `s`).
pub fn server_scope(groups: Option<&[i64]>, sql: &mut Sql) {
    scope_on(groups, sql, "s.resource_pool_id");
}

/// Switches a caller sees: those in a visible pool (alias `w`).
pub fn switch_scope(groups: Option<&[i64]>, sql: &mut Sql) {
    scope_on(groups, sql, "w.resource_pool_id");
}

/// Appends `(subquery)` selecting the ids of the pools owned by one of `groups`, and of all
/// their descendants. One recursive CTE, valid on both backends.
pub fn push_visible_ids(sql: &mut Sql, groups: &[i64]) {
    sql.push("(WITH RECURSIVE vis(id) AS (SELECT vp.id FROM pools vp WHERE vp.group_id IN ");
    in_list(sql, groups);
    sql.push(
        " UNION SELECT vc.id FROM pools vc JOIN vis ON vc.parent_id = vis.id) SELECT id FROM vis)",
    );
}

/// Fills `sub_pools` of each pool, in one query.
pub async fn attach_sub_pools(mut db: impl Exec, pools: &mut [Pool]) -> DbResult<()> {
    if pools.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = pools.iter().map(|p| p.id).collect();
    let mut sql = Sql::new("SELECT id, name, parent_id FROM pools WHERE parent_id IN ");
    in_list(&mut sql, &ids);
    sql.push(" ORDER BY id");
    for row in db.fetch_all(&sql).await? {
        let parent = row.int("parent_id")?;
        if let Some(p) = pools.iter_mut().find(|p| p.id == parent) {
            p.sub_pools.push((row.int("id")?, row.text("name")?));
        }
    }
    Ok(())
}

/// One pool with its children, unrestricted (callers apply visibility).
pub async fn get(mut db: impl Exec, id: i64) -> DbResult<Option<Pool>> {
    // One row per child (one with NULLs for a pool without children).
    let sql = Sql::new(format!(
        "SELECT {POOL_COLUMNS}, c.id AS child_id, c.name AS child_name FROM pools p \
         LEFT JOIN pools c ON c.parent_id = p.id WHERE p.id = $1 ORDER BY c.id"
    ))
    .arg(id);
    let rows = db.fetch_all(&sql).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut pool = Pool::from_row(first)?;
    for r in &rows {
        if let Some(child) = r.opt_int("child_id")? {
            pool.sub_pools.push((child, r.text("child_name")?));
        }
    }
    Ok(Some(pool))
}

/// Creates a pool; returns its id.
pub async fn insert(
    mut tx: impl Exec,
    name: &str,
    description: &str,
    group: i64,
    parent: Option<i64>,
) -> DbResult<i64> {
    let t = now();
    tx.fetch_int(
        &Sql::new(
            "INSERT INTO pools (name, description, group_id, parent_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .arg(name)
        .arg(description)
        .arg(group)
        .arg(parent)
        .arg(t)
        .arg(t),
    )
    .await
}

/// The fields of a pool update; None leaves a field as it is.
#[derive(Debug, Default)]
pub struct PoolWrite {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New group.
    pub group: Option<i64>,
    /// New parent (Some(None): top level).
    pub parent: Option<Option<i64>>,
    /// New firmware baseline (Some(None): none).
    pub firmware_baseline: Option<Option<i64>>,
}

/// Changes a pool.
pub async fn update(tx: impl Exec, id: i64, w: &PoolWrite) -> DbResult<()> {
    let cols = [
        ("updated_at", Some(Val::from(now()))),
        ("name", w.name.as_deref().map(Val::from)),
        ("description", w.description.as_deref().map(Val::from)),
        ("group_id", w.group.map(Val::from)),
        ("parent_id", w.parent.map(Val::from)),
        ("firmware_baseline_id", w.firmware_baseline.map(Val::from)),
    ];
    update_columns(tx, "pools", id, cols.into_iter()).await?;
    Ok(())
}

/// True when making `parent` the parent of `pool` would close a cycle (`parent` is `pool` or one
/// of its descendants). Run inside the transaction that moves the pool.
pub async fn creates_cycle(mut tx: impl Exec, pool: i64, parent: i64) -> DbResult<bool> {
    let sql = Sql::new(
        "WITH RECURSIVE anc(id, parent_id) AS (SELECT id, parent_id FROM pools WHERE id = $1 \
         UNION SELECT a.id, a.parent_id FROM pools a JOIN anc ON a.id = anc.parent_id) \
         SELECT COUNT(*) FROM anc WHERE id = $2",
    )
    .arg(parent)
    .arg(pool);
    Ok(tx.fetch_int(&sql).await? > 0)
}

/// Number of direct sub-pools.
pub async fn sub_pool_count(mut tx: impl Exec, id: i64) -> DbResult<i64> {
    tx.fetch_int(&Sql::new("SELECT COUNT(*) FROM pools WHERE parent_id = $1").arg(id))
        .await
}

/// Deletes a pool after unassigning its servers and switches.
pub async fn delete(mut tx: impl Exec, id: i64) -> DbResult<u64> {
    let t = now();
    for table in ["servers", "switches"] {
        tx.execute(
            &Sql::new(format!(
                "UPDATE {table} SET resource_pool_id = NULL, updated_at = $1 WHERE resource_pool_id = $2"
            ))
            .arg(t)
            .arg(id),
        )
        .await?;
    }
    tx.execute(&Sql::new("DELETE FROM pools WHERE id = $1").arg(id))
        .await
}

/// A server as listed inside a pool.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PoolServer {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Power state.
    pub power_state: Option<String>,
    /// BMC URL.
    pub bmc_url: String,
}

/// A switch as listed inside a pool.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PoolSwitch {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Model.
    pub model: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Management address.
    pub management_ip: Option<String>,
}

/// The servers and the switches directly in a pool, each in id order, read in one statement.
pub async fn members_of(
    mut db: impl Exec,
    id: i64,
) -> DbResult<(Vec<PoolServer>, Vec<PoolSwitch>)> {
    let sql = Sql::new(
        "SELECT 0 AS kind, id, name, model, serial_number, manufacturer, power_state, \
         bmc_url AS address FROM servers WHERE resource_pool_id = $1 \
         UNION ALL SELECT 1, id, name, model, NULL, manufacturer, NULL, management_ip \
         FROM switches WHERE resource_pool_id = $1 ORDER BY 1, 2",
    )
    .arg(id);
    let (mut servers, mut switches) = (Vec::new(), Vec::new());
    for r in db.fetch_all(&sql).await? {
        if r.int("kind")? == 0 {
            servers.push(PoolServer {
                id: r.int("id")?,
                name: r.text("name")?,
                model: r.opt_text("model")?,
                serial_number: r.opt_text("serial_number")?,
                manufacturer: r.opt_text("manufacturer")?,
                power_state: r.opt_text("power_state")?,
                bmc_url: r.text("address")?,
            });
        } else {
            switches.push(PoolSwitch {
                id: r.int("id")?,
                name: r.text("name")?,
                model: r.text("model")?,
                manufacturer: r.text("manufacturer")?,
                management_ip: r.opt_text("address")?,
            });
        }
    }
    Ok((servers, switches))
}

/// A member (server or switch) named in an assignment, with the pool holding it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Node id (servers only).
    pub node: Option<i64>,
    /// Current pool.
    pub pool: Option<i64>,
    /// Current pool's name.
    pub pool_name: Option<String>,
}

/// Rows of `table` (`servers` or `switches`) whose id is in `ids` (or, with `by_node`, whose
/// node id is), with their current pool. With `groups` (a non-superuser's groups), only the rows
/// the server or switch list shows them ([`server_scope`] / [`switch_scope`]).
pub async fn members(
    mut tx: impl Exec,
    table: &str,
    ids: &[i64],
    by_node: bool,
    groups: Option<&[i64]>,
) -> DbResult<Vec<Member>> {
    let (m, scope): (&str, ScopeFn) = if table == "servers" {
        ("s", server_scope)
    } else {
        ("w", switch_scope)
    };
    let node_col = if by_node {
        format!("{m}.node_id")
    } else {
        "NULL".into()
    };
    let mut sql = Sql::new(format!(
        "SELECT {m}.id, {m}.name, {node_col} AS node_id, {m}.resource_pool_id, mp.name AS pool_name \
         FROM {table} {m} LEFT JOIN pools mp ON mp.id = {m}.resource_pool_id WHERE ({m}.id IN "
    ));
    in_list(&mut sql, ids);
    if by_node {
        sql.push(&format!(" OR {m}.node_id IN "));
        in_list(&mut sql, ids);
    }
    sql.push(")");
    scope(groups, &mut sql);
    sql.push(&format!(" ORDER BY {m}.id"));
    tx.fetch_all(&sql)
        .await?
        .iter()
        .map(|r| {
            Ok(Member {
                id: r.int("id")?,
                name: r.text("name")?,
                node: r.opt_int("node_id")?,
                pool: r.opt_int("resource_pool_id")?,
                pool_name: r.opt_text("pool_name")?,
            })
        })
        .collect()
}

/// Puts members of `table` into `pool`, only those unassigned or already there; returns how
/// many rows matched (fewer than `ids.len()` means a concurrent assignment won).
pub async fn assign(mut tx: impl Exec, table: &str, ids: &[i64], pool: i64) -> DbResult<u64> {
    let mut sql = Sql::new(format!(
        "UPDATE {table} SET resource_pool_id = $1, updated_at = $2 \
         WHERE (resource_pool_id IS NULL OR resource_pool_id = $3) AND id IN "
    ))
    .arg(pool)
    .arg(now())
    .arg(pool);
    in_list(&mut sql, ids);
    tx.execute(&sql).await
}
