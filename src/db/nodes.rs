//! `nodes`: one row per BMC endpoint (address, port) that discovery found.
//!
//! Status rules live in the SQL here so that every writer follows them: a rescan never
//! downgrades `registered`, an endpoint that stops answering becomes `unreachable` and returns
//! to its previous status when seen again, and a node being registered is left alone.

use chrono::{DateTime, Utc};

use super::{in_list, now, Db, DbResult, Exec, NodeStatus, Row, Sql};

/// Node statuses.
pub const STATUSES: &[&str] = NodeStatus::NAMES;

/// A node as the API shows it, plus what registration needs.
#[derive(Debug, Clone)]
pub struct Node {
    /// Id.
    pub id: i64,
    /// Redfish service root base (`https://10.0.0.5:443`).
    pub url: String,
    /// BMC address.
    pub ip_address: String,
    /// BMC port.
    pub port: i64,
    /// Vendor from the service root.
    pub vendor: Option<String>,
    /// Product from the service root.
    pub product: Option<String>,
    /// Service root UUID.
    pub uuid: Option<String>,
    /// Redfish version.
    pub redfish_version: Option<String>,
    /// SHA-256 (hex) of the certificate seen at discovery; credentials go only to it.
    pub cert_sha256: Option<String>,
    /// Status.
    pub status: NodeStatus,
    /// The scan range that found it.
    pub scan_range: Option<i64>,
    /// The profile it was registered with.
    pub auth_profile: Option<i64>,
    /// The credential that the BMC accepted.
    pub credential: Option<i64>,
    /// The server registration created.
    pub server: Option<i64>,
    /// Last failure.
    pub last_error: Option<String>,
    /// Last time a scan saw it.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// First seen.
    pub created_at: DateTime<Utc>,
}

/// Columns selected for [`Node::from_row`].
pub const NODE_COLUMNS: &str = "n.id, n.url, n.ip_address, n.port, n.vendor, n.product, n.uuid, n.redfish_version, \
     n.cert_sha256, n.status, n.scan_range_id, n.auth_profile_id, n.credential_id, n.server_id, n.last_error, \
     n.last_seen_at, n.created_at";

impl Node {
    /// Decodes a row selected with [`NODE_COLUMNS`].
    pub fn from_row(r: &Row) -> DbResult<Node> {
        Ok(Node {
            id: r.int("id")?,
            url: r.text("url")?,
            ip_address: r.text("ip_address")?,
            port: r.int("port")?,
            vendor: r.opt_text("vendor")?,
            product: r.opt_text("product")?,
            uuid: r.opt_text("uuid")?,
            redfish_version: r.opt_text("redfish_version")?,
            cert_sha256: r.opt_text("cert_sha256")?,
            status: NodeStatus::from_row(r, "status")?,
            scan_range: r.opt_int("scan_range_id")?,
            auth_profile: r.opt_int("auth_profile_id")?,
            credential: r.opt_int("credential_id")?,
            server: r.opt_int("server_id")?,
            last_error: r.opt_text("last_error")?,
            last_seen_at: r.opt_time("last_seen_at")?,
            created_at: r.time("created_at")?,
        })
    }
}

/// What a probe learnt about a Redfish endpoint.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// `scheme://ip:port`.
    pub url: String,
    /// Address.
    pub ip_address: String,
    /// Port.
    pub port: u16,
    /// Vendor.
    pub vendor: Option<String>,
    /// Product.
    pub product: Option<String>,
    /// Service root UUID.
    pub uuid: Option<String>,
    /// Redfish version.
    pub redfish_version: Option<String>,
    /// Certificate fingerprint (None over plain HTTP).
    pub cert_sha256: Option<String>,
}

/// One node.
pub async fn get(mut db: impl Exec, id: i64) -> DbResult<Option<Node>> {
    let sql = Sql::new(format!(
        "SELECT {NODE_COLUMNS} FROM nodes n WHERE n.id = $1"
    ))
    .arg(id);
    db.fetch_optional(&sql)
        .await?
        .as_ref()
        .map(Node::from_row)
        .transpose()
}

/// Records a Redfish endpoint seen by a scan of `scan_range` (insert or update by endpoint).
///
/// A known node keeps `registered`/`registering`; `unreachable` and `error` return to the
/// status it had before. The pinned certificate of a registered node is not replaced by
/// whatever answers now: a changed certificate must show up as a mismatch, not be trusted.
pub async fn upsert_seen(mut db: impl Exec, scan_range: i64, s: &Seen) -> DbResult<()> {
    let t = now();
    db.execute(
        &Sql::new(
            "INSERT INTO nodes (url, ip_address, port, vendor, product, uuid, redfish_version, cert_sha256, status, \
                                scan_range_id, last_seen_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'discovered', $9, $10, $10, $10) \
             ON CONFLICT (ip_address, port) DO UPDATE SET \
               url = excluded.url, vendor = excluded.vendor, product = excluded.product, uuid = excluded.uuid, \
               redfish_version = excluded.redfish_version, scan_range_id = excluded.scan_range_id, \
               last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at, \
               cert_sha256 = CASE WHEN nodes.server_id IS NOT NULL AND nodes.cert_sha256 IS NOT NULL \
                                  THEN nodes.cert_sha256 ELSE excluded.cert_sha256 END, \
               status = CASE WHEN nodes.status IN ('unreachable', 'error') \
                             THEN COALESCE(nodes.previous_status, 'discovered') ELSE nodes.status END, \
               previous_status = CASE WHEN nodes.status IN ('unreachable', 'error') THEN NULL \
                                      ELSE nodes.previous_status END, \
               last_error = CASE WHEN nodes.status IN ('unreachable', 'error') THEN NULL ELSE nodes.last_error END",
        )
        .arg(&s.url)
        .arg(&s.ip_address)
        .arg(s.port)
        .arg(s.vendor.clone())
        .arg(s.product.clone())
        .arg(s.uuid.clone())
        .arg(s.redfish_version.clone())
        .arg(s.cert_sha256.clone())
        .arg(scan_range)
        .arg(t),
    )
    .await?;
    Ok(())
}

/// Records an endpoint whose TLS the client refuses: a new node in `error`, a known one gets
/// `last_error` (and `error` unless it is registered or being registered).
pub async fn upsert_tls_error(
    mut db: impl Exec,
    scan_range: i64,
    url: &str,
    ip: &str,
    port: u16,
    error: &str,
) -> DbResult<()> {
    let t = now();
    db.execute(
        &Sql::new(
            "INSERT INTO nodes (url, ip_address, port, status, scan_range_id, last_error, last_seen_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 'error', $4, $5, $6, $6, $6) \
             ON CONFLICT (ip_address, port) DO UPDATE SET \
               scan_range_id = excluded.scan_range_id, last_error = excluded.last_error, \
               last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at, \
               previous_status = CASE WHEN nodes.status IN ('registered', 'registering', 'error') THEN nodes.previous_status \
                                      WHEN nodes.status = 'unreachable' THEN nodes.previous_status \
                                      ELSE nodes.status END, \
               status = CASE WHEN nodes.status IN ('registered', 'registering') THEN nodes.status ELSE 'error' END",
        )
        .arg(url)
        .arg(ip)
        .arg(port)
        .arg(scan_range)
        .arg(error)
        .arg(t),
    )
    .await?;
    Ok(())
}

/// Endpoints (id, ip, port) of the nodes a range found before.
pub async fn endpoints_of_range(
    mut db: impl Exec,
    scan_range: i64,
) -> DbResult<Vec<(i64, String, i64)>> {
    db.fetch_all(
        &Sql::new("SELECT id, ip_address, port FROM nodes WHERE scan_range_id = $1")
            .arg(scan_range),
    )
    .await?
    .iter()
    .map(|r| Ok((r.int("id")?, r.text("ip_address")?, r.int("port")?)))
    .collect()
}

/// Marks a node that stopped answering `unreachable`, remembering its status.
pub async fn mark_unreachable(mut tx: impl Exec, ids: &[i64]) -> DbResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new(
        "UPDATE nodes SET previous_status = CASE WHEN status = 'error' THEN previous_status ELSE status END, \
         status = 'unreachable', updated_at = $1 WHERE status NOT IN ('unreachable', 'registering') \
         AND id IN ",
    )
    .arg(now());
    in_list(&mut sql, ids);
    tx.execute(&sql).await?;
    Ok(())
}

/// Outcome of [`begin_registration`].
#[derive(Debug)]
pub enum Begin {
    /// The node is now `registering`.
    Started(Box<Node>),
    /// Another registration runs.
    Busy,
    /// No such node.
    Missing,
}

/// Moves a node to `registering` until `deadline`, unless another registration holds it.
pub async fn begin_registration(db: &Db, id: i64, deadline: DateTime<Utc>) -> DbResult<Begin> {
    let t = now();
    let mut tx = db.begin().await?;
    let n = tx
        .execute(
            &Sql::new(
                "UPDATE nodes SET previous_status = CASE WHEN status = 'registering' THEN previous_status ELSE status END, \
                 status = 'registering', registering_until = $1, updated_at = $2 \
                 WHERE id = $3 AND (status <> 'registering' OR registering_until IS NULL OR registering_until < $2)",
            )
            .arg(deadline)
            .arg(t)
            .arg(id),
        )
        .await?;
    let row = tx
        .fetch_optional(
            &Sql::new(format!(
                "SELECT {NODE_COLUMNS} FROM nodes n WHERE n.id = $1"
            ))
            .arg(id),
        )
        .await?;
    tx.commit().await?;
    Ok(match (n, row) {
        (_, None) => Begin::Missing,
        (0, Some(_)) => Begin::Busy,
        (_, Some(r)) => Begin::Started(Box::new(Node::from_row(&r)?)),
    })
}

/// A failed registration: the node gets its previous status back and `last_error`.
pub async fn fail_registration(mut db: impl Exec, id: i64, error: &str) -> DbResult<()> {
    db.execute(
        &Sql::new(
            "UPDATE nodes SET status = COALESCE(previous_status, 'discovered'), previous_status = NULL, \
             registering_until = NULL, last_error = $1, updated_at = $2 WHERE id = $3 AND status = 'registering'",
        )
        .arg(error)
        .arg(now())
        .arg(id),
    )
    .await?;
    Ok(())
}

/// A successful registration, inside the transaction that wrote the inventory.
pub async fn complete_registration(
    mut tx: impl Exec,
    id: i64,
    server: Option<i64>,
    auth_profile: i64,
    credential: i64,
) -> DbResult<()> {
    tx.execute(
        &Sql::new(
            "UPDATE nodes SET status = 'registered', previous_status = NULL, registering_until = NULL, last_error = NULL, \
             server_id = $1, auth_profile_id = $2, credential_id = $3, updated_at = $4 WHERE id = $5",
        )
        .arg(server)
        .arg(auth_profile)
        .arg(credential)
        .arg(now())
        .arg(id),
    )
    .await?;
    Ok(())
}

/// Deletes a node that has no server and is not being registered, in one guarded statement
/// (no window between a check and the delete); false when nothing was deleted.
pub async fn delete_unused(mut db: impl Exec, id: i64) -> DbResult<bool> {
    let n = db
        .execute(
            &Sql::new("DELETE FROM nodes WHERE id = $1 AND server_id IS NULL AND status <> $2")
                .arg(id)
                .arg(NodeStatus::Registering),
        )
        .await?;
    Ok(n == 1)
}

/// Nodes of `scan_range` that onboarding should register with `profile` at credentials
/// `version`: found by the range, not registered (nor being registered, nor failing TLS), not
/// among `skip`, and not yet tried with that profile and version. In id order.
pub async fn onboarding_candidates(
    mut db: impl Exec,
    scan_range: i64,
    profile: i64,
    version: i64,
    skip: &[i64],
) -> DbResult<Vec<i64>> {
    let mut sql = Sql::new(
        "SELECT id FROM nodes WHERE scan_range_id = $1 AND status = 'discovered' AND server_id IS NULL \
         AND NOT (onboard_profile_id IS NOT NULL AND onboard_profile_id = $2 \
                  AND onboard_credentials_version IS NOT NULL AND onboard_credentials_version = $3)",
    )
    .arg(scan_range)
    .arg(profile)
    .arg(version);
    if !skip.is_empty() {
        sql.push(" AND id NOT IN ");
        in_list(&mut sql, skip);
    }
    sql.push(" ORDER BY id");
    db.fetch_all(&sql)
        .await?
        .iter()
        .map(|r| r.int("id"))
        .collect()
}

/// Records that onboarding tries node `id` with `profile` at credentials `version`, before
/// the attempt (so a crash mid-attempt does not repeat it against a BMC that may lock out);
/// false when the node was tried with them already or is no longer a candidate.
pub async fn claim_for_onboarding(
    mut db: impl Exec,
    id: i64,
    profile: i64,
    version: i64,
) -> DbResult<bool> {
    let n = db
        .execute(
            &Sql::new(
                "UPDATE nodes SET onboard_profile_id = $1, onboard_credentials_version = $2 \
                 WHERE id = $3 AND status = 'discovered' AND server_id IS NULL \
                 AND NOT (onboard_profile_id IS NOT NULL AND onboard_profile_id = $1 \
                          AND onboard_credentials_version IS NOT NULL AND onboard_credentials_version = $2)",
            )
            .arg(profile)
            .arg(version)
            .arg(id),
        )
        .await?;
    Ok(n == 1)
}

/// Sets a node's `last_error` (a note after a registration, e.g. why its server stayed out of
/// a pool).
pub async fn set_last_error(mut db: impl Exec, id: i64, error: &str) -> DbResult<()> {
    db.execute(
        &Sql::new("UPDATE nodes SET last_error = $1, updated_at = $2 WHERE id = $3")
            .arg(error)
            .arg(now())
            .arg(id),
    )
    .await?;
    Ok(())
}

/// The servers registration created from node `id` (one per ComputerSystem), in id order.
pub async fn servers_of(mut db: impl Exec, id: i64) -> DbResult<Vec<i64>> {
    db.fetch_all(&Sql::new("SELECT id FROM servers WHERE node_id = $1 ORDER BY id").arg(id))
        .await?
        .iter()
        .map(|r| r.int("id"))
        .collect()
}

/// Ends registrations whose deadline passed without an end (the process running them died):
/// the node gets its previous status back, as after a failed registration. Returns how many.
pub async fn expire_registrations(mut db: impl Exec) -> DbResult<u64> {
    let t = now();
    db.execute(
        &Sql::new(
            "UPDATE nodes SET status = COALESCE(previous_status, 'discovered'), previous_status = NULL, \
             registering_until = NULL, last_error = $1, updated_at = $2 \
             WHERE status = 'registering' AND registering_until IS NOT NULL AND registering_until < $2",
        )
        .arg("registration interrupted: the server process stopped before it ended")
        .arg(t),
    )
    .await
}
