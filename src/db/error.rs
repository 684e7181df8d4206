//! Storage errors: [`DbError`], [`DbResult`] and the constraint-violation tests callers use
//! to turn driver errors into API answers.

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The driver reported an error (connection, syntax, constraint).
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// The server's own SQLite readers reported an error (see `sqlite_read`).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A column was missing or held an unexpected type.
    #[error("column {0}: {1}")]
    Decode(String, &'static str),
    /// Migrations could not be applied.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// The name of the violated constraint, when this is a constraint violation.
    ///
    /// SQLite does not name constraints in its errors, so for it the message text
    /// (`UNIQUE constraint failed: table.col`) is returned; callers match on either form.
    pub fn constraint(&self) -> Option<String> {
        let DbError::Sqlx(sqlx::Error::Database(e)) = self else {
            return None;
        };
        if let Some(c) = e.constraint() {
            return Some(c.to_string());
        }
        let msg = e.message();
        if msg.contains("constraint failed") {
            return Some(msg.to_string());
        }
        None
    }

    /// True when the error violates the constraint or index `name`, on either backend
    /// (Postgres names it; SQLite names an index in its message, or `table.column`).
    pub fn violates(&self, name: &str) -> bool {
        self.constraint()
            .is_some_and(|c| c == name || c.contains(name))
    }

    /// True when the error is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when the error is a foreign-key violation.
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e)) if e.is_foreign_key_violation())
    }
}

/// Result alias for storage calls.
pub type DbResult<T> = Result<T, DbError>;
