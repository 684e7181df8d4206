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
use crate::db::{Db, Dialect, Row, Sql};

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

/// The validated ordering: SQL `ORDER BY` text from the `ordering` parameter.
fn order_by(spec: &ListSpec, q: &ListQuery) -> String {
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
            parts.push(if desc {
                format!("{expr} DESC NULLS FIRST")
            } else {
                format!("{expr} ASC NULLS LAST")
            });
        }
    }
    if !has_id {
        parts.push(format!("{} ASC", spec.id_column));
    }
    parts.join(", ")
}

const FK_INVALID: &str = "Select a valid choice. That choice is not one of the available choices.";

/// Builds the WHERE clause (scope, search and filters) into `sql`.
async fn where_clause(
    db: &Db,
    spec: &ListSpec,
    q: &ListQuery,
    user: &CurrentUser,
    sql: &mut Sql,
) -> ApiResult<()> {
    sql.push(" WHERE 1=1");
    if let Some(scope) = spec.scope {
        scope(user, sql);
    }
    let dialect: Dialect = db.dialect();
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
                .map(|(_, expr)| dialect.contains_sql(expr, &p))
                .collect();
            sql.push(&format!(" AND ({})", ors.join(" OR ")));
        }
    }
    let mut errors = super::validate::Errors::default();
    for f in spec.filters {
        let Some(raw) = q.get(f.param) else { continue };
        if raw.is_empty() {
            continue;
        }
        if raw.contains('\0') {
            errors.add(f.param, "Null characters are not allowed.");
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
                    errors.add(
                        f.param,
                        format!(
                            "Select a valid choice. {raw} is not one of the available choices."
                        ),
                    );
                }
            }
            FilterKind::Number => match raw.trim().parse::<i64>() {
                Ok(n) => {
                    let p = sql.bind_later(n);
                    sql.push(&format!(" AND {} = {p}", f.column));
                }
                Err(_) => errors.add(f.param, "Enter a number."),
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
                    errors.add(f.param, FK_INVALID);
                    continue;
                };
                let mut check = Sql::new(format!(
                    "SELECT COUNT(*) FROM {table} WHERE {table}.id = $1"
                ))
                .arg(id);
                if let Some(vis) = visible {
                    vis(user, &mut check);
                }
                if db.fetch_int(&check).await? == 0 {
                    errors.add(f.param, FK_INVALID);
                    continue;
                }
                let p = sql.bind_later(id);
                sql.push(&format!(" AND {} = {p}", f.column));
            }
        }
    }
    errors.check()
}

/// One answer of the list engine: rows plus the pagination facts, if paginated.
#[derive(Debug)]
pub struct Listed {
    /// Rows of the page (or all rows).
    pub rows: Vec<Row>,
    page: Option<(u64, Option<String>, Option<String>)>,
    shape: Shape,
}

impl Listed {
    /// Renders items (already converted from `rows`) in the declared shape. Items are
    /// serialized straight into the body (no intermediate `Value` tree: large lists stay cheap).
    pub fn respond<T: Serialize>(self, items: Vec<T>) -> Response {
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

/// The paginated (or enveloped) answer of a list.
#[derive(Serialize)]
struct Envelope<T> {
    count: u64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<T>,
}

/// Runs a list request against a declaration.
pub async fn run(db: &Db, spec: &ListSpec, q: &ListQuery, user: &CurrentUser) -> ApiResult<Listed> {
    let mut filtered = Sql::new(format!(" FROM {}", spec.from));
    where_clause(db, spec, q, user, &mut filtered).await?;
    let order = order_by(spec, q);

    let page_size = q
        .get("page_size")
        .and_then(positive_int)
        .map(|n| n.min(MAX_PAGE_SIZE));
    let page_param = q.get("page").filter(|p| !p.is_empty());
    if page_size.is_none() && page_param.is_none() {
        let mut sql = Sql::new(format!("SELECT {}", spec.columns));
        sql.push(filtered.text());
        let sql = with_args(sql, &filtered);
        let mut sql = sql;
        sql.push(&format!(" ORDER BY {order}"));
        let rows = db.fetch_all(&sql).await?;
        return Ok(Listed {
            rows,
            page: None,
            shape: spec.shape,
        });
    }

    let mut count_sql = Sql::new("SELECT COUNT(*)");
    count_sql.push(filtered.text());
    let count = db.fetch_int(&with_args(count_sql, &filtered)).await?;
    let count = u64::try_from(count).unwrap_or(0);
    // `page` alone pages through everything in one page (no default page size is configured).
    let size = page_size.unwrap_or_else(|| count.max(1));
    let pages = count.div_ceil(size).max(1);
    let page = match page_param {
        None => 1,
        Some("last") => pages,
        Some(p) => match p.trim().parse::<u64>() {
            Ok(n) if n >= 1 && n <= pages => n,
            _ => return Err(ApiError::NotFound("Invalid page.")),
        },
    };
    let mut sql = Sql::new(format!("SELECT {}", spec.columns));
    sql.push(filtered.text());
    let mut sql = with_args(sql, &filtered);
    let limit = sql.bind_later(i64::try_from(size).unwrap_or(i64::MAX));
    let offset = sql.bind_later(i64::try_from((page - 1) * size).unwrap_or(0));
    sql.push(&format!(" ORDER BY {order} LIMIT {limit} OFFSET {offset}"));
    let rows = db.fetch_all(&sql).await?;
    let next = (page < pages).then(|| q.url_with_page(Some(page + 1)));
    let previous = match page {
        1 => None,
        2 => Some(q.url_with_page(None)),
        n => Some(q.url_with_page(Some(n - 1))),
    };
    Ok(Listed {
        rows,
        page: Some((count, next, previous)),
        shape: spec.shape,
    })
}

/// `sql` with the arguments of `from` appended (their placeholders are already in the text).
fn with_args(sql: Sql, from: &Sql) -> Sql {
    from.args().iter().cloned().fold(sql, Sql::arg)
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
