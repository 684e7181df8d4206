//! The route registry: every API route is declared once with its handler and its operation
//! metadata, so the router, the trailing-slash rule and the OpenAPI schema come from one list.

use std::borrow::Cow;

use axum::routing::MethodRouter;
use axum::Router;
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use super::list::ListSpec;
use super::AppState;

/// Collected component schemas: (name, schema).
pub type Components = Vec<(String, RefOr<Schema>)>;

/// Registers the component schema of `T` (and what it references) and returns its name.
pub type SchemaFn = fn(&mut Components) -> String;

fn component<T: ToSchema>(out: &mut Components) -> String {
    let name: Cow<'static, str> = T::name();
    out.push((name.to_string(), T::schema()));
    T::schemas(out);
    name.to_string()
}

/// What an operation answers on success.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// 200 with an object.
    Ok(SchemaFn),
    /// 201 with an object.
    Created(SchemaFn),
    /// 202 with an object (the job or resource to poll).
    Accepted(SchemaFn),
    /// 200 with a list run by the list engine.
    List(SchemaFn, &'static ListSpec),
    /// 200 with a plain array (no list parameters).
    Array(SchemaFn),
    /// 204 with no body.
    NoContent,
    /// 200 with a free-form object.
    Any,
    /// 200 with a file (`application/octet-stream`).
    Binary,
}

/// Metadata of one operation, in drf-spectacular's terms.
#[derive(Debug, Clone)]
pub struct Op {
    /// HTTP method in upper case.
    pub method: &'static str,
    /// Path with `{id}` parameters; filled in by [`Api::route`].
    pub path: &'static str,
    /// drf-spectacular style operationId (`pool_list`, `pool_assign_servers_create`).
    pub operation_id: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Request body component, if any.
    pub body: Option<SchemaFn>,
    /// The body is multipart (uploads).
    pub multipart: bool,
    /// Success answer.
    pub reply: Reply,
    /// No authentication needed (token endpoints).
    pub public: bool,
    /// Integer query parameters beyond a list's: (name, description).
    pub query: &'static [(&'static str, &'static str)],
}

impl Op {
    fn new(method: &'static str, operation_id: &'static str, summary: &'static str) -> Op {
        Op {
            method,
            path: "",
            operation_id,
            summary,
            body: None,
            multipart: false,
            reply: Reply::Any,
            public: false,
            query: &[],
        }
    }

    /// A GET operation.
    pub fn get(operation_id: &'static str, summary: &'static str) -> Op {
        Op::new("GET", operation_id, summary)
    }
    /// A POST operation.
    pub fn post(operation_id: &'static str, summary: &'static str) -> Op {
        Op::new("POST", operation_id, summary)
    }
    /// A PUT operation.
    pub fn put(operation_id: &'static str, summary: &'static str) -> Op {
        Op::new("PUT", operation_id, summary)
    }
    /// A PATCH operation.
    pub fn patch(operation_id: &'static str, summary: &'static str) -> Op {
        Op::new("PATCH", operation_id, summary)
    }
    /// A DELETE operation (204).
    pub fn delete(operation_id: &'static str, summary: &'static str) -> Op {
        Op::new("DELETE", operation_id, summary).no_content()
    }

    /// Request body of type `T`.
    pub fn body<T: ToSchema>(mut self) -> Op {
        self.body = Some(component::<T>);
        self
    }
    /// Multipart request body of type `T` (file uploads).
    pub fn multipart<T: ToSchema>(mut self) -> Op {
        self.body = Some(component::<T>);
        self.multipart = true;
        self
    }
    /// 200 with a `T`.
    pub fn ok<T: ToSchema>(mut self) -> Op {
        self.reply = Reply::Ok(component::<T>);
        self
    }
    /// 201 with a `T`.
    pub fn created<T: ToSchema>(mut self) -> Op {
        self.reply = Reply::Created(component::<T>);
        self
    }
    /// 202 with a `T`.
    pub fn accepted<T: ToSchema>(mut self) -> Op {
        self.reply = Reply::Accepted(component::<T>);
        self
    }
    /// 200 with a list of `T` run by the list engine with `spec`.
    pub fn list<T: ToSchema>(mut self, spec: &'static ListSpec) -> Op {
        self.reply = Reply::List(component::<T>, spec);
        self
    }
    /// 200 with a plain array of `T`.
    pub fn array<T: ToSchema>(mut self) -> Op {
        self.reply = Reply::Array(component::<T>);
        self
    }
    /// 200 with a file.
    pub fn binary(mut self) -> Op {
        self.reply = Reply::Binary;
        self
    }
    /// Integer query parameters: (name, description).
    pub fn query(mut self, params: &'static [(&'static str, &'static str)]) -> Op {
        self.query = params;
        self
    }
    /// 204.
    pub fn no_content(mut self) -> Op {
        self.reply = Reply::NoContent;
        self
    }
    /// No authentication required.
    pub fn public(mut self) -> Op {
        self.public = true;
        self
    }
}

/// Routes plus their operation metadata.
pub struct Api {
    router: Router<AppState>,
    /// Every operation, in declaration order.
    pub ops: Vec<Op>,
    /// Every route path, for the trailing-slash rule.
    pub paths: Vec<&'static str>,
}

impl Default for Api {
    fn default() -> Self {
        Api::new()
    }
}

impl Api {
    /// No routes yet.
    pub fn new() -> Api {
        Api {
            router: Router::new(),
            ops: Vec::new(),
            paths: Vec::new(),
        }
    }

    /// Adds a route (the path must end in `/`) with its operations' metadata.
    pub fn route(
        mut self,
        path: &'static str,
        handlers: MethodRouter<AppState>,
        ops: impl IntoIterator<Item = Op>,
    ) -> Api {
        debug_assert!(path.ends_with('/'), "route {path} must end in /");
        self.router = self.router.route(path, handlers);
        self.paths.push(path);
        self.ops.extend(ops.into_iter().map(|mut op| {
            op.path = path;
            op
        }));
        self
    }

    /// Adds every route of another registry.
    pub fn merge(mut self, other: Api) -> Api {
        self.router = self.router.merge(other.router);
        self.ops.extend(other.ops);
        self.paths.extend(other.paths);
        self
    }

    /// The router.
    pub fn into_router(self) -> (Router<AppState>, Vec<Op>, Vec<&'static str>) {
        (self.router, self.ops, self.paths)
    }
}

/// True when `path` matches a route pattern (`{param}` matches one non-empty segment).
pub fn matches_pattern(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut q = path.split('/');
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) => {
                let param = a.starts_with('{') && a.ends_with('}');
                if param {
                    if b.is_empty() {
                        return false;
                    }
                } else if a != b {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches_pattern;

    #[test]
    fn patterns_match_segments() {
        assert!(matches_pattern("/api/pool/{id}/", "/api/pool/5/"));
        assert!(matches_pattern("/api/pool/{id}/", "/api/pool/abc/"));
        assert!(!matches_pattern("/api/pool/{id}/", "/api/pool//"));
        assert!(!matches_pattern("/api/pool/", "/api/pool/5/"));
    }
}
