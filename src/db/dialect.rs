//! [`Dialect`]: the per-backend SQL differences (case-insensitive search, row locking).

/// Which SQL engine is behind a [`Db`](super::Db).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// A case-insensitive "contains" test of `expr` against the bound pattern that
    /// [`Dialect::contains_pattern`] made from the same `term`. An ASCII term (the usual case:
    /// names, models, serials, URLs) needs only ASCII case folding, which both engines do
    /// cheaply: SQLite's `LIKE`, and Postgres' `ILIKE` under the "C" collation (the database's
    /// own collation would lowercase every value through the C library's wide-character
    /// functions first). Any other term gets full Unicode folding: `ILIKE` under the database
    /// collation on Postgres, the Rust `regex` engine behind `REGEXP` on SQLite.
    pub fn contains_sql(self, expr: &str, placeholder: &str, term: &str) -> String {
        match (self, term.is_ascii()) {
            (Dialect::Sqlite, true) => format!("{expr} LIKE {placeholder} ESCAPE '\\'"),
            (Dialect::Sqlite, false) => format!("{expr} REGEXP {placeholder}"),
            // Backslash is Postgres' default LIKE escape; naming it (`ESCAPE '\'`) would make
            // Postgres rewrite the pattern through `like_escape()` for every row compared.
            (Dialect::Postgres, true) => format!("{expr} ILIKE {placeholder} COLLATE \"C\""),
            (Dialect::Postgres, false) => format!("{expr} ILIKE {placeholder}"),
        }
    }

    /// The bound value for [`Dialect::contains_sql`]: `term` taken literally.
    pub fn contains_pattern(self, term: &str) -> String {
        if self == Dialect::Sqlite && !term.is_ascii() {
            return format!("(?i){}", regex_escape(term));
        }
        let mut p = String::with_capacity(term.len() + 2);
        p.push('%');
        for c in term.chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('%');
        p
    }

    /// Row-lock suffix for a claim query (`FOR UPDATE SKIP LOCKED` on Postgres; SQLite
    /// serialises writers, so nothing is needed there).
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

fn regex_escape(term: &str) -> String {
    let mut out = String::with_capacity(term.len() * 2);
    for c in term.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_literal() {
        assert_eq!(
            Dialect::Postgres.contains_pattern("a%b_c\\"),
            "%a\\%b\\_c\\\\%"
        );
        assert_eq!(Dialect::Sqlite.contains_pattern("a.b%"), "%a.b\\%%");
        assert_eq!(Dialect::Sqlite.contains_pattern("é.b*"), "(?i)é\\.b\\*");
        assert!(Dialect::Sqlite
            .contains_sql("x", "$1", "é")
            .contains("REGEXP"));
        assert!(Dialect::Sqlite
            .contains_sql("x", "$1", "e")
            .contains("LIKE"));
    }
}
