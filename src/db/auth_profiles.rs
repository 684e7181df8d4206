//! `auth_profiles` and their `credentials` (usernames in clear, passwords sealed).

use super::{now, DbResult, Exec, Row, Sql};

/// An auth profile as the API shows it.
#[derive(Debug, Clone)]
pub struct AuthProfile {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub node_classification: String,
    /// Management protocol (`redfish`).
    pub bmc: String,
    /// Number of credentials.
    pub credentials_count: i64,
}

/// Columns selected for [`AuthProfile::from_row`].
pub const AUTH_PROFILE_COLUMNS: &str = "p.id, p.node_classification, p.bmc, \
     (SELECT COUNT(*) FROM credentials c WHERE c.auth_profile_id = p.id) AS credentials_count";

impl AuthProfile {
    /// Decodes a row selected with [`AUTH_PROFILE_COLUMNS`].
    pub fn from_row(r: &Row) -> DbResult<AuthProfile> {
        Ok(AuthProfile {
            id: r.int("id")?,
            node_classification: r.text("node_classification")?,
            bmc: r.text("bmc")?,
            credentials_count: r.int("credentials_count")?,
        })
    }
}

/// A stored credential: username and sealed password.
#[derive(Debug, Clone)]
pub struct StoredCredential {
    /// Id (also the associated data of the seal).
    pub id: i64,
    /// Username.
    pub username: String,
    /// Nonce and ciphertext.
    pub secret: Vec<u8>,
}

/// One profile.
pub async fn get(mut db: impl Exec, id: i64) -> DbResult<Option<AuthProfile>> {
    let sql = Sql::new(format!(
        "SELECT {AUTH_PROFILE_COLUMNS} FROM auth_profiles p WHERE p.id = $1"
    ))
    .arg(id);
    db.fetch_optional(&sql)
        .await?
        .as_ref()
        .map(AuthProfile::from_row)
        .transpose()
}

/// True when `e` is a second profile with a `node_classification` already taken (the
/// constraint as PostgreSQL names it, the column as SQLite reports it).
pub fn is_name_taken(e: &super::DbError) -> bool {
    e.violates("auth_profiles_node_classification_key")
        || e.violates("auth_profiles.node_classification")
}

/// Creates a profile; returns its id.
pub async fn insert(mut tx: impl Exec, node_classification: &str, bmc: &str) -> DbResult<i64> {
    tx.fetch_int(
        &Sql::new("INSERT INTO auth_profiles (node_classification, bmc, created_at) VALUES ($1, $2, $3) RETURNING id")
            .arg(node_classification)
            .arg(bmc)
            .arg(now()),
    )
    .await
}

/// Changes the given fields.
pub async fn update(
    tx: impl Exec,
    id: i64,
    node_classification: Option<String>,
    bmc: Option<String>,
) -> DbResult<()> {
    super::update_columns(
        tx,
        "auth_profiles",
        id,
        [
            ("node_classification", node_classification.map(Into::into)),
            ("bmc", bmc.map(Into::into)),
        ]
        .into_iter(),
    )
    .await?;
    Ok(())
}

/// Deletes a profile and its credentials (fails with a foreign-key violation while nodes use it).
pub async fn delete(mut db: impl Exec, id: i64) -> DbResult<u64> {
    db.execute(&Sql::new("DELETE FROM auth_profiles WHERE id = $1").arg(id))
        .await
}

/// Ids of nodes registered with a profile (at most `limit`).
pub async fn nodes_using(mut db: impl Exec, id: i64, limit: i64) -> DbResult<Vec<i64>> {
    db.fetch_all(
        &Sql::new("SELECT id FROM nodes WHERE auth_profile_id = $1 ORDER BY id LIMIT $2")
            .arg(id)
            .arg(limit),
    )
    .await?
    .iter()
    .map(|r| r.int("id"))
    .collect()
}

/// (id, username) of a profile's credentials, in the order they are tried.
pub async fn credential_names(mut db: impl Exec, profile: i64) -> DbResult<Vec<(i64, String)>> {
    db.fetch_all(
        &Sql::new("SELECT id, username FROM credentials WHERE auth_profile_id = $1 ORDER BY id")
            .arg(profile),
    )
    .await?
    .iter()
    .map(|r| Ok((r.int("id")?, r.text("username")?)))
    .collect()
}

/// A profile's credentials with their sealed passwords, in the order they are tried.
pub async fn credentials(mut db: impl Exec, profile: i64) -> DbResult<Vec<StoredCredential>> {
    db.fetch_all(
        &Sql::new(
            "SELECT id, username, secret FROM credentials WHERE auth_profile_id = $1 ORDER BY id",
        )
        .arg(profile),
    )
    .await?
    .iter()
    .map(stored)
    .collect()
}

fn stored(r: &Row) -> DbResult<StoredCredential> {
    Ok(StoredCredential {
        id: r.int("id")?,
        username: r.text("username")?,
        secret: r.opt_bytes("secret")?.unwrap_or_default(),
    })
}

/// Every credential of the installation (for key rotation), inside a transaction.
pub async fn all_credentials(mut tx: impl Exec) -> DbResult<Vec<StoredCredential>> {
    tx.fetch_all(&Sql::new(
        "SELECT id, username, secret FROM credentials ORDER BY id",
    ))
    .await?
    .iter()
    .map(stored)
    .collect()
}

/// Inserts a credential row without its secret (the id is the seal's associated data).
pub async fn insert_credential(mut tx: impl Exec, profile: i64, username: &str) -> DbResult<i64> {
    tx.fetch_int(
        &Sql::new("INSERT INTO credentials (auth_profile_id, username, created_at) VALUES ($1, $2, $3) RETURNING id")
            .arg(profile)
            .arg(username)
            .arg(now()),
    )
    .await
}

/// Stores the sealed password of a credential.
pub async fn set_secret(mut tx: impl Exec, id: i64, secret: Vec<u8>) -> DbResult<()> {
    tx.execute(
        &Sql::new("UPDATE credentials SET secret = $1 WHERE id = $2")
            .arg(secret)
            .arg(id),
    )
    .await?;
    Ok(())
}

/// Deletes a credential of a profile.
pub async fn delete_credential(mut db: impl Exec, profile: i64, id: i64) -> DbResult<u64> {
    db.execute(
        &Sql::new("DELETE FROM credentials WHERE id = $1 AND auth_profile_id = $2")
            .arg(id)
            .arg(profile),
    )
    .await
}

/// The version of a profile's credentials (bumped by every credential added, changed or
/// removed); None when there is no such profile.
pub async fn credentials_version(mut db: impl Exec, id: i64) -> DbResult<Option<i64>> {
    db.fetch_optional(
        &Sql::new("SELECT credentials_version FROM auth_profiles WHERE id = $1").arg(id),
    )
    .await?
    .map(|r| r.int("credentials_version"))
    .transpose()
}
