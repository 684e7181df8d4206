//! Test harness: a real server on a free loopback port, on SQLite or on a fresh PostgreSQL
//! database, driven through HTTP.
#![allow(dead_code)]

use std::time::Duration;

use clap::Parser;
use mojo_server::app::App;
use mojo_server::config::Cli;
use mojo_server::http::AppState;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Which storage backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The admin password every test server starts with.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// A running server.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub token: String,
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pg_database: Option<String>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Base URL of the PostgreSQL server tests create their databases on.
pub fn pg_base() -> String {
    std::env::var("MOJO_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub async fn create_pg_database() -> String {
    use sqlx::Connection;
    let name = format!("mojo_t_{}", hex_id());
    let mut conn = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base()))
        .await
        .expect("PostgreSQL must run on 127.0.0.1:5432 (see README)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    name
}

pub async fn drop_pg_database(name: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&format!("{}/postgres", pg_base())).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

fn hex_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}{:x}{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Options for [`spawn_with`].
#[derive(Default, Clone)]
pub struct Opts {
    /// Extra CLI flags.
    pub args: Vec<String>,
    /// Serve HTTPS.
    pub tls: bool,
}

/// A server with default test settings.
pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, Opts::default()).await
}

/// A server with extra flags.
pub async fn spawn_with(backend: Backend, opts: Opts) -> TestApp {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let pg_database = match backend {
        Backend::Postgres => Some(create_pg_database().await),
        Backend::Sqlite => None,
    };
    let mut args: Vec<String> = vec![
        "mojo-server".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.path().display().to_string(),
        "--tls".into(),
        if opts.tls { "on" } else { "off" }.into(),
        "--discovery-allowed-networks".into(),
        "127.0.0.0/8".into(),
        "--shutdown-grace-secs".into(),
        "5".into(),
    ];
    if let Some(db) = &pg_database {
        args.push("--database-url".into());
        args.push(format!("{}/{db}", pg_base()));
    }
    args.extend(opts.args.iter().cloned());
    let mut config = Cli::parse_from(args).config;
    config.injected.admin_password = Some(ADMIN_PASSWORD.into());
    config.injected.secret_key = Some("test-jwt-secret-0123456789abcdef".into());
    config.injected.credential_key =
        Some("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into());
    let app = App::build(config).await.expect("app builds");
    let addr = app.local_addr().expect("bound");
    let state = app.state.clone();
    let server = tokio::spawn(app.run());
    let scheme = if opts.tls { "https" } else { "http" };
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let mut t = TestApp {
        base: format!("{scheme}://{addr}"),
        client,
        state,
        token: String::new(),
        backend,
        data_dir,
        pg_database,
        server,
    };
    t.token = t.login("admin", ADMIN_PASSWORD).await;
    t
}

impl TestApp {
    /// The access token of a user.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/token/",
                Some(serde_json::json!({"username": username, "password": password})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        body["access"].as_str().expect("access").to_string()
    }

    /// A request with an optional JSON body and bearer token; returns status and JSON body
    /// (`Value::Null` for an empty body, a string for a non-JSON body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// GET as admin.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, Some(&self.token.clone()))
            .await
    }

    /// POST JSON as admin.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), Some(&self.token.clone()))
            .await
    }

    /// PUT JSON as admin.
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body), Some(&self.token.clone()))
            .await
    }

    /// PATCH JSON as admin.
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body), Some(&self.token.clone()))
            .await
    }

    /// DELETE as admin.
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None, Some(&self.token.clone()))
            .await
    }

    /// A raw request builder with the admin token.
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    /// Creates a non-superuser in the given groups; returns (id, token).
    pub async fn user(&self, username: &str, groups: &[i64]) -> (i64, String) {
        let (s, b) = self
            .post("/api/users/", serde_json::json!({"username": username, "password": "pw-of-a-user", "groups": groups}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let id = b["id"].as_i64().expect("id");
        (id, self.login(username, "pw-of-a-user").await)
    }

    /// Stops the server and drops its database.
    pub async fn finish(self) {
        self.state.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.server).await;
        if let Some(db) = &self.pg_database {
            drop_pg_database(db).await;
        }
    }
}

/// Runs a test body on both backends: `both!(name, |app| async move { ... });`
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = common::spawn(common::Backend::Sqlite).await;
                let f = $body;
                let app = f(app).await;
                common::TestApp::finish(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = common::spawn(common::Backend::Postgres).await;
                let f = $body;
                let app = f(app).await;
                common::TestApp::finish(app).await;
            }
        }
    };
}
