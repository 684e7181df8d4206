//! An adversary in front of a lab BMC, for tests of what the server does when a BMC answers
//! oddly or hostilely. It is not a stand-in for a BMC: every request it does not tamper with
//! goes to the real emulated BMC behind it, and it only rewrites or refuses what the test names.
//! A `Spy` listener counts connections to an address no request should ever reach.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// What the adversary does to the traffic.
#[derive(Clone, Debug)]
pub enum Tamper {
    /// Service root without `SessionService` / `Links.Sessions`; any session POST answers 401
    /// (a BMC that only speaks Basic auth).
    NoSessions,
    /// Session `Location` and Systems member `@odata.id`s point at `spy` through references the
    /// URL parser turns into network-path references.
    EvilReferences {
        /// `host:port` of the spy.
        spy: String,
    },
    /// ComputerSystems report placeholder identities (the well-known dummy UUID, an unfilled
    /// serial number), as many boards do.
    PlaceholderIdentity,
}

struct Shared {
    upstream: String,
    tamper: Tamper,
    http: reqwest::Client,
    session_posts: AtomicUsize,
}

/// A running adversary.
pub struct Adversary {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Adversary {
    /// Listens on `listen` (plain HTTP) and forwards to `upstream` (`http://ip:port`).
    pub async fn start(listen: &str, upstream: &str, tamper: Tamper) -> Adversary {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            tamper,
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            session_posts: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Adversary { addr, shared, task }
    }

    /// Session POSTs that reached the adversary.
    pub fn session_posts(&self) -> usize {
        self.shared.session_posts.load(Ordering::SeqCst)
    }
}

impl Drop for Adversary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let is_session_post = method == Method::POST
        && path
            .trim_end_matches('/')
            .ends_with("/SessionService/Sessions");
    if is_session_post {
        s.session_posts.fetch_add(1, Ordering::SeqCst);
        if matches!(s.tamper, Tamper::NoSessions) {
            return (StatusCode::UNAUTHORIZED, "{}").into_response();
        }
    }
    let mut req = s
        .http
        .request(method.clone(), format!("{}{}", s.upstream, path));
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let resp = match req.body(body.to_vec()).send().await {
        Ok(r) => r,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = resp.status();
    let mut out_headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if !matches!(
            k.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            out_headers.insert(k.clone(), v.clone());
        }
    }
    let mut bytes = resp.bytes().await.unwrap_or_default().to_vec();
    let bare = path.split('?').next().unwrap_or("").trim_end_matches('/');
    match &s.tamper {
        Tamper::NoSessions if bare == "/redfish/v1" => {
            if let Ok(mut root) = serde_json::from_slice::<Value>(&bytes) {
                if let Some(o) = root.as_object_mut() {
                    o.remove("SessionService");
                    if let Some(l) = o.get_mut("Links").and_then(Value::as_object_mut) {
                        l.remove("Sessions");
                    }
                }
                bytes = serde_json::to_vec(&root).unwrap();
            }
        }
        Tamper::EvilReferences { spy } => {
            if is_session_post {
                if let Some(loc) = out_headers.get("location").cloned() {
                    let loc = loc.to_str().unwrap_or("").to_string();
                    let p = url_path(&loc);
                    out_headers.insert(
                        "location",
                        HeaderValue::from_str(&format!("/\\{spy}{p}")).unwrap(),
                    );
                }
            }
            if bare == "/redfish/v1/Systems" {
                if let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) {
                    if let Some(members) = doc.get_mut("Members").and_then(Value::as_array_mut) {
                        for m in members {
                            let id = m["@odata.id"].as_str().unwrap_or("").to_string();
                            m["@odata.id"] = Value::String(format!("/\t/{spy}{id}"));
                        }
                    }
                    bytes = serde_json::to_vec(&doc).unwrap();
                }
            }
        }
        Tamper::PlaceholderIdentity if bare.starts_with("/redfish/v1/Systems/") => {
            if let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) {
                if let Some(o) = doc.as_object_mut() {
                    if o.contains_key("UUID") {
                        o.insert(
                            "UUID".into(),
                            Value::String("03000200-0400-0500-0006-000700080009".into()),
                        );
                    }
                    if o.contains_key("SerialNumber") {
                        o.insert(
                            "SerialNumber".into(),
                            Value::String("To be filled by O.E.M.".into()),
                        );
                    }
                }
                bytes = serde_json::to_vec(&doc).unwrap();
            }
        }
        _ => {}
    }
    let mut r = (status, bytes).into_response();
    *r.headers_mut() = out_headers;
    r
}

fn url_path(loc: &str) -> String {
    match url::Url::parse(loc) {
        Ok(u) => u.path().to_string(),
        Err(_) => loc.to_string(),
    }
}

/// Counts every connection made to its address (and answers nothing useful).
pub struct Spy {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Spy {
    pub async fn start(listen: &str) -> Spy {
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(sock);
            }
        });
        Spy { addr, hits, task }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Spy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
