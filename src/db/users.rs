//! `auth_user`, `auth_user_groups` and `token_blacklist`.

use chrono::{DateTime, Utc};

use super::{in_list, now, update_columns, DbResult, Exec, Row, Sql, Val};

/// What authentication needs to know about a user.
#[derive(Debug, Clone)]
pub struct AuthInfo {
    /// Id.
    pub id: i64,
    /// User name.
    pub username: String,
    /// Superuser flag.
    pub is_superuser: bool,
    /// Inactive users cannot log in or use tokens.
    pub is_active: bool,
    /// Group ids.
    pub groups: Vec<i64>,
    /// Tokens issued (`iat`, Unix seconds) before this are refused: the second after the
    /// last password change or deactivation, rounded up.
    pub tokens_valid_after: Option<i64>,
}

/// A user as the API shows it.
#[derive(Debug, Clone)]
pub struct User {
    /// Id.
    pub id: i64,
    /// User name.
    pub username: String,
    /// E-mail.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Superuser flag.
    pub is_superuser: bool,
    /// Active flag.
    pub is_active: bool,
    /// Group ids.
    pub groups: Vec<i64>,
    /// Last successful login.
    pub last_login: Option<DateTime<Utc>>,
    /// Creation time.
    pub date_joined: DateTime<Utc>,
}

/// Columns selected for [`User::from_row`].
pub const USER_COLUMNS: &str =
    "u.id, u.username, u.email, u.first_name, u.last_name, u.is_superuser, u.is_active, u.last_login, u.date_joined";

impl User {
    /// Decodes a row selected with [`USER_COLUMNS`] (groups are filled by [`attach_groups`]).
    pub fn from_row(r: &Row) -> DbResult<User> {
        Ok(User {
            id: r.int("id")?,
            username: r.text("username")?,
            email: r.text("email")?,
            first_name: r.text("first_name")?,
            last_name: r.text("last_name")?,
            is_superuser: r.bool("is_superuser")?,
            is_active: r.bool("is_active")?,
            groups: Vec::new(),
            last_login: r.opt_time("last_login")?,
            date_joined: r.time("date_joined")?,
        })
    }
}

/// Group ids of each user, in one query.
pub async fn attach_groups(mut db: impl Exec, users: &mut [User]) -> DbResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let mut sql = Sql::new("SELECT user_id, group_id FROM auth_user_groups WHERE user_id IN ");
    in_list(&mut sql, &ids);
    sql.push(" ORDER BY group_id");
    for row in db.fetch_all(&sql).await? {
        let uid = row.int("user_id")?;
        let gid = row.int("group_id")?;
        if let Some(u) = users.iter_mut().find(|u| u.id == uid) {
            u.groups.push(gid);
        }
    }
    Ok(())
}

/// One user with groups, in one statement (a row per group, or one row without).
pub async fn get(mut db: impl Exec, id: i64) -> DbResult<Option<User>> {
    let sql = Sql::new(format!(
        "SELECT {USER_COLUMNS}, g.group_id FROM auth_user u \
         LEFT JOIN auth_user_groups g ON g.user_id = u.id WHERE u.id = $1 ORDER BY g.group_id"
    ))
    .arg(id);
    let rows = db.fetch_all(&sql).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut user = User::from_row(first)?;
    for row in &rows {
        if let Some(g) = row.opt_int("group_id")? {
            user.groups.push(g);
        }
    }
    Ok(Some(user))
}

/// The identity of a token's user.
pub async fn auth_info(mut db: impl Exec, id: i64) -> DbResult<Option<AuthInfo>> {
    let sql = Sql::new(
        "SELECT u.id, u.username, u.is_superuser, u.is_active, u.tokens_valid_after, g.group_id \
         FROM auth_user u LEFT JOIN auth_user_groups g ON g.user_id = u.id WHERE u.id = $1",
    )
    .arg(id);
    let rows = db.fetch_all(&sql).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut info = AuthInfo {
        id: first.int("id")?,
        username: first.text("username")?,
        is_superuser: first.bool("is_superuser")?,
        is_active: first.bool("is_active")?,
        groups: Vec::new(),
        tokens_valid_after: first.opt_time("tokens_valid_after")?.map(|t| {
            let secs = t.timestamp();
            if t.timestamp_subsec_nanos() > 0 {
                secs + 1
            } else {
                secs
            }
        }),
    };
    for r in &rows {
        if let Some(g) = r.opt_int("group_id")? {
            info.groups.push(g);
        }
    }
    Ok(Some(info))
}

/// The id, password hash and active flag of the user named `username`.
pub async fn login_row(mut db: impl Exec, username: &str) -> DbResult<Option<(i64, String, bool)>> {
    let sql =
        Sql::new("SELECT id, password, is_active FROM auth_user WHERE username = $1").arg(username);
    db.fetch_optional(&sql)
        .await?
        .map(|r| Ok((r.int("id")?, r.text("password")?, r.bool("is_active")?)))
        .transpose()
}

/// Records a successful login.
pub async fn touch_last_login(mut db: impl Exec, id: i64) -> DbResult<()> {
    db.execute(
        &Sql::new("UPDATE auth_user SET last_login = $1 WHERE id = $2")
            .arg(now())
            .arg(id),
    )
    .await?;
    Ok(())
}

/// True when the refresh token with this id was revoked.
pub async fn is_blacklisted(mut db: impl Exec, jti: &str) -> DbResult<bool> {
    let n = db
        .fetch_int(&Sql::new("SELECT COUNT(*) FROM token_blacklist WHERE jti = $1").arg(jti))
        .await?;
    Ok(n > 0)
}

/// Revokes a refresh token (and forgets revoked tokens that have expired anyway).
pub async fn blacklist(mut db: impl Exec, jti: &str, exp: i64) -> DbResult<()> {
    let expires = DateTime::from_timestamp(exp, 0).unwrap_or_else(Utc::now);
    db.execute(&Sql::new("DELETE FROM token_blacklist WHERE expires_at < $1").arg(now()))
        .await?;
    db.execute(
        &Sql::new("INSERT INTO token_blacklist (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .arg(jti)
            .arg(expires),
    )
    .await?;
    Ok(())
}

/// Fields of a new or changed user.
#[derive(Debug, Default, Clone)]
pub struct UserWrite {
    /// User name.
    pub username: Option<String>,
    /// Already hashed password.
    pub password_hash: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Superuser flag.
    pub is_superuser: Option<bool>,
    /// Active flag.
    pub is_active: Option<bool>,
    /// Replaces the group memberships when set.
    pub groups: Option<Vec<i64>>,
    /// Refuses tokens issued before this time (set on a password change or deactivation).
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

/// Creates a user inside a transaction; returns its id.
pub async fn insert(mut tx: impl Exec, w: &UserWrite) -> DbResult<i64> {
    let sql = Sql::new(
        "INSERT INTO auth_user (username, password, email, first_name, last_name, is_superuser, is_active, date_joined) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .arg(w.username.clone().unwrap_or_default())
    .arg(w.password_hash.clone().unwrap_or_default())
    .arg(w.email.clone().unwrap_or_default())
    .arg(w.first_name.clone().unwrap_or_default())
    .arg(w.last_name.clone().unwrap_or_default())
    .arg(w.is_superuser.unwrap_or(false))
    .arg(w.is_active.unwrap_or(true))
    .arg(now());
    let id = tx.fetch_int(&sql).await?;
    if let Some(groups) = &w.groups {
        set_groups(tx, id, groups).await?;
    }
    Ok(id)
}

/// Changes the fields that are set.
pub async fn update(mut tx: impl Exec, id: i64, w: &UserWrite) -> DbResult<()> {
    let cols: [(&str, Option<Val>); 8] = [
        ("username", w.username.clone().map(Val::from)),
        ("password", w.password_hash.clone().map(Val::from)),
        ("email", w.email.clone().map(Val::from)),
        ("first_name", w.first_name.clone().map(Val::from)),
        ("last_name", w.last_name.clone().map(Val::from)),
        ("is_superuser", w.is_superuser.map(Val::from)),
        ("is_active", w.is_active.map(Val::from)),
        ("tokens_valid_after", w.tokens_valid_after.map(Val::from)),
    ];
    update_columns(&mut tx, "auth_user", id, cols.into_iter()).await?;
    if let Some(groups) = &w.groups {
        set_groups(tx, id, groups).await?;
    }
    Ok(())
}

async fn set_groups(tx: impl Exec, user_id: i64, groups: &[i64]) -> DbResult<()> {
    super::groups::replace_memberships(tx, "user_id", "group_id", user_id, groups).await
}

/// Number of users.
pub async fn count(mut db: impl Exec) -> DbResult<i64> {
    db.fetch_int(&Sql::new("SELECT COUNT(*) FROM auth_user"))
        .await
}

/// Deletes a user (their group memberships go with them; jobs they started keep no starter);
/// returns how many rows were deleted.
pub async fn delete(mut db: impl Exec, id: i64) -> DbResult<u64> {
    db.execute(&Sql::new("DELETE FROM auth_user WHERE id = $1").arg(id))
        .await
}
