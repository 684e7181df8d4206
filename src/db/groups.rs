//! `auth_group` and its memberships.

use super::{in_list, insert_rows, DbResult, Exec, Row, Sql, Val};

/// The group every installation starts with; the guide creates pools with `"group": 1`.
pub const DEFAULT_GROUP_ID: i64 = 1;

/// A group as the API shows it.
#[derive(Debug, Clone)]
pub struct Group {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Member user ids.
    pub users: Vec<i64>,
}

/// Columns selected for [`Group::from_row`].
pub const GROUP_COLUMNS: &str = "g.id, g.name";

impl Group {
    /// Decodes a row selected with [`GROUP_COLUMNS`] (members come from [`attach_users`]).
    pub fn from_row(r: &Row) -> DbResult<Group> {
        Ok(Group {
            id: r.int("id")?,
            name: r.text("name")?,
            users: Vec::new(),
        })
    }
}

/// Member ids of each group, in one query.
pub async fn attach_users(mut db: impl Exec, groups: &mut [Group]) -> DbResult<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
    let mut sql = Sql::new("SELECT user_id, group_id FROM auth_user_groups WHERE group_id IN ");
    in_list(&mut sql, &ids);
    sql.push(" ORDER BY user_id");
    for row in db.fetch_all(&sql).await? {
        let gid = row.int("group_id")?;
        if let Some(g) = groups.iter_mut().find(|g| g.id == gid) {
            g.users.push(row.int("user_id")?);
        }
    }
    Ok(())
}

/// One group with its members.
pub async fn get(mut db: impl Exec, id: i64) -> DbResult<Option<Group>> {
    let sql = Sql::new(format!(
        "SELECT {GROUP_COLUMNS} FROM auth_group g WHERE g.id = $1"
    ))
    .arg(id);
    let Some(row) = db.fetch_optional(&sql).await? else {
        return Ok(None);
    };
    let mut groups = vec![Group::from_row(&row)?];
    attach_users(db, &mut groups).await?;
    Ok(groups.pop())
}

/// Creates a group; returns its id.
pub async fn insert(mut tx: impl Exec, name: &str) -> DbResult<i64> {
    tx.fetch_int(&Sql::new("INSERT INTO auth_group (name) VALUES ($1) RETURNING id").arg(name))
        .await
}

/// Renames a group.
pub async fn rename(mut tx: impl Exec, id: i64, name: &str) -> DbResult<()> {
    tx.execute(
        &Sql::new("UPDATE auth_group SET name = $1 WHERE id = $2")
            .arg(name)
            .arg(id),
    )
    .await?;
    Ok(())
}

/// Replaces the members of a group.
pub async fn set_users(tx: impl Exec, id: i64, users: &[i64]) -> DbResult<()> {
    replace_memberships(tx, "group_id", "user_id", id, users).await
}

/// Replaces every membership whose `key` column is `id` with one per id of `others`
/// (in the `other` column), in one statement per few hundred rows.
pub(crate) async fn replace_memberships(
    mut tx: impl Exec,
    key: &str,
    other: &str,
    id: i64,
    others: &[i64],
) -> DbResult<()> {
    tx.execute(&Sql::new(format!("DELETE FROM auth_user_groups WHERE {key} = $1")).arg(id))
        .await?;
    let mut others = others.to_vec();
    others.sort_unstable();
    others.dedup();
    let rows = others
        .into_iter()
        .map(|o| vec![Val::Int(id), Val::Int(o)])
        .collect();
    insert_rows(tx, "auth_user_groups", &[key, other], rows).await
}

/// Deletes a group (memberships go with it).
pub async fn delete(mut db: impl Exec, id: i64) -> DbResult<u64> {
    db.execute(&Sql::new("DELETE FROM auth_group WHERE id = $1").arg(id))
        .await
}

/// True when group `id` exists.
pub async fn exists(mut db: impl Exec, id: i64) -> DbResult<bool> {
    Ok(db
        .fetch_int(&Sql::new("SELECT COUNT(*) FROM auth_group WHERE id = $1").arg(id))
        .await?
        > 0)
}
