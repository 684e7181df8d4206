//! `firmware_baselines` and `firmware_baseline_binaries`: named sets of firmware packages, and
//! the compliance of servers with one, computed from the stored firmware inventory.
//!
//! A baseline keeps its binaries twice: as a JSON array in its row (the order, read by lists
//! without a join) and as rows of `firmware_baseline_binaries` (foreign keys guard them, and
//! "which baseline uses this binary" is an index lookup). Both are written in one transaction.

use super::catalogue::FirmwareBinary;
use super::{in_list, now, DbResult, Exec, Row, Sql, Tx, Val};

/// The unique constraint on the baseline name (Postgres name, SQLite column).
pub const NAME_CONSTRAINTS: [&str; 2] = ["firmware_baselines_name_key", "firmware_baselines.name"];

/// `FROM` of the baseline list (alias `b`).
pub const BASELINE_FROM: &str = "firmware_baselines b";
/// Columns of the baseline list.
pub const BASELINE_COLUMNS: &str =
    "b.id, b.name, b.description, b.firmware_binaries, b.created_by, b.created_at, b.updated_at";

/// A baseline row.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Firmware ids, in the baseline's order.
    pub firmware_binaries: Vec<i64>,
    /// Creator's user id.
    pub created_by: Option<i64>,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Baseline {
    /// Decodes a row selected with [`BASELINE_COLUMNS`].
    pub fn from_row(r: &Row) -> DbResult<Baseline> {
        Ok(Baseline {
            id: r.int("id")?,
            name: r.text("name")?,
            description: r.text("description")?,
            firmware_binaries: serde_json::from_str(&r.text("firmware_binaries")?)
                .unwrap_or_default(),
            created_by: r.opt_int("created_by")?,
            created_at: r.time("created_at")?,
            updated_at: r.time("updated_at")?,
        })
    }
}

/// One baseline.
pub async fn get(mut ex: impl Exec, id: i64) -> DbResult<Option<Baseline>> {
    let sql = Sql::new(format!(
        "SELECT {BASELINE_COLUMNS} FROM {BASELINE_FROM} WHERE b.id = $1"
    ))
    .arg(id);
    ex.fetch_optional(&sql)
        .await?
        .as_ref()
        .map(Baseline::from_row)
        .transpose()
}

/// Creates a baseline; returns its id.
pub async fn insert(
    tx: &mut Tx,
    name: &str,
    description: &str,
    binaries: &[i64],
    created_by: i64,
) -> DbResult<i64> {
    let at = now();
    let sql = Sql::new(
        "INSERT INTO firmware_baselines (name, description, firmware_binaries, created_by, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .arg(name.to_string())
    .arg(description.to_string())
    .arg(serde_json::json!(binaries).to_string())
    .arg(created_by)
    .arg(at)
    .arg(at);
    let id = tx.fetch_int(&sql).await?;
    write_binaries(tx, id, binaries).await?;
    Ok(id)
}

/// Changes the given fields (None: keep).
pub async fn update(
    tx: &mut Tx,
    id: i64,
    name: Option<&str>,
    description: Option<&str>,
    binaries: Option<&[i64]>,
) -> DbResult<()> {
    let mut cols: Vec<(&str, Option<Val>)> = vec![
        ("name", name.map(|n| Val::Text(n.to_string()))),
        ("description", description.map(|d| Val::Text(d.to_string()))),
        (
            "firmware_binaries",
            binaries.map(|b| Val::Text(serde_json::json!(b).to_string())),
        ),
    ];
    cols.push(("updated_at", Some(Val::from(now()))));
    super::update_columns(&mut *tx, "firmware_baselines", id, cols.into_iter()).await?;
    if let Some(b) = binaries {
        tx.execute(
            &Sql::new("DELETE FROM firmware_baseline_binaries WHERE baseline_id = $1").arg(id),
        )
        .await?;
        write_binaries(tx, id, b).await?;
    }
    Ok(())
}

async fn write_binaries(tx: &mut Tx, id: i64, binaries: &[i64]) -> DbResult<()> {
    let mut seen = Vec::new();
    let rows: Vec<Vec<Val>> = binaries
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            let new = !seen.contains(*f);
            seen.push(**f);
            new
        })
        .map(|(pos, f)| vec![Val::from(id), Val::from(*f), Val::from(pos as i64)])
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    super::insert_rows(
        tx,
        "firmware_baseline_binaries",
        &["baseline_id", "firmware_id", "position"],
        rows,
    )
    .await
}

/// Deletes a baseline (its binary rows go with it).
pub async fn delete(tx: &mut Tx, id: i64) -> DbResult<u64> {
    tx.execute(&Sql::new("DELETE FROM firmware_baselines WHERE id = $1").arg(id))
        .await
}

/// The first baseline (id, name) that uses firmware `firmware`.
pub async fn first_using(mut ex: impl Exec, firmware: i64) -> DbResult<Option<(i64, String)>> {
    let sql = Sql::new(
        "SELECT b.id, b.name FROM firmware_baselines b JOIN firmware_baseline_binaries bb \
         ON bb.baseline_id = b.id WHERE bb.firmware_id = $1 ORDER BY b.id LIMIT 1",
    )
    .arg(firmware);
    match ex.fetch_optional(&sql).await? {
        Some(r) => Ok(Some((r.int("id")?, r.text("name")?))),
        None => Ok(None),
    }
}

/// Which servers a compliance report covers.
#[derive(Debug, Clone, Copy)]
pub enum ServerSet {
    /// One server.
    Server(i64),
    /// The servers of a pool and of all its sub-pools.
    PoolTree(i64),
    /// Every server (within the caller's scope).
    All,
}

/// The state of one component of a server against a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentStatus {
    /// The binary does not apply to the server.
    NotApplicable,
    /// The installed version is the binary's.
    Compliant,
    /// Another version is installed.
    NonCompliant,
    /// The server has no firmware entry of the binary's type.
    Missing,
}

impl ComponentStatus {
    fn from_code(code: &str) -> ComponentStatus {
        match code {
            "c" => ComponentStatus::Compliant,
            "x" => ComponentStatus::NonCompliant,
            "m" => ComponentStatus::Missing,
            _ => ComponentStatus::NotApplicable,
        }
    }
}

/// One server's row of a compliance report: its components in the baseline's order.
#[derive(Debug, Clone)]
pub struct ServerCompliance {
    /// Server id.
    pub server: i64,
    /// Server name.
    pub name: String,
    /// Per binary of the baseline (same order): its status and the installed version.
    pub components: Vec<(ComponentStatus, Option<String>)>,
}

/// `pattern` with LIKE's wildcards and the escape character taken literally.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Appends the SQL condition "binary `b` applies to server `s`": its manufacturer is empty or
/// equals the server's, or is the server's first word(s) up to a space or comma
/// (case-insensitively), and its models list is empty or holds the server's model
/// (case-insensitively, exact).
pub fn push_applies(sql: &mut Sql, b: &FirmwareBinary) {
    sql.push("(1 = 1");
    let m = b.manufacturer.trim().to_lowercase();
    if !m.is_empty() {
        sql.push(" AND (lower(s.manufacturer) = ");
        sql.bind(m.clone());
        sql.push(" OR lower(s.manufacturer) LIKE ");
        sql.bind(format!("{} %", like_literal(&m)));
        sql.push(" ESCAPE '\\' OR lower(s.manufacturer) LIKE ");
        sql.bind(format!("{},%", like_literal(&m)));
        sql.push(" ESCAPE '\\')");
    }
    let models: Vec<String> = b
        .models
        .iter()
        .map(|m| m.trim().to_lowercase())
        .filter(|m| !m.is_empty())
        .collect();
    if !models.is_empty() {
        sql.push(" AND lower(s.model) IN (");
        for (i, model) in models.into_iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(model);
        }
        sql.push(")");
    }
    sql.push(")");
}

/// Compliance of the servers in `set` (visible to a member of `groups`; None: everything)
/// with `binaries`, in one statement over the stored inventory, ordered by server id.
///
/// Set-based, so a fleet of thousands costs one pass over its firmware inventory per
/// firmware type: each type's entries are grouped by server once (the lowest version, and
/// whether each binary's version is among them), joined to the servers, and each binary's
/// status is decided by its applicability rule ([`push_applies`]) and that row.
pub async fn compliance(
    mut ex: impl Exec,
    binaries: &[FirmwareBinary],
    set: ServerSet,
    groups: Option<&[i64]>,
) -> DbResult<Vec<ServerCompliance>> {
    let mut types: Vec<&str> = Vec::new();
    for b in binaries {
        if !types.contains(&b.firmware_type.as_str()) {
            types.push(&b.firmware_type);
        }
    }
    let type_of = |b: &FirmwareBinary| {
        types
            .iter()
            .position(|t| *t == b.firmware_type)
            .unwrap_or_default()
    };
    let mut sql = Sql::new("SELECT s.id, s.name");
    for (i, b) in binaries.iter().enumerate() {
        let j = type_of(b);
        // Status code: n(ot applicable), c(ompliant), x (non-compliant), m(issing).
        sql.push(" , CASE WHEN ");
        push_applies(&mut sql, b);
        sql.push(&format!(
            " THEN (CASE WHEN t{j}.h{i} = 1 THEN 'c' WHEN t{j}.server_id IS NOT NULL THEN 'x' \
             ELSE 'm' END) ELSE 'n' END AS st{i}, CASE WHEN t{j}.h{i} = 1 THEN "
        ));
        sql.bind(b.version.clone());
        sql.push(&format!(" ELSE t{j}.v END AS iv{i}"));
    }
    sql.push(" FROM servers s");
    for (j, t) in types.iter().enumerate() {
        sql.push(" LEFT JOIN (SELECT f.server_id, MIN(f.version) AS v");
        for (i, b) in binaries.iter().enumerate() {
            if type_of(b) == j {
                sql.push(" , MAX(CASE WHEN f.version = ");
                sql.bind(b.version.clone());
                sql.push(&format!(" THEN 1 ELSE 0 END) AS h{i}"));
            }
        }
        sql.push(" FROM server_firmwares f WHERE f.firmware_type = ");
        sql.bind(t.to_string());
        sql.push(&format!(
            " GROUP BY f.server_id) t{j} ON t{j}.server_id = s.id"
        ));
    }
    sql.push(" WHERE 1 = 1");
    match set {
        ServerSet::Server(id) => {
            sql.push(" AND s.id = ");
            sql.bind(id);
        }
        ServerSet::PoolTree(pool) => {
            sql.push(
                " AND s.resource_pool_id IN (WITH RECURSIVE tree(id) AS (SELECT tp.id FROM pools tp \
                 WHERE tp.id = ",
            );
            sql.bind(pool);
            sql.push(
                " UNION SELECT tc.id FROM pools tc JOIN tree ON tc.parent_id = tree.id) \
                 SELECT id FROM tree)",
            );
        }
        ServerSet::All => {}
    }
    super::pools::server_scope(groups, &mut sql);
    sql.push(" ORDER BY s.id");
    let rows = ex.fetch_all(&sql).await?;
    rows.iter()
        .map(|r| {
            let mut components = Vec::with_capacity(binaries.len());
            for i in 0..binaries.len() {
                let st = r.text(&format!("st{i}"))?;
                let iv = r.opt_text(&format!("iv{i}"))?;
                components.push((ComponentStatus::from_code(&st), iv));
            }
            Ok(ServerCompliance {
                server: r.int("id")?,
                name: r.text("name")?,
                components,
            })
        })
        .collect()
}

/// Ids among `ids` that are firmware packages.
pub async fn existing_firmware(mut ex: impl Exec, ids: &[i64]) -> DbResult<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new("SELECT id FROM firmware_images WHERE id IN ");
    in_list(&mut sql, ids);
    ex.fetch_all(&sql)
        .await?
        .iter()
        .map(|r| r.int("id"))
        .collect()
}

/// True when server `id` exists and is visible to a member of `groups` (None: a superuser).
pub async fn server_visible(mut ex: impl Exec, groups: Option<&[i64]>, id: i64) -> DbResult<bool> {
    let mut sql = Sql::new("SELECT COUNT(*) FROM servers s WHERE s.id = $1").arg(id);
    super::pools::server_scope(groups, &mut sql);
    Ok(ex.fetch_int(&sql).await? > 0)
}
