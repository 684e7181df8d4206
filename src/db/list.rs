//! The SQL half of the list engine: the declaration of a resource's list ([`ListSpec`]) and the
//! one statement (in the common cases) that answers a list request: scope, search, filters,
//! ordering, pagination, the count and the foreign-key filter checks.
//!
//! A caller is known here only by its id and the groups that scope what it sees ([`Caller`]), so
//! this module knows nothing of how callers are authenticated. Reading the query string and
//! turning [`ListError`] into an answer is the web edge's business.

use super::{Db, DbError, DbResult, Dialect, Exec, Row, Sql};

/// How an unpaginated list is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"count","next":null,"previous":null,"results":[...]}`.
    Envelope,
    /// A bare JSON array.
    BareArray,
}

/// Appends an ` AND ...` condition restricting rows to what a member of the groups may see
/// (None: a superuser, who sees everything).
pub type ScopeFn = fn(Option<&[i64]>, &mut Sql);

/// Who a list is answered for.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The user's id.
    pub id: i64,
    /// The groups that scope what the user sees; None for a superuser, who sees everything.
    pub groups: Option<&'a [i64]>,
}

/// A list's scope: appends an ` AND ...` condition restricting its rows to what the caller may
/// see (by their groups, or by their id for rows they own).
pub type ListScope = fn(&Caller<'_>, &mut Sql);

/// How a filter parameter is matched and validated.
#[derive(Debug)]
pub enum FilterKind {
    /// Exact, case-sensitive text.
    Exact,
    /// Exact text from a fixed set (other values: 400).
    Choice(&'static [&'static str]),
    /// An integer (`Enter a number.` otherwise).
    Number,
    /// The id of the user a row belongs to, an integer like [`FilterKind::Number`]; applied only
    /// for a caller who sees every row (a superuser). Anyone else sees only their own rows (the
    /// list's scope), so the value is ignored, whatever it is.
    Owner,
    /// An integer naming rows through another table: ` AND <column> IN (<select> = value)`,
    /// e.g. `"SELECT job_id FROM job_servers WHERE server_id"` (`Enter a number.` otherwise).
    NumberIn(&'static str),
    /// `true/false/1/0`; anything else skips the filter, as django-filter's BooleanWidget does.
    Bool,
    /// The id of a row in `table` (missing or invisible: 400); `null` matches unset when
    /// `nullable`. `visible` narrows which rows of `table` the caller may name.
    ForeignKey {
        /// Referenced table.
        table: &'static str,
        /// `?param=null` selects rows where the column is NULL.
        nullable: bool,
        /// Appends ` AND <condition on {table}.id>` for callers that see only part of the table.
        visible: Option<ScopeFn>,
    },
}

impl Clone for FilterKind {
    fn clone(&self) -> Self {
        *self
    }
}

impl Copy for FilterKind {}

/// One filter parameter.
#[derive(Debug)]
pub struct Filter {
    /// Query parameter name.
    pub param: &'static str,
    /// SQL expression compared with the value.
    pub column: &'static str,
    /// Matching rule.
    pub kind: FilterKind,
}

impl Clone for Filter {
    fn clone(&self) -> Self {
        *self
    }
}

impl Copy for Filter {}

/// The list declaration of a resource: like DRF's `search_fields`, `filterset_fields` and
/// `ordering_fields` together, plus the SQL the engine runs.
#[derive(Debug)]
pub struct ListSpec {
    /// Model name used in 404 bodies (`No Pool matches the given query.`).
    pub model: &'static str,
    /// `FROM` clause (table with alias and joins).
    pub from: &'static str,
    /// Selected columns.
    pub columns: &'static str,
    /// Searchable fields: (name shown in docs, SQL text expression).
    pub search: &'static [(&'static str, &'static str)],
    /// Filter parameters.
    pub filters: &'static [Filter],
    /// Orderable fields: (name in `ordering`, SQL expression).
    pub ordering: &'static [(&'static str, &'static str)],
    /// The id column, the default order and the tiebreaker.
    pub id_column: &'static str,
    /// Answer of an unpaginated request.
    pub shape: Shape,
    /// Restricts rows to what the caller may see (None: everything).
    pub scope: Option<ListScope>,
}

/// The `page` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageParam {
    /// Not sent, or empty.
    #[default]
    Absent,
    /// `last`.
    Last,
    /// A page number, at least 1.
    Number(u64),
    /// Anything else.
    Invalid,
}

/// A list request, read from the query string by the web edge.
#[derive(Debug, Clone, Default)]
pub struct ListRequest<'a> {
    /// The terms of the `search` value (every one must match one of the search fields).
    pub search: Vec<String>,
    /// The value of each filter of the declaration, by position.
    pub filters: Vec<Option<&'a str>>,
    /// The `ordering` value.
    pub ordering: Option<&'a str>,
    /// The `page` value.
    pub page: PageParam,
    /// The page size (already clamped); None: unpaginated.
    pub page_size: Option<u64>,
}

/// Why a list request has no answer.
#[derive(Debug)]
pub enum ListError {
    /// Invalid filter values: (parameter, message) in declaration order.
    Invalid(Vec<(&'static str, String)>),
    /// The page does not exist (or `page` is not a page number).
    InvalidPage,
    /// The database failed (or a row did not decode).
    Db(DbError),
}

impl From<DbError> for ListError {
    fn from(e: DbError) -> Self {
        ListError::Db(e)
    }
}

/// Result of the list engine.
pub type ListResult<T> = Result<T, ListError>;

/// The pagination facts of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// Number of matching rows.
    pub count: u64,
    /// The page answered (1 when unpaginated).
    pub number: u64,
    /// Number of pages (1 when unpaginated).
    pub pages: u64,
}

/// One answer of the list engine: the items and, when paginated (or `page` was sent), the
/// pagination facts.
#[derive(Debug)]
pub struct Listing<T> {
    /// Items of the page (or all items).
    pub items: Vec<T>,
    /// Pagination facts, None for a plain unpaginated list.
    pub page: Option<PageInfo>,
}

/// The validated ordering: (SQL expression, direction) pairs from the `ordering` parameter,
/// ending with the id column as tiebreaker.
fn order_by(spec: &ListSpec, ordering: Option<&str>) -> Vec<(&'static str, &'static str)> {
    let mut parts = Vec::new();
    let mut has_id = false;
    if let Some(v) = ordering {
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (desc, name) = match item.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, item),
            };
            let Some((_, expr)) = spec.ordering.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            // A field named twice orders once, by its first mention (a repeat changes nothing).
            if parts.iter().any(|(e, _)| e == expr) {
                continue;
            }
            if *expr == spec.id_column {
                has_id = true;
            }
            parts.push((
                *expr,
                if desc {
                    "DESC NULLS FIRST"
                } else {
                    "ASC NULLS LAST"
                },
            ));
        }
    }
    if !has_id {
        parts.push((spec.id_column, "ASC"));
    }
    parts
}

const FK_INVALID: &str = "Select a valid choice. That choice is not one of the available choices.";

/// A foreign-key filter value still to be checked: `(SELECT COUNT(*) ...)` selected as
/// `__fk<n>`, folded into the list query itself.
struct FkCheck {
    /// Position of the filter in the declaration (errors are reported in that order).
    order: usize,
    param: &'static str,
    /// Scalar subquery, with placeholders numbered in the list query.
    subquery: String,
}

/// The WHERE clause (scope, search and filters) built into `sql`, plus what is left to check.
struct Filtered {
    /// ` WHERE ...` text; its arguments are those of the `Sql` it was built in.
    clause: String,
    /// Foreign-key values to verify.
    checks: Vec<FkCheck>,
    /// Messages found without the database, with the position of their filter.
    errors: Vec<(usize, &'static str, String)>,
}

/// Builds the WHERE clause (scope, search and filters); arguments go into `sql`.
fn where_clause(
    dialect: Dialect,
    spec: &ListSpec,
    req: &ListRequest<'_>,
    caller: &Caller<'_>,
    sql: &mut Sql,
) -> Filtered {
    let outer = sql.replace_text(String::from(" WHERE 1=1"));
    if let Some(scope) = spec.scope {
        scope(caller, sql);
    }
    for term in req.search.iter().filter(|_| !spec.search.is_empty()) {
        let p = sql.bind_later(dialect.contains_pattern(term));
        let ors: Vec<String> = spec
            .search
            .iter()
            .map(|(_, expr)| dialect.contains_sql(expr, &p, term))
            .collect();
        sql.push(&format!(" AND ({})", ors.join(" OR ")));
    }
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    for (order, f) in spec.filters.iter().enumerate() {
        let Some(raw) = req.filters.get(order).copied().flatten() else {
            continue;
        };
        if raw.is_empty() || (matches!(f.kind, FilterKind::Owner) && caller.groups.is_some()) {
            continue;
        }
        let mut error = |msg: String| errors.push((order, f.param, msg));
        if raw.contains('\0') {
            error("Null characters are not allowed.".into());
            continue;
        }
        match f.kind {
            FilterKind::Choice(choices) if !choices.contains(&raw) => error(format!(
                "Select a valid choice. {raw} is not one of the available choices."
            )),
            FilterKind::Exact | FilterKind::Choice(_) => {
                let p = sql.bind_later(raw);
                sql.push(&format!(" AND {} = {p}", f.column));
            }
            FilterKind::Number | FilterKind::Owner => match raw.trim().parse::<i64>() {
                Ok(n) => {
                    let p = sql.bind_later(n);
                    sql.push(&format!(" AND {} = {p}", f.column));
                }
                Err(_) => error("Enter a number.".into()),
            },
            FilterKind::NumberIn(select) => match raw.trim().parse::<i64>() {
                Ok(n) => {
                    let p = sql.bind_later(n);
                    sql.push(&format!(" AND {} IN ({select} = {p})", f.column));
                }
                Err(_) => error("Enter a number.".into()),
            },
            FilterKind::Bool => {
                let b = match raw.to_ascii_lowercase().as_str() {
                    "true" | "1" => Some(true),
                    "false" | "0" => Some(false),
                    _ => None,
                };
                if let Some(b) = b {
                    let p = sql.bind_later(b);
                    sql.push(&format!(" AND {} = {p}", f.column));
                }
            }
            FilterKind::ForeignKey {
                table,
                nullable,
                visible,
            } => {
                if nullable && raw == "null" {
                    sql.push(&format!(" AND {} IS NULL", f.column));
                    continue;
                }
                let Ok(id) = raw.trim().parse::<i64>() else {
                    error(FK_INVALID.into());
                    continue;
                };
                let p = sql.bind_later(id);
                let clause = sql.replace_text(format!(
                    "(SELECT COUNT(*) FROM {table} WHERE {table}.id = {p}"
                ));
                if let Some(vis) = visible {
                    vis(caller.groups, sql);
                }
                sql.push(")");
                let subquery = sql.replace_text(clause);
                checks.push(FkCheck {
                    order,
                    param: f.param,
                    subquery,
                });
                sql.push(&format!(" AND {} = {p}", f.column));
            }
        }
    }
    let clause = sql.replace_text(outer);
    Filtered {
        clause,
        checks,
        errors,
    }
}

/// Reports the filter errors: those found while building the query and the foreign keys that
/// `head` (the row carrying the `__fk<n>` columns) shows to be missing or invisible.
fn filter_errors(filtered: &Filtered, head: Option<&Row>) -> ListResult<()> {
    let mut found: Vec<(usize, &'static str, String)> = filtered.errors.clone();
    for (i, c) in filtered.checks.iter().enumerate() {
        let seen = head
            .and_then(|r| r.opt_int(&format!("__fk{i}")).ok().flatten())
            .unwrap_or(0);
        if seen == 0 {
            found.push((c.order, c.param, FK_INVALID.into()));
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort_by_key(|(order, _, _)| *order);
    Err(ListError::Invalid(
        found.into_iter().map(|(_, p, m)| (p, m)).collect(),
    ))
}

/// Runs a list request against a declaration, in one statement in the common cases: the
/// foreign-key checks, the count and the page come back together (the page `LEFT JOIN`ed to a
/// one-row head of count and checks, so an empty page still answers them). Each row is
/// turned into an item by `decode` as it arrives.
pub async fn run<T>(
    db: &Db,
    spec: &ListSpec,
    req: &ListRequest<'_>,
    caller: &Caller<'_>,
    mut decode: impl FnMut(&Row) -> DbResult<T>,
) -> ListResult<Listing<T>> {
    let mut sql = Sql::default();
    let filtered = where_clause(db.dialect(), spec, req, caller, &mut sql);
    let plan = Plan {
        db,
        columns: spec.columns,
        id_column: spec.id_column,
        order: order_by(spec, req.ordering),
        from: spec.from,
        from_where: format!(" FROM {}{}", spec.from, filtered.clause),
        searched: !req.search.is_empty() && !spec.search.is_empty(),
        checks: filtered
            .checks
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS __fk{i}", c.subquery))
            .collect(),
    };

    if !filtered.errors.is_empty() {
        // Report every filter error at once, the foreign keys included.
        let head = if plan.checks.is_empty() {
            None
        } else {
            let mut head_sql = sql.clone();
            head_sql.push(&format!("SELECT {}", plan.checks.join(", ")));
            db.fetch_optional(&head_sql).await?
        };
        filter_errors(&filtered, head.as_ref())?;
    }

    let Some(size) = req.page_size else {
        // Unpaginated, or `page` alone: everything, in one page.
        let (head, rows) = plan.rows(sql, true, false, None, &mut decode).await?;
        filter_errors(&filtered, head.as_ref())?;
        let page = match req.page {
            PageParam::Absent => None,
            PageParam::Last | PageParam::Number(1) => Some(PageInfo {
                count: rows.len() as u64,
                number: 1,
                pages: 1,
            }),
            PageParam::Number(_) | PageParam::Invalid => return Err(ListError::InvalidPage),
        };
        return Ok(Listing { items: rows, page });
    };

    let (count, number, rows) = match req.page {
        PageParam::Absent | PageParam::Number(_) => {
            let n = if let PageParam::Number(n) = req.page {
                n
            } else {
                1
            };
            let offset = (n - 1).saturating_mul(size);
            let (head, rows) = plan
                .rows(sql, true, true, Some((size, offset)), &mut decode)
                .await?;
            filter_errors(&filtered, head.as_ref())?;
            (total_of(head.as_ref())?, n, rows)
        }
        PageParam::Last | PageParam::Invalid => {
            // `last` (or a bad page number, reported after the filters): count first.
            let mut head_sql = sql.clone();
            let mut cols = vec![format!("(SELECT COUNT(*){}) AS __total", plan.from_where)];
            cols.extend(plan.checks.iter().cloned());
            head_sql.push(&format!("SELECT {}", cols.join(", ")));
            let head = db.fetch_optional(&head_sql).await?;
            filter_errors(&filtered, head.as_ref())?;
            let count = total_of(head.as_ref())?;
            if req.page == PageParam::Invalid {
                return Err(ListError::InvalidPage);
            }
            let last = count.div_ceil(size).max(1);
            let (_, rows) = plan
                .rows(
                    sql,
                    false,
                    false,
                    Some((size, (last - 1) * size)),
                    &mut decode,
                )
                .await?;
            (count, last, rows)
        }
    };
    let pages = count.div_ceil(size).max(1);
    if number > pages {
        return Err(ListError::InvalidPage);
    }
    Ok(Listing {
        items: rows,
        page: Some(PageInfo {
            count,
            number,
            pages,
        }),
    })
}

/// One row of a declaration by id, within the caller's scope, decoded (None: no such row, or
/// one the caller may not see).
pub async fn fetch_one<T>(
    mut db: impl Exec,
    spec: &ListSpec,
    caller: &Caller<'_>,
    id: i64,
    decode: impl FnOnce(&Row) -> DbResult<T>,
) -> DbResult<Option<T>> {
    let mut sql = Sql::new(format!(
        "SELECT {} FROM {} WHERE {} = $1",
        spec.columns, spec.from, spec.id_column
    ))
    .arg(id);
    if let Some(scope) = spec.scope {
        scope(caller, &mut sql);
    }
    match db.fetch_optional(&sql).await? {
        Some(row) => decode(&row).map(Some),
        None => Ok(None),
    }
}

/// The `__total` column of a head row.
fn total_of(head: Option<&Row>) -> DbResult<u64> {
    let n = match head {
        Some(r) => r.opt_int("__total")?.unwrap_or(0),
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// What every statement of one list request shares.
struct Plan<'a> {
    db: &'a Db,
    columns: &'static str,
    id_column: &'static str,
    order: Vec<(&'static str, &'static str)>,
    /// The declaration's `FROM` clause.
    from: &'static str,
    /// ` FROM ... WHERE ...`.
    from_where: String,
    /// Whether the WHERE clause carries search terms: then a paginated request evaluates it
    /// once, into the ids and order keys of every match, and counts and pages those.
    searched: bool,
    /// `(SELECT COUNT(*) ...) AS __fk<n>` columns.
    checks: Vec<String>,
}

impl Plan<'_> {
    /// Selects the items of one page (or all of them with `limit` None) in order. With the
    /// checks or `count`, the rows are joined to a one-row head carrying them, returned
    /// separately (it is there even when no row matches).
    async fn rows<T>(
        &self,
        mut sql: Sql,
        checks: bool,
        count: bool,
        limit: Option<(u64, u64)>,
        decode: &mut impl FnMut(&Row) -> DbResult<T>,
    ) -> DbResult<(Option<Row>, Vec<T>)> {
        let from_where = &self.from_where;
        let order_sql = |prefix: &str| -> String {
            self.order
                .iter()
                .enumerate()
                .map(|(i, (expr, dir))| {
                    if prefix.is_empty() {
                        format!("{expr} {dir}")
                    } else {
                        format!("{prefix}__o{i} {dir}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let limit_sql = match limit {
            Some((size, offset)) => {
                let l = sql.bind_later(i64::try_from(size).unwrap_or(i64::MAX));
                let o = sql.bind_later(i64::try_from(offset).unwrap_or(i64::MAX));
                format!(" LIMIT {l} OFFSET {o}")
            }
            None => String::new(),
        };
        let keys: Vec<String> = self
            .order
            .iter()
            .enumerate()
            .map(|(i, (expr, _))| format!(", {expr} AS __o{i}"))
            .chain([format!(", {} AS __id", self.id_column)])
            .collect();
        // With search terms the filter is the expensive part (each term is a pattern match on
        // every search field of every candidate row): it runs once, into `m`, which the
        // count and the page then read.
        let matches = count && self.searched;
        let mut head: Vec<String> = Vec::new();
        if matches {
            head.push("(SELECT COUNT(*) FROM m) AS __total".to_string());
        } else if count {
            head.push(format!("(SELECT COUNT(*){from_where}) AS __total"));
        }
        if checks {
            head.extend(self.checks.iter().cloned());
        }
        let mut items = Vec::new();
        if head.is_empty() {
            sql.push(&format!(
                "SELECT {}{from_where} ORDER BY {}{limit_sql}",
                self.columns,
                order_sql("")
            ));
            self.db
                .fetch_each(&sql, |row| {
                    items.push(decode(&row)?);
                    Ok(())
                })
                .await?;
            return Ok((None, items));
        }
        let page = if matches {
            let m_keys = keys.concat();
            sql.push(&format!(
                "WITH m AS MATERIALIZED (SELECT {}{from_where}) ",
                &m_keys[2..]
            ));
            format!(
                "SELECT {}{m_keys} FROM {} WHERE {} IN (SELECT m.__id FROM m ORDER BY {}{limit_sql})",
                self.columns,
                self.from,
                self.id_column,
                order_sql("m.")
            )
        } else {
            format!(
                "SELECT {}{}{from_where} ORDER BY {}{limit_sql}",
                self.columns,
                keys.concat(),
                order_sql("")
            )
        };
        sql.push(&format!(
            "SELECT h.*, r.* FROM (SELECT {}) h LEFT JOIN ({page}) r ON 1=1 ORDER BY {}",
            head.join(", "),
            order_sql("r.")
        ));
        let mut first = None;
        self.db
            .fetch_each(&sql, |row| {
                // The id is never NULL in a real row: NULL marks the head joined to no row.
                if row.opt_int("__id")?.is_some() {
                    items.push(decode(&row)?);
                }
                if first.is_none() {
                    first = Some(row);
                }
                Ok(())
            })
            .await?;
        Ok((first, items))
    }
}
