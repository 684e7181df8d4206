//! The storage side of lifecycle jobs: the busy rule (`server_busy`: one active lifecycle job
//! per server, claimed in the transaction that queues the job and released in the one that ends
//! it), the servers of a pool, `power_state` writes, the servers the power poll reads and the
//! rounds of periodic work shared by replicas (`periodic_rounds`).

use chrono::{DateTime, Utc};

use super::{in_list, now, DbResult, Exec, Sql};

/// A server that another lifecycle job holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyServer {
    /// The server.
    pub server: i64,
    /// The job that holds it.
    pub job: i64,
    /// That job's kind.
    pub kind: String,
}

/// Marks the servers `ids` (distinct) busy with `job` inside the queueing transaction. None
/// when every one was free; otherwise the first of `ids` (in their order) that another job
/// holds, and the caller must roll back. Race-free: the primary key of `server_busy` decides,
/// and `ON CONFLICT DO NOTHING` waits for a concurrent claim of the same server to commit or
/// roll back (PostgreSQL) or runs after it (SQLite's single writer).
pub async fn claim_servers(
    mut tx: impl Exec,
    job: i64,
    kind: &str,
    ids: &[i64],
) -> DbResult<Option<BusyServer>> {
    let mut inserted = 0u64;
    for chunk in ids.chunks(250) {
        let mut sql = Sql::new("INSERT INTO server_busy (server_id, job_id, kind) VALUES ");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(");
            sql.bind(*id);
            sql.push(", ");
            sql.bind(job);
            sql.push(", ");
            sql.bind(kind);
            sql.push(")");
        }
        sql.push(" ON CONFLICT (server_id) DO NOTHING");
        inserted += tx.execute(&sql).await?;
    }
    if inserted as usize == ids.len() {
        return Ok(None);
    }
    let mut sql = Sql::new(
        "SELECT server_id, job_id, kind FROM server_busy WHERE job_id <> $1 AND server_id IN ",
    )
    .arg(job);
    in_list(&mut sql, ids);
    let held: Vec<BusyServer> = tx
        .fetch_all(&sql)
        .await?
        .iter()
        .map(|r| {
            Ok(BusyServer {
                server: r.int("server_id")?,
                job: r.int("job_id")?,
                kind: r.text("kind")?,
            })
        })
        .collect::<DbResult<_>>()?;
    Ok(ids
        .iter()
        .find_map(|id| held.iter().find(|b| b.server == *id).cloned())
        .or_else(|| held.into_iter().next()))
}

/// Frees the servers a job held (called by every transaction that ends a job).
pub async fn release_servers(mut tx: impl Exec, job: i64) -> DbResult<u64> {
    tx.execute(&Sql::new("DELETE FROM server_busy WHERE job_id = $1").arg(job))
        .await
}

/// The job holding each of `ids` that is busy (for reads; the claim is what decides).
pub async fn busy_of(mut e: impl Exec, ids: &[i64]) -> DbResult<Vec<BusyServer>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new("SELECT server_id, job_id, kind FROM server_busy WHERE server_id IN ");
    in_list(&mut sql, ids);
    sql.push(" ORDER BY server_id");
    e.fetch_all(&sql)
        .await?
        .iter()
        .map(|r| {
            Ok(BusyServer {
                server: r.int("server_id")?,
                job: r.int("job_id")?,
                kind: r.text("kind")?,
            })
        })
        .collect()
}

/// The servers of pool `pool`, with `sub_pools` those of its descendants too, by id.
pub async fn pool_server_ids(mut e: impl Exec, pool: i64, sub_pools: bool) -> DbResult<Vec<i64>> {
    let sql = if sub_pools {
        Sql::new(
            "WITH RECURSIVE sub(id) AS (SELECT sp.id FROM pools sp WHERE sp.id = $1 \
             UNION SELECT sc.id FROM pools sc JOIN sub ON sc.parent_id = sub.id) \
             SELECT s.id FROM servers s WHERE s.resource_pool_id IN (SELECT id FROM sub) ORDER BY s.id",
        )
        .arg(pool)
    } else {
        Sql::new("SELECT s.id FROM servers s WHERE s.resource_pool_id = $1 ORDER BY s.id").arg(pool)
    };
    e.fetch_all(&sql)
        .await?
        .iter()
        .map(|r| r.int("id"))
        .collect()
}

/// Records a server's Redfish `PowerState` as last read.
pub async fn set_power_state(mut db: impl Exec, server: i64, state: &str) -> DbResult<()> {
    db.execute(
        &Sql::new("UPDATE servers SET power_state = $1 WHERE id = $2")
            .arg(state)
            .arg(server),
    )
    .await?;
    Ok(())
}

/// A server the power poll reads: its id, node and what identifies its ComputerSystem.
#[derive(Debug, Clone)]
pub struct PolledServer {
    /// Server id.
    pub id: i64,
    /// Its node (the BMC).
    pub node: i64,
    /// ComputerSystem UUID.
    pub uuid: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
}

/// Every server whose node is registered, ordered by node (one BMC's servers together).
pub async fn polled_servers(mut db: impl Exec) -> DbResult<Vec<PolledServer>> {
    db.fetch_all(&Sql::new(
        "SELECT s.id, s.node_id, s.uuid, s.serial_number FROM servers s \
         JOIN nodes n ON n.id = s.node_id WHERE n.status = 'registered' ORDER BY s.node_id, s.id",
    ))
    .await?
    .iter()
    .map(|r| {
        Ok(PolledServer {
            id: r.int("id")?,
            node: r.int("node_id")?,
            uuid: r.opt_text("uuid")?,
            serial_number: r.opt_text("serial_number")?,
        })
    })
    .collect()
}

/// Takes the round of periodic work `name` that is due (its `due_at` has passed) for `owner`,
/// moving `due_at` to `next`. False when the round is not due or another process took it.
pub async fn claim_round(
    mut db: impl Exec,
    name: &str,
    owner: &str,
    next: DateTime<Utc>,
) -> DbResult<bool> {
    let n = db
        .execute(
            &Sql::new(
                "UPDATE periodic_rounds SET owner = $1, due_at = $2 WHERE name = $3 AND due_at <= $4",
            )
            .arg(owner)
            .arg(next)
            .arg(name)
            .arg(now()),
        )
        .await?;
    Ok(n == 1)
}
