//! `firmware_images` and `os_images`: the catalogues of uploaded files (their metadata; the
//! files themselves live in the data dir, see `service::catalogue`).

use super::{now, update_columns, DbResult, Exec, Sql, Val};

/// Which catalogue a statement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Firmware packages (`firmware_images`).
    Firmware,
    /// OS images (`os_images`).
    Os,
}

impl Kind {
    /// The table of this catalogue.
    pub fn table(self) -> &'static str {
        match self {
            Kind::Firmware => "firmware_images",
            Kind::Os => "os_images",
        }
    }
}

/// Metadata columns a write may set, with their values (None: keep / leave to the default).
pub type CatalogueWrite = Vec<(&'static str, Option<Val>)>;

/// The stored file an inserted row describes.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the content (hex).
    pub sha256: String,
    /// File name inside the catalogue's directory.
    pub stored_name: String,
}

/// Creates a row for a stored file with the given metadata columns; returns its id.
pub async fn insert(
    mut tx: impl Exec,
    kind: Kind,
    file: &StoredFile,
    cols: CatalogueWrite,
) -> DbResult<i64> {
    let mut sql = Sql::new(format!(
        "INSERT INTO {} (size, sha256, stored_name, created_at",
        kind.table()
    ));
    let set: Vec<(&str, Val)> = cols
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| (c, v)))
        .collect();
    for (c, _) in &set {
        sql.push(&format!(", {c}"));
    }
    sql.push(") VALUES (");
    sql.bind(file.size);
    sql.push(", ");
    sql.bind(file.sha256.clone());
    sql.push(", ");
    sql.bind(file.stored_name.clone());
    sql.push(", ");
    sql.bind(now());
    for (_, v) in set {
        sql.push(", ");
        sql.bind(v);
    }
    sql.push(") RETURNING id");
    tx.fetch_int(&sql).await
}

/// The stored file name of a row, None when there is no such row.
pub async fn stored_name(mut tx: impl Exec, kind: Kind, id: i64) -> DbResult<Option<String>> {
    let sql = Sql::new(format!(
        "SELECT stored_name FROM {} WHERE id = $1",
        kind.table()
    ))
    .arg(id);
    match tx.fetch_optional(&sql).await? {
        Some(row) => Ok(Some(row.text("stored_name")?)),
        None => Ok(None),
    }
}

/// Changes the metadata columns that carry a value.
pub async fn update(tx: impl Exec, kind: Kind, id: i64, cols: CatalogueWrite) -> DbResult<u64> {
    update_columns(tx, kind.table(), id, cols.into_iter()).await
}

/// Deletes a row.
pub async fn delete(mut tx: impl Exec, kind: Kind, id: i64) -> DbResult<u64> {
    tx.execute(&Sql::new(format!("DELETE FROM {} WHERE id = $1", kind.table())).arg(id))
        .await
}
