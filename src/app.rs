//! The composition root: builds one server process (storage, keys, first-start bootstrap, the
//! process context, the job kinds, the HTTP listener, the background workers) and runs it
//! until one cancellation token stops everything.
//!
//! Everything below the web edge receives the [`Ctx`] built here; the web edge wraps it in
//! [`AppState`]. Job kinds are registered in [`job_kinds`], background work in [`BACKGROUND`],
//! scrape-time gauges in [`METRIC_GAUGES`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{redact_url, secret_from_env, Config};
use crate::ctx::{Ctx, CtxParts, GaugeFn};
use crate::db::{groups::DEFAULT_GROUP_ID, users, Db};
use crate::http::auth::{JwtKeys, LoginThrottle};
use crate::http::AppState;
use crate::jobs::{Queue, Registry};
use crate::metrics::Metrics;
use crate::{discovery, jobs, keys, lifecycle};

/// Every kind of job this server runs.
pub fn job_kinds() -> Registry {
    Registry::new()
        .register(discovery::scan::ScanJob::default())
        .register(lifecycle::power::PowerJob)
        .register(lifecycle::inventory::InventoryJob)
}

/// Starts one kind of background work (workers, sweepers) into `ctx.tasks`; each stops when
/// the shutdown token is cancelled.
pub type StartFn = fn(&Ctx, &Arc<Queue>);

/// Background work started with the server.
pub const BACKGROUND: &[StartFn] = &[
    jobs::start,
    jobs::listen,
    scan_scheduler,
    registration_sweeper,
    lifecycle::poll::start,
];

/// The scan scheduler: starts the scans of ranges whose `rescan_interval` made them due.
fn scan_scheduler(ctx: &Ctx, _: &Arc<Queue>) {
    ctx.tasks
        .spawn(crate::service::scans::run_scheduler(ctx.clone()));
}

/// Ends registrations left `registering` by a process that died mid-registration.
fn registration_sweeper(ctx: &Ctx, _: &Arc<Queue>) {
    ctx.tasks
        .spawn(crate::service::nodes::run_registration_sweeper(ctx.clone()));
}

/// Scrape-time gauges added to `/metrics`.
pub const METRIC_GAUGES: &[GaugeFn] = &[jobs::job_gauges];

/// A built server: state ready, listener bound, not yet serving.
pub struct App {
    /// The web edge's state around the process context (tests reach the database through it).
    pub state: AppState,
    /// The job queue the workers serve.
    pub queue: Arc<Queue>,
    listener: std::net::TcpListener,
    tls: Option<RustlsConfig>,
}

/// Opens the database named by the configuration and applies migrations.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    if !config.is_postgres() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    }
    let url = config.database_url();
    let db = Db::connect(&url, config.db_pool_size())
        .await
        .with_context(|| format!("cannot open database {}", redact_url(&url)))?;
    db.migrate().await.context("cannot apply migrations")?;
    Ok(db)
}

impl App {
    /// Validates the configuration, opens storage, loads keys, bootstraps the first admin and
    /// binds the listener (port 0 picks a free port, as tests do).
    pub async fn build(config: Config) -> anyhow::Result<App> {
        config.validate().map_err(anyhow::Error::msg)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Keys first: a missing required key must stop start-up before anything touches the
        // database.
        if !config.is_postgres() {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        }
        let (jwt_secret, credential_key) = keys::load(&config).map_err(anyhow::Error::msg)?;
        let db = open_database(&config).await?;
        keys::verify_credential_key(&db, &credential_key)
            .await
            .map_err(anyhow::Error::msg)?;
        bootstrap_admin(&db, &config).await?;
        let tls = server_tls(&config).await.map_err(anyhow::Error::msg)?;
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let queue = Queue::new(job_kinds());
        let login_throttle = LoginThrottle::new(config.login_throttle);
        let ctx = Ctx::new(CtxParts {
            db,
            config,
            credential_key,
            metrics: Metrics::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            jobs: queue.clone(),
            gauges: METRIC_GAUGES.to_vec(),
        });
        let state = AppState::new(ctx, JwtKeys::new(&jwt_secret), login_throttle);
        Ok(App {
            state,
            queue,
            listener,
            tls,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `state.shutdown` is cancelled, then drains requests and background work
    /// within the grace period.
    pub async fn run(self) -> anyhow::Result<()> {
        let state = self.state.clone();
        let grace = Duration::from_secs(state.config.shutdown_grace_secs);
        for start in BACKGROUND {
            start(&state.ctx, &self.queue);
        }
        let handle = axum_server::Handle::new();
        let watcher = {
            let handle = handle.clone();
            let token = state.shutdown.clone();
            state.tasks.spawn(async move {
                token.cancelled().await;
                handle.graceful_shutdown(Some(grace));
            })
        };
        let service =
            crate::http::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let addr = self.listener.local_addr()?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %addr, scheme, "serving the MOJO API");
        let served = match self.tls {
            Some(tls) => {
                axum_server::from_tcp_rustls(self.listener, tls)
                    .handle(handle)
                    .serve(service)
                    .await
            }
            None => {
                axum_server::from_tcp(self.listener)
                    .handle(handle)
                    .serve(service)
                    .await
            }
        };
        state.shutdown.cancel();
        state.tasks.close();
        if tokio::time::timeout(grace, state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "background work did not finish within the grace period; leases will expire"
            );
        }
        let _ = watcher.await;
        state.db.close().await;
        served.context("server failed")
    }
}

/// The listener's TLS configuration, or None when TLS is off.
async fn server_tls(config: &Config) -> Result<Option<RustlsConfig>, String> {
    if !config.tls {
        return Ok(None);
    }
    let (cert, key) = crate::tls::cert_paths(config).map_err(|e| e.to_string())?;
    RustlsConfig::from_pem_file(&cert, &key)
        .await
        .map(Some)
        .map_err(|e| format!("cannot load TLS certificate {}: {e}", cert.display()))
}

/// First start with no users: creates superuser `admin` in group 1.
async fn bootstrap_admin(db: &Db, config: &Config) -> anyhow::Result<()> {
    if users::count(db).await? > 0 {
        return Ok(());
    }
    let given = match &config.injected.admin_password {
        Some(p) => Some(p.clone()),
        None => secret_from_env("MOJO_ADMIN_PASSWORD").map_err(anyhow::Error::msg)?,
    };
    let password = match given {
        Some(p) => p,
        None => {
            use rand::distributions::{Alphanumeric, DistString};
            let p = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
            std::fs::create_dir_all(&config.data_dir)?;
            let path = config.data_dir.join("initial_admin_password");
            let _ = std::fs::remove_file(&path);
            keys::write_private(&path, &format!("{p}\n"))
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::warn!(path = %path.display(), "created superuser admin; its password is in this file");
            p
        }
    };
    create_superuser(db, "admin", "", &password).await?;
    Ok(())
}

/// Creates a superuser in group 1 (used by bootstrap and `createsuperuser`).
pub async fn create_superuser(
    db: &Db,
    username: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<i64> {
    let hash = crate::service::passwords::hash(password.to_string()).await?;
    let mut tx = db.begin().await?;
    let id = users::insert(
        &mut tx,
        &users::UserWrite {
            username: Some(username.to_string()),
            password_hash: Some(hash),
            email: Some(email.to_string()),
            is_superuser: Some(true),
            is_active: Some(true),
            groups: Some(vec![DEFAULT_GROUP_ID]),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| {
        if e.is_unique_violation() {
            anyhow::anyhow!("a user named {username} already exists")
        } else {
            e.into()
        }
    })?;
    tx.commit().await?;
    Ok(id)
}
