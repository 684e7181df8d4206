//! The web half of the list engine: reading a list request from the query string, turning the
//! engine's errors into API errors and streaming the rows into the JSON body. The declarations
//! ([`ListSpec`]) and the SQL live in [`crate::db::list`].

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
use crate::db::list::{ListError, ListRequest, Listing, PageParam};
use crate::db::{Db, DbResult, Row};

pub use crate::db::list::Shape;

/// One filter parameter of a [`ListSpec`].
pub use crate::db::list::Filter;
/// How a [`Filter`] is matched and validated.
pub use crate::db::list::FilterKind;
/// A resource's list declaration, scoped by the authenticated caller.
pub use crate::db::list::ListSpec;
/// Appends an ` AND ...` condition restricting rows to what the caller may see.
pub use crate::db::list::ScopeFn;

/// Largest page a client may ask for; larger values are clamped.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// Most terms one `search` value may hold (each term is one more condition on every search
/// field).
pub const MAX_SEARCH_TERMS: usize = 20;

/// The query string and absolute URL of a list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Query parameters in request order.
    pub params: Vec<(String, String)>,
    /// `scheme://host/path` of the request, for `next`/`previous`.
    pub base_url: String,
    /// The ordering used when the request names none or an empty one (not shown in
    /// `next`/`previous`).
    pub default_ordering: Option<&'static str>,
}

impl ListQuery {
    /// The same query, ordered by `ordering` when it names no ordering itself.
    pub fn default_ordering(mut self, ordering: &'static str) -> ListQuery {
        self.default_ordering = Some(ordering);
        self
    }

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
        // Django's form fields refuse NUL (PostgreSQL cannot store or compare it in text).
        if let Some((k, _)) = params.iter().find(|(_, v)| v.contains('\0')) {
            return Err(ApiError::field(k, "Null characters are not allowed."));
        }
        let (scheme, host) = request_origin(parts, state);
        Ok(ListQuery {
            params,
            base_url: format!("{scheme}://{host}{}", parts.uri.path()),
            default_ordering: None,
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

impl ListQuery {
    /// The engine's view of the request: `search`, the declaration's filters, `ordering`,
    /// `page` and `page_size` (clamped to [`MAX_PAGE_SIZE`]).
    fn request(&self, spec: &ListSpec) -> ApiResult<ListRequest<'_>> {
        let search = match self.get("search") {
            Some(s) if s.contains('\0') => {
                return Err(ApiError::field(
                    "search",
                    "Null characters are not allowed.",
                ))
            }
            Some(s) => {
                let mut terms = search_terms(s);
                let mut seen = std::collections::HashSet::new();
                terms.retain(|t| seen.insert(t.clone()));
                if terms.len() > MAX_SEARCH_TERMS {
                    return Err(ApiError::field(
                        "search",
                        format!("Ensure this field has no more than {MAX_SEARCH_TERMS} terms."),
                    ));
                }
                terms
            }
            None => Vec::new(),
        };
        let page = match self.get("page").filter(|p| !p.is_empty()) {
            None => PageParam::Absent,
            Some("last") => PageParam::Last,
            Some(p) => match p.trim().parse::<u64>() {
                Ok(n) if n >= 1 => PageParam::Number(n),
                _ => PageParam::Invalid,
            },
        };
        Ok(ListRequest {
            search,
            filters: spec.filters.iter().map(|f| self.get(f.param)).collect(),
            // An empty `ordering` is none, as for DRF's OrderingFilter.
            ordering: self
                .get("ordering")
                .filter(|o| !o.trim().is_empty())
                .or(self.default_ordering),
            page,
            page_size: self
                .get("page_size")
                .and_then(positive_int)
                .map(|n| n.min(MAX_PAGE_SIZE)),
        })
    }
}

/// The API error of a list request that has no answer.
fn api_error(e: ListError) -> ApiError {
    match e {
        ListError::Invalid(found) => {
            let mut errors = super::validate::Errors::default();
            for (param, msg) in found {
                errors.add(param, msg);
            }
            match errors.check() {
                Err(e) => e,
                // Never empty; answered as an empty validation error all the same.
                Ok(()) => ApiError::Validation(Default::default()),
            }
        }
        ListError::InvalidPage => ApiError::NotFound("Invalid page."),
        ListError::Db(e) => e.into(),
    }
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
    crate::db::list::fetch_one(db, spec, &user.viewer().caller(), id, decode)
        .await?
        .ok_or(ApiError::NoMatch(spec.model))
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

/// Runs a list request against a declaration (see [`crate::db::list::run`]), each row turned
/// into an item by `decode` as it arrives, and works out the `next`/`previous` links.
pub async fn run<T>(
    db: &Db,
    spec: &ListSpec,
    q: &ListQuery,
    user: &CurrentUser,
    decode: impl FnMut(&Row) -> DbResult<T>,
) -> ApiResult<Listed<T>> {
    let request = q.request(spec)?;
    let Listing { items, page } =
        crate::db::list::run(db, spec, &request, &user.viewer().caller(), decode)
            .await
            .map_err(api_error)?;
    let page = page.map(|p| {
        let next = (p.number < p.pages).then(|| q.url_with_page(Some(p.number + 1)));
        let previous = match p.number {
            1 => None,
            2 => Some(q.url_with_page(None)),
            n => Some(q.url_with_page(Some(n - 1))),
        };
        (p.count, next, previous)
    });
    Ok(Listed {
        items,
        page,
        shape: spec.shape,
    })
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
            default_ordering: None,
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
