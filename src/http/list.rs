//! The list engine: search, filters, ordering and pagination for every list endpoint, done in
//! SQL and driven by one static declaration per resource ([`ListSpec`]).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::auth::CurrentUser;
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::db::{Db, DbResult, Dialect, Row, Sql};

/// Largest page a client may ask for; larger values are clamped.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// How an unpaginated list is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"count","next":null,"previous":null,"results":[...]}`.
    Envelope,
    /// A bare JSON array.
    BareArray,
}

/// How a filter parameter is matched and validated.
#[derive(Debug, Clone, Copy)]
pub enum FilterKind {
    /// Exact, case-sensitive text.
    Exact,
    /// Exact text from a fixed set (other values: 400).
    Choice(&'static [&'static str]),
    /// An integer (`Enter a number.` otherwise).
    Number,
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

/// Appends an ` AND ...` condition restricting rows to what the caller may see.
pub type ScopeFn = fn(&CurrentUser, &mut Sql);

/// One filter parameter.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    /// Query parameter name.
    pub param: &'static str,
    /// SQL expression compared with the value.
    pub column: &'static str,
    /// Matching rule.
    pub kind: FilterKind,
}

/// The list declaration of a resource: like DRF's `search_fields`, `filterset_fields` and
/// `ordering_fields` together, plus the SQL the engine runs.
#[derive(Debug)]
pub struct ListSpec {
    /// Model name used in 404 bodies (`No Pool matches the given query.`), see [`fetch_one`].
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
    pub scope: Option<ScopeFn>,
}

/// The query string and absolute URL of a list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Query parameters in request order.
    pub params: Vec<(String, String)>,
    /// `scheme://host/path` of the request, for `next`/`previous`.
    pub base_url: String,
}

impl ListQuery {
    /// The last value of a parameter (Django's `QueryDict.get`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn url_with_page(&self, page: Option<u64>) -> String {
        let mut params: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(k, _)| k != "page")
            .cloned()
            .collect();
        if let Some(p) = page {
            params.push(("page".into(), p.to_string()));
        }
        // DRF re-encodes the query sorted by key.
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        if query.is_empty() {
            self.base_url.clone()
        } else {
            format!("{}?{}", self.base_url, query)
        }
    }
}

/// The scheme and host a client used, honouring `X-Forwarded-*` only from trusted proxies.
pub fn request_origin(parts: &Parts, state: &AppState) -> (String, String) {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|ip| state.config.trusted_proxies.contains(&ip));
    let headers: &HeaderMap = &parts.headers;
    let header_str = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(',').next().unwrap_or("").trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let mut scheme = if state.config.tls { "https" } else { "http" }.to_string();
    let mut host = header_str(header::HOST.as_str())
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| state.config.listen.to_string());
    if trusted {
        if let Some(p) = header_str("x-forwarded-proto") {
            scheme = p;
        }
        if let Some(h) = header_str("x-forwarded-host") {
            host = h;
        }
    }
    (scheme, host)
}

impl FromRequestParts<AppState> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let (scheme, host) = request_origin(parts, state);
        Ok(ListQuery {
            params,
            base_url: format!("{scheme}://{host}{}", parts.uri.path()),
        })
    }
}

/// DRF's `_positive_int(strict=True)`: a positive integer, else None.
fn positive_int(s: &str) -> Option<u64> {
    s.trim().parse::<u64>().ok().filter(|n| *n > 0)
}

/// Splits a search value like DRF's `search_smart_split`: whitespace separates terms, quoted
/// phrases stay whole, unquoted terms are also split on commas.
pub fn search_terms(value: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' || c == '\'' {
            chars.next();
            let mut phrase = String::new();
            let mut closed = false;
            for ch in chars.by_ref() {
                if ch == c {
                    closed = true;
                    break;
                }
                phrase.push(ch);
            }
            if !closed {
                // An unmatched quote is an ordinary character, as in Django's smart_split.
                phrase.insert(0, c);
            }
            if !phrase.trim().is_empty() {
                terms.push(phrase);
            }
            continue;
        }
        let mut word = String::new();
        while let Some(&ch) = chars.peek() {
            if ch.is_whitespace() {
                break;
            }
            word.push(ch);
            chars.next();
        }
        terms.extend(
            word.split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        );
    }
    terms
}

/// The validated ordering: (SQL expression, direction) pairs from the `ordering` parameter,
/// ending with the id column as tiebreaker.
fn order_by(spec: &ListSpec, q: &ListQuery) -> Vec<(&'static str, &'static str)> {
    let mut parts = Vec::new();
    let mut has_id = false;
    if let Some(v) = q.get("ordering") {
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (desc, name) = match item.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, item),
            };
            let Some((_, expr)) = spec.ordering.iter().find(|(n, _)| *n == name) else {
                continue;
            };
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
    q: &ListQuery,
    user: &CurrentUser,
    sql: &mut Sql,
) -> ApiResult<Filtered> {
    let outer = sql.replace_text(String::from(" WHERE 1=1"));
    if let Some(scope) = spec.scope {
        scope(user, sql);
    }
    if let Some(search) = q.get("search") {
        if search.contains('\0') {
            return Err(ApiError::field(
                "search",
                "Null characters are not allowed.",
            ));
        }
        for term in search_terms(search) {
            let p = sql.bind_later(dialect.contains_pattern(&term));
            let ors: Vec<String> = spec
                .search
                .iter()
                .map(|(_, expr)| dialect.contains_sql(expr, &p, &term))
                .collect();
            sql.push(&format!(" AND ({})", ors.join(" OR ")));
        }
    }
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    for (order, f) in spec.filters.iter().enumerate() {
        let Some(raw) = q.get(f.param) else { continue };
        if raw.is_empty() {
            continue;
        }
        let mut error = |msg: String| errors.push((order, f.param, msg));
        if raw.contains('\0') {
            error("Null characters are not allowed.".into());
            continue;
        }
        match f.kind {
            FilterKind::Exact => {
                let p = sql.bind_later(raw);
                sql.push(&format!(" AND {} = {p}", f.column));
            }
            FilterKind::Choice(choices) => {
                if choices.contains(&raw) {
                    let p = sql.bind_later(raw);
                    sql.push(&format!(" AND {} = {p}", f.column));
                } else {
                    error(format!(
                        "Select a valid choice. {raw} is not one of the available choices."
                    ));
                }
            }
            FilterKind::Number => match raw.trim().parse::<i64>() {
                Ok(n) => {
                    let p = sql.bind_later(n);
                    sql.push(&format!(" AND {} = {p}", f.column));
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
                    vis(user, sql);
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
    Ok(Filtered {
        clause,
        checks,
        errors,
    })
}

/// Reports the filter errors: those found while building the query and the foreign keys that
/// `head` (the row carrying the `__fk<n>` columns) shows to be missing or invisible.
fn filter_errors(filtered: &Filtered, head: Option<&Row>) -> ApiResult<()> {
    let mut found: Vec<(usize, &str, String)> = filtered.errors.clone();
    for (i, c) in filtered.checks.iter().enumerate() {
        let seen = head
            .and_then(|r| r.opt_int(&format!("__fk{i}")).ok().flatten())
            .unwrap_or(0);
        if seen == 0 {
            found.push((c.order, c.param, FK_INVALID.into()));
        }
    }
    found.sort_by_key(|(order, _, _)| *order);
    let mut errors = super::validate::Errors::default();
    for (_, param, msg) in found {
        errors.add(param, msg);
    }
    errors.check()
}

/// One answer of the list engine: items plus the pagination facts, if paginated.
#[derive(Debug)]
pub struct Listed<T> {
    /// Items of the page (or all items).
    pub items: Vec<T>,
    page: Option<(u64, Option<String>, Option<String>)>,
    shape: Shape,
}

impl<T> Listed<T> {
    /// The same answer with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            shape: self.shape,
        }
    }
}

impl<T: Serialize> Listed<T> {
    /// Renders the items in the declared shape, serialized straight into the body (no
    /// intermediate `Value` tree: large lists stay cheap).
    pub fn respond(self) -> Response {
        let items = self.items;
        match self.page {
            Some((count, next, previous)) => Json(Envelope {
                count,
                next,
                previous,
                results: items,
            })
            .into_response(),
            None => match self.shape {
                Shape::BareArray => Json(items).into_response(),
                Shape::Envelope => Json(Envelope {
                    count: items.len() as u64,
                    next: None,
                    previous: None,
                    results: items,
                })
                .into_response(),
            },
        }
    }
}

impl Listed<()> {
    /// Renders items already serialized, as a JSON array, by [`respond`].
    fn respond_serialized(self, mut results: Vec<u8>) -> Response {
        let json = [(header::CONTENT_TYPE, "application/json")];
        let (count, next, previous) = match (self.page, self.shape) {
            (Some(page), _) => page,
            (None, Shape::BareArray) => return (json, results).into_response(),
            (None, Shape::Envelope) => (self.items.len() as u64, None, None),
        };
        let head = Envelope::<()> {
            count,
            next,
            previous,
            results: Vec::new(),
        };
        // `{"count":..,"next":..,"previous":..,"results":` then the array and `}`.
        let mut prefix = serde_json::to_vec(&head).unwrap_or_default();
        prefix.truncate(prefix.len().saturating_sub(3));
        results.reserve(prefix.len() + 1);
        results.splice(0..0, prefix);
        results.push(b'}');
        (json, results).into_response()
    }
}

/// One row of a declaration by id, within the caller's scope, decoded; anything else is the
/// 404 `No <model> matches the given query.` (an invisible row does not reveal that it exists).
pub async fn fetch_one<T>(
    db: &Db,
    spec: &ListSpec,
    user: &CurrentUser,
    id: i64,
    decode: impl FnOnce(&Row) -> DbResult<T>,
) -> ApiResult<T> {
    let mut sql = Sql::new(format!(
        "SELECT {} FROM {} WHERE {} = $1",
        spec.columns, spec.from, spec.id_column
    ))
    .arg(id);
    if let Some(scope) = spec.scope {
        scope(user, &mut sql);
    }
    let row = db
        .fetch_optional(&sql)
        .await?
        .ok_or(ApiError::NoMatch(spec.model))?;
    Ok(decode(&row)?)
}

/// The 404 `No <model> matches the given query.` unless `table` has a row `id`: for checks
/// that need none of its columns.
pub async fn require(db: &Db, table: &str, model: &'static str, id: i64) -> ApiResult<()> {
    if crate::db::existing_ids(db, table, &[id]).await?.is_empty() {
        Err(ApiError::NoMatch(model))
    } else {
        Ok(())
    }
}

/// Runs a list request and answers it, each row decoded and serialized as it arrives: a large
/// list is never held as rows or items, only as the JSON it becomes.
pub async fn respond<T: Serialize>(
    db: &Db,
    spec: &ListSpec,
    q: &ListQuery,
    user: &CurrentUser,
    decode: impl Fn(&Row) -> DbResult<T>,
) -> ApiResult<Response> {
    let mut results = Vec::with_capacity(1024);
    results.push(b'[');
    let listed = run(db, spec, q, user, |row| {
        if results.len() > 1 {
            results.push(b',');
        }
        serde_json::to_writer(&mut results, &decode(row)?)
            .map_err(|_| crate::db::DbError::Decode("item".into(), "not serializable"))
    })
    .await?;
    results.push(b']');
    Ok(listed.respond_serialized(results))
}

/// The paginated (or enveloped) answer of a list.
#[derive(Serialize)]
struct Envelope<T> {
    count: u64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<T>,
}

/// Runs a list request against a declaration, in one statement in the common cases: the
/// foreign-key checks, the count and the page come back together (the page `LEFT JOIN`ed to a
/// one-row head of count and checks, so an empty page still answers them). Each row is
/// turned into an item by `decode` as it arrives.
pub async fn run<T>(
    db: &Db,
    spec: &ListSpec,
    q: &ListQuery,
    user: &CurrentUser,
    mut decode: impl FnMut(&Row) -> DbResult<T>,
) -> ApiResult<Listed<T>> {
    let mut sql = Sql::default();
    let filtered = where_clause(db.dialect(), spec, q, user, &mut sql)?;
    let order = order_by(spec, q);

    let page_size = q
        .get("page_size")
        .and_then(positive_int)
        .map(|n| n.min(MAX_PAGE_SIZE));
    let page_param = q.get("page").filter(|p| !p.is_empty());
    let plan = Plan {
        db,
        spec,
        order,
        from_where: format!(" FROM {}{}", spec.from, filtered.clause),
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

    let Some(size) = page_size else {
        // Unpaginated, or `page` alone: everything, in one page.
        let (head, rows) = plan.rows(sql, true, false, None, &mut decode).await?;
        filter_errors(&filtered, head.as_ref())?;
        if let Some(p) = page_param {
            if p != "last" && p.trim().parse::<u64>().ok() != Some(1) {
                return Err(ApiError::NotFound("Invalid page."));
            }
        }
        let count = rows.len() as u64;
        return Ok(Listed {
            items: rows,
            page: page_param.map(|_| (count, None, None)),
            shape: spec.shape,
        });
    };

    let requested = match page_param {
        None => Some(1),
        Some("last") => None,
        Some(p) => match p.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Some(n),
            _ => Some(0),
        },
    };
    let (count, page, rows) = match requested {
        Some(n) if n >= 1 => {
            let offset = (n - 1).saturating_mul(size);
            let (head, rows) = plan
                .rows(sql, true, true, Some((size, offset)), &mut decode)
                .await?;
            filter_errors(&filtered, head.as_ref())?;
            (total_of(head.as_ref())?, n, rows)
        }
        _ => {
            // `last` (or a bad page number, reported after the filters): count first.
            let mut head_sql = sql.clone();
            let mut cols = vec![format!("(SELECT COUNT(*){}) AS __total", plan.from_where)];
            cols.extend(plan.checks.iter().cloned());
            head_sql.push(&format!("SELECT {}", cols.join(", ")));
            let head = db.fetch_optional(&head_sql).await?;
            filter_errors(&filtered, head.as_ref())?;
            let count = total_of(head.as_ref())?;
            if requested == Some(0) {
                return Err(ApiError::NotFound("Invalid page."));
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
    if page > pages {
        return Err(ApiError::NotFound("Invalid page."));
    }
    let next = (page < pages).then(|| q.url_with_page(Some(page + 1)));
    let previous = match page {
        1 => None,
        2 => Some(q.url_with_page(None)),
        n => Some(q.url_with_page(Some(n - 1))),
    };
    Ok(Listed {
        items: rows,
        page: Some((count, next, previous)),
        shape: spec.shape,
    })
}

/// The `__total` column of a head row.
fn total_of(head: Option<&Row>) -> ApiResult<u64> {
    let n = match head {
        Some(r) => r.opt_int("__total")?.unwrap_or(0),
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// What every statement of one list request shares.
struct Plan<'a> {
    db: &'a Db,
    spec: &'a ListSpec,
    order: Vec<(&'static str, &'static str)>,
    /// ` FROM ... WHERE ...`.
    from_where: String,
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
    ) -> ApiResult<(Option<Row>, Vec<T>)> {
        let (spec, from_where) = (self.spec, &self.from_where);
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
        let mut head: Vec<String> = Vec::new();
        if count {
            head.push(format!("(SELECT COUNT(*){from_where}) AS __total"));
        }
        if checks {
            head.extend(self.checks.iter().cloned());
        }
        let mut items = Vec::new();
        if head.is_empty() {
            sql.push(&format!(
                "SELECT {}{from_where} ORDER BY {}{limit_sql}",
                spec.columns,
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
        let keys: Vec<String> = self
            .order
            .iter()
            .enumerate()
            .map(|(i, (expr, _))| format!(", {expr} AS __o{i}"))
            .chain([format!(", {} AS __id", spec.id_column)])
            .collect();
        sql.push(&format!(
            "SELECT h.*, r.* FROM (SELECT {}) h LEFT JOIN (SELECT {}{}{from_where} ORDER BY {}{limit_sql}) r \
             ON 1=1 ORDER BY {}",
            head.join(", "),
            spec.columns,
            keys.concat(),
            order_sql(""),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_search_like_drf() {
        assert_eq!(search_terms("Rack 1"), vec!["Rack", "1"]);
        assert_eq!(search_terms("a,b  c"), vec!["a", "b", "c"]);
        assert_eq!(search_terms("\"Rack 1\" dell"), vec!["Rack 1", "dell"]);
        assert!(search_terms("  ").is_empty());
    }

    #[test]
    fn next_urls_are_sorted_and_drop_page_for_first() {
        let q = ListQuery {
            params: vec![
                ("page".into(), "2".into()),
                ("page_size".into(), "5".into()),
                ("ordering".into(), "-name".into()),
            ],
            base_url: "http://h/api/server/".into(),
        };
        assert_eq!(
            q.url_with_page(Some(3)),
            "http://h/api/server/?ordering=-name&page=3&page_size=5"
        );
        assert_eq!(
            q.url_with_page(None),
            "http://h/api/server/?ordering=-name&page_size=5"
        );
    }
}
