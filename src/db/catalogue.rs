//! `firmware_images` and `os_images`: the catalogues of uploaded files (their metadata; the
//! files themselves live in the data dir, see `service::catalogue`).

use super::{in_list, now, update_columns, DbResult, Exec, Row, Sql, Val};

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
    /// The uploaded file's original name.
    pub file_name: String,
}

/// Creates a row for a stored file with the given metadata columns; returns its id.
pub async fn insert(
    mut tx: impl Exec,
    kind: Kind,
    file: &StoredFile,
    cols: CatalogueWrite,
) -> DbResult<i64> {
    let mut sql = Sql::new(format!(
        "INSERT INTO {} (size, sha256, stored_name, file_name, created_at",
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
    sql.bind(file.file_name.clone());
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

/// The id of an entry whose content has this SHA-256, if any (the oldest).
pub async fn id_by_sha256(mut ex: impl Exec, kind: Kind, sha256: &str) -> DbResult<Option<i64>> {
    let sql = Sql::new(format!(
        "SELECT id FROM {} WHERE sha256 = $1 ORDER BY id LIMIT 1",
        kind.table()
    ))
    .arg(sha256.to_string());
    match ex.fetch_optional(&sql).await? {
        Some(row) => Ok(Some(row.int("id")?)),
        None => Ok(None),
    }
}

/// Where an entry's file is and what it is called.
#[derive(Debug, Clone)]
pub struct MediaFile {
    /// File name inside the catalogue's directory.
    pub stored_name: String,
    /// The uploaded file's original name (may be empty for entries from before it was kept).
    pub file_name: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 (hex).
    pub sha256: String,
}

/// The stored file of an entry, None when there is no such entry.
pub async fn media_file(mut ex: impl Exec, kind: Kind, id: i64) -> DbResult<Option<MediaFile>> {
    let sql = Sql::new(format!(
        "SELECT stored_name, file_name, size, sha256 FROM {} WHERE id = $1",
        kind.table()
    ))
    .arg(id);
    match ex.fetch_optional(&sql).await? {
        Some(r) => Ok(Some(MediaFile {
            stored_name: r.text("stored_name")?,
            file_name: r.text("file_name")?,
            size: r.int("size")?,
            sha256: r.text("sha256")?,
        })),
        None => Ok(None),
    }
}

/// A firmware package as updates and baselines use it.
#[derive(Debug, Clone)]
pub struct FirmwareBinary {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `BIOS`, `BMC` or a vendor type.
    pub firmware_type: String,
    /// Version it installs.
    pub version: String,
    /// Manufacturer it applies to (empty: any).
    pub manufacturer: String,
    /// Models it applies to (empty: any).
    pub models: Vec<String>,
    /// The uploaded file's original name.
    pub file_name: String,
    /// File name inside the firmware directory.
    pub stored_name: String,
    /// Size in bytes.
    pub size: i64,
}

impl FirmwareBinary {
    /// True when this binary applies to a server of `manufacturer` and `model`: its
    /// manufacturer is empty or, case-insensitively, equals the server's or is its first
    /// word(s) up to a space or comma; and its models list is empty or holds the server's
    /// model (case-insensitively, exact). `db::baselines::push_applies` is the same rule in SQL.
    pub fn applies_to(&self, manufacturer: Option<&str>, model: Option<&str>) -> bool {
        let want = self.manufacturer.trim().to_lowercase();
        let manufacturer_ok = want.is_empty()
            || manufacturer.is_some_and(|m| {
                let m = m.to_lowercase();
                m == want
                    || m.strip_prefix(&want)
                        .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with(','))
            });
        let models: Vec<String> = self
            .models
            .iter()
            .map(|m| m.trim().to_lowercase())
            .filter(|m| !m.is_empty())
            .collect();
        let model_ok =
            models.is_empty() || model.is_some_and(|m| models.contains(&m.trim().to_lowercase()));
        manufacturer_ok && model_ok
    }
}

const BINARY_COLUMNS: &str =
    "id, name, firmware_type, version, manufacturer, models, file_name, stored_name, size";

fn binary_from_row(r: &Row) -> DbResult<FirmwareBinary> {
    Ok(FirmwareBinary {
        id: r.int("id")?,
        name: r.text("name")?,
        firmware_type: r.text("firmware_type")?,
        version: r.text("version")?,
        manufacturer: r.text("manufacturer")?,
        models: serde_json::from_str(&r.text("models")?).unwrap_or_default(),
        file_name: r.text("file_name")?,
        stored_name: r.text("stored_name")?,
        size: r.int("size")?,
    })
}

/// The firmware packages with these ids, in the order of `ids` (missing ones left out).
pub async fn firmware_binaries(mut ex: impl Exec, ids: &[i64]) -> DbResult<Vec<FirmwareBinary>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(format!(
        "SELECT {BINARY_COLUMNS} FROM firmware_images WHERE id IN "
    ));
    in_list(&mut sql, ids);
    let mut found: Vec<FirmwareBinary> = ex
        .fetch_all(&sql)
        .await?
        .iter()
        .map(binary_from_row)
        .collect::<DbResult<_>>()?;
    found.sort_by_key(|b| ids.iter().position(|i| *i == b.id).unwrap_or(usize::MAX));
    Ok(found)
}
