//! `switches`: network switches, assignable to pools like servers.

use chrono::{DateTime, Utc};

use super::{now, DbResult, Exec, Row, Sql, Val};

/// A switch row.
#[derive(Debug, Clone)]
pub struct Switch {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Model.
    pub model: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Serial number.
    pub serial_number: String,
    /// Management address.
    pub management_ip: Option<String>,
    /// Pool id.
    pub resource_pool: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The `FROM` clause matching [`SWITCH_COLUMNS`].
pub const SWITCH_FROM: &str = "switches w LEFT JOIN pools rp ON rp.id = w.resource_pool_id";

/// Columns selected for [`Switch::from_row`].
pub const SWITCH_COLUMNS: &str = "w.id, w.name, w.model, w.manufacturer, w.serial_number, \
     w.management_ip, w.resource_pool_id, w.created_at, w.updated_at";

impl Switch {
    /// Decodes a row selected with [`SWITCH_COLUMNS`].
    pub fn from_row(r: &Row) -> DbResult<Switch> {
        Ok(Switch {
            id: r.int("id")?,
            name: r.text("name")?,
            model: r.text("model")?,
            manufacturer: r.text("manufacturer")?,
            serial_number: r.text("serial_number")?,
            management_ip: r.opt_text("management_ip")?,
            resource_pool: r.opt_int("resource_pool_id")?,
            created_at: r.time("created_at")?,
            updated_at: r.time("updated_at")?,
        })
    }
}

/// One switch, unrestricted (callers apply visibility).
pub async fn get(mut db: impl Exec, id: i64) -> DbResult<Option<Switch>> {
    let sql = Sql::new(format!(
        "SELECT {SWITCH_COLUMNS} FROM {SWITCH_FROM} WHERE w.id = $1"
    ))
    .arg(id);
    db.fetch_optional(&sql)
        .await?
        .as_ref()
        .map(Switch::from_row)
        .transpose()
}

/// Columns a switch write may set, with their values (None: keep).
pub type SwitchWrite = Vec<(&'static str, Option<Val>)>;

/// Creates a switch from the given columns; returns its id.
pub async fn insert(mut tx: impl Exec, cols: &SwitchWrite) -> DbResult<i64> {
    let t = now();
    let mut sql = Sql::new("INSERT INTO switches (created_at, updated_at");
    let set: Vec<&(&str, Option<Val>)> = cols.iter().filter(|(_, v)| v.is_some()).collect();
    for (c, _) in &set {
        sql.push(&format!(", {c}"));
    }
    sql.push(") VALUES (");
    sql.bind(t);
    sql.push(", ");
    sql.bind(t);
    for (_, v) in &set {
        sql.push(", ");
        sql.bind(v.clone().unwrap_or(Val::Null));
    }
    sql.push(") RETURNING id");
    tx.fetch_int(&sql).await
}

/// Changes a switch.
pub async fn update(tx: impl Exec, id: i64, cols: SwitchWrite) -> DbResult<()> {
    let cols = cols
        .into_iter()
        .chain([("updated_at", Some(Val::Time(now())))]);
    super::update_columns(tx, "switches", id, cols).await?;
    Ok(())
}

/// Deletes a switch.
pub async fn delete(mut tx: impl Exec, id: i64) -> DbResult<u64> {
    tx.execute(&Sql::new("DELETE FROM switches WHERE id = $1").arg(id))
        .await
}
