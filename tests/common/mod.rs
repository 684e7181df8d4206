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
    /// The full command line the server was started with (reused by [`TestApp::restart`]).
    argv: Vec<String>,
    tls: bool,
    pg_database: Option<PgDatabase>,
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

/// An app built but never run: no listener served, no background workers, so the test is the
/// only worker (for tests that drive the job queue themselves).
pub struct BuiltApp {
    pub state: AppState,
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pg_database: Option<PgDatabase>,
}

impl BuiltApp {
    /// Closes the pool and drops the database.
    pub async fn finish(mut self) {
        self.state.db.close().await;
        if let Some(db) = self.pg_database.take() {
            db.drop_now().await;
        }
    }
}

/// A fresh PostgreSQL database, dropped when this guard goes out of scope (also when the test
/// panics); [`PgDatabase::drop_now`] drops it from async code instead.
pub struct PgDatabase {
    name: String,
    dropped: bool,
}

impl PgDatabase {
    /// Creates a fresh database.
    pub async fn create() -> PgDatabase {
        PgDatabase {
            name: create_pg_database().await,
            dropped: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection URL of the database.
    pub fn url(&self) -> String {
        format!("{}/{}", pg_base(), self.name)
    }

    /// Drops the database now (the explicit, async path).
    pub async fn drop_now(mut self) {
        drop_pg_database(&self.name).await;
        self.dropped = true;
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop may run inside a tokio runtime (or while unwinding from a panic in one): do the
        // async drop on a thread of its own with its own small runtime, and wait for it.
        let name = std::mem::take(&mut self.name);
        let done = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(30), drop_pg_database(&name))
                        .await;
                });
            }
        });
        let _ = done.join();
    }
}

/// Installs a tracing subscriber once when `TEST_LOG` is set: `TEST_LOG=1` logs at `debug`,
/// any other value is an env-filter (`TEST_LOG=info`, `TEST_LOG=mojo_server=trace,sqlx=warn`).
/// Without it tests are quiet. Output goes through the test writer (shown for failing tests, or
/// with `--nocapture`).
pub fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(value) = std::env::var("TEST_LOG") else {
            return;
        };
        let value = value.trim();
        if value.is_empty() || value == "0" {
            return;
        }
        let filter = if value == "1" { "debug" } else { value };
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .try_init();
    });
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
    TestApp::builder(backend).spawn().await
}

/// A server with extra flags.
pub async fn spawn_with(backend: Backend, opts: Opts) -> TestApp {
    TestApp::builder(backend)
        .args(opts.args)
        .tls(opts.tls)
        .spawn()
        .await
}

/// Builds a test app: `TestApp::builder(backend).arg(..).tls(true).spawn()` or `.build_only()`.
#[must_use]
pub struct TestAppBuilder {
    backend: Backend,
    args: Vec<String>,
    tls: bool,
    /// A PostgreSQL database another test app owns (a second replica on the same database).
    shared_database: Option<String>,
    /// `--discovery-allowed-networks` (default `127.0.0.0/8`).
    allowed_networks: Option<String>,
}

impl TestAppBuilder {
    /// One extra CLI flag or value.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Extra CLI flags and values.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Where scan ranges may point, instead of all of 127.0.0.0/8 (a test whose requests can
    /// start scans of arbitrary addresses keeps them inside its own lab block).
    pub fn allowed_networks(mut self, networks: impl Into<String>) -> Self {
        self.allowed_networks = Some(networks.into());
        self
    }

    /// Serve HTTPS (self-signed).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Runs on the PostgreSQL database of `other` instead of a fresh one (a second replica);
    /// `other` keeps owning it (finish this app first).
    pub fn same_database_as(mut self, other: &TestApp) -> Self {
        self.shared_database = other.pg_database.as_ref().map(PgDatabase::url);
        self
    }

    /// The data dir, the database and the full command line.
    async fn prepare(&self) -> (tempfile::TempDir, Option<PgDatabase>, Vec<String>) {
        init_test_log();
        let data_dir = tempfile::tempdir().expect("tempdir");
        let pg_database = match (self.backend, &self.shared_database) {
            (Backend::Postgres, None) => Some(PgDatabase::create().await),
            _ => None,
        };
        let mut argv: Vec<String> = vec![
            "mojo-server".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data_dir.path().display().to_string(),
            "--tls".into(),
            if self.tls { "on" } else { "off" }.into(),
            "--discovery-allowed-networks".into(),
            self.allowed_networks
                .clone()
                .unwrap_or_else(|| "127.0.0.0/8".into()),
            "--shutdown-grace-secs".into(),
            "5".into(),
        ];
        if let Some(url) = pg_database
            .as_ref()
            .map(PgDatabase::url)
            .or_else(|| self.shared_database.clone())
        {
            argv.push("--database-url".into());
            argv.push(url);
        }
        argv.extend(self.args.iter().cloned());
        (data_dir, pg_database, argv)
    }

    /// An app built but not run (see [`BuiltApp`]).
    pub async fn build_only(self) -> BuiltApp {
        let (data_dir, pg_database, argv) = self.prepare().await;
        let app = build_app(&argv).await;
        BuiltApp {
            state: app.state.clone(),
            backend: self.backend,
            data_dir,
            pg_database,
        }
    }

    /// A running server, logged in as admin.
    pub async fn spawn(self) -> TestApp {
        let (data_dir, pg_database, argv) = self.prepare().await;
        let (base, state, server) = start_server(&argv, self.tls).await;
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client");
        let mut t = TestApp {
            base,
            client,
            state,
            token: String::new(),
            backend: self.backend,
            data_dir,
            argv,
            tls: self.tls,
            pg_database,
            server,
        };
        t.token = t.login("admin", ADMIN_PASSWORD).await;
        t
    }
}

/// `App::build` from a command line, with the test secrets injected.
async fn build_app(argv: &[String]) -> App {
    let mut config = Cli::parse_from(argv).config;
    config.injected.admin_password = Some(ADMIN_PASSWORD.into());
    config.injected.secret_key = Some("test-jwt-secret-0123456789abcdef".into());
    config.injected.credential_key =
        Some("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into());
    App::build(config).await.expect("app builds")
}

/// Builds and runs a server; returns its base URL, state and task.
async fn start_server(
    argv: &[String],
    tls: bool,
) -> (
    String,
    AppState,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let app = build_app(argv).await;
    let addr = app.local_addr().expect("bound");
    let state = app.state.clone();
    let server = tokio::spawn(app.run());
    let scheme = if tls { "https" } else { "http" };
    (format!("{scheme}://{addr}"), state, server)
}

impl TestApp {
    /// A builder for a test app on `backend`.
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            args: Vec::new(),
            tls: false,
            shared_database: None,
            allowed_networks: None,
        }
    }

    /// Stops the server (graceful shutdown) and starts a new one on the same database and data
    /// dir with the same settings. The new server listens on a new port (`base` is updated) and
    /// has a new `state`; `token` is kept (same signing key).
    pub async fn restart(&mut self) {
        self.stop().await;
        let (base, state, server) = start_server(&self.argv, self.tls).await;
        self.base = base;
        self.state = state;
        self.server = server;
    }

    /// Like [`TestApp::restart`], with `flag` set to `value` (replaced when the command line
    /// has it, else added): a setting changed between two runs on the same database.
    pub async fn restart_with(&mut self, flag: &str, value: &str) {
        match self.argv.iter().position(|a| a == flag) {
            Some(i) if i + 1 < self.argv.len() => self.argv[i + 1] = value.to_string(),
            _ => {
                self.argv.push(flag.to_string());
                self.argv.push(value.to_string());
            }
        }
        self.restart().await;
    }

    /// Cancels the server and waits (at most 15 s) for it to end.
    async fn stop(&mut self) {
        self.state.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), &mut self.server).await;
        // Past the timeout the old server must not keep running next to a new one.
        self.server.abort();
    }

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

    /// Posts a multipart form with the admin token, asserts 201 and returns the new row's id.
    pub async fn upload_created(&self, path: &str, form: reqwest::multipart::Form) -> i64 {
        let resp = self
            .req(Method::POST, path)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_default();
        assert_eq!(status, StatusCode::CREATED, "{path}: {v}");
        v["id"].as_i64().unwrap()
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
    pub async fn finish(mut self) {
        self.stop().await;
        if let Some(db) = self.pg_database.take() {
            db.drop_now().await;
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
