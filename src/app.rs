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
use crate::http::auth::JwtKeys;
use crate::http::AppState;
use crate::jobs::{Queue, Registry};
use crate::media::{MediaListener, MediaSigner};
use crate::metrics::Metrics;
use crate::{bmc_sessions, discovery, jobs, keys, lifecycle, service};

/// Partial uploads older than this are left by a crash and removed at start-up.
const STALE_UPLOAD_AGE: Duration = Duration::from_secs(3600);

/// Binds an optional extra plain-HTTP listener (`setting` names it in the error).
fn bind_extra(
    addr: Option<SocketAddr>,
    setting: &str,
) -> anyhow::Result<Option<std::net::TcpListener>> {
    let Some(addr) = addr else { return Ok(None) };
    let l = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} ({setting})"))?;
    l.set_nonblocking(true)?;
    Ok(Some(l))
}

/// Every kind of job this server runs.
pub fn job_kinds() -> Registry {
    Registry::new()
        .register(discovery::scan::ScanJob::default())
        .register(lifecycle::power::PowerJob)
        .register(lifecycle::inventory::InventoryJob)
        .register(lifecycle::deploy::DeployJob)
        .register(lifecycle::firmware::FirmwareJob)
}

/// Starts one kind of background work (workers, sweepers) into `ctx.tasks`; each stops when
/// the shutdown token is cancelled.
pub type StartFn = fn(&Ctx, &Arc<Queue>);

/// Background work started with the server.
pub const BACKGROUND: &[StartFn] = &[
    jobs::start,
    jobs::listen,
    scan_scheduler,
    lifecycle::poll::start,
    service::audit::start_pruning,
    service::registration::start_repair,
    |ctx, _| bmc_sessions::start(ctx),
];

/// The scan scheduler: starts the scans of ranges whose `rescan_interval` made them due.
fn scan_scheduler(ctx: &Ctx, _: &Arc<Queue>) {
    ctx.tasks
        .spawn(crate::service::scans::run_scheduler(ctx.clone()));
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
    metrics_listener: Option<std::net::TcpListener>,
    /// The plain-HTTP listener serving only `/media/` (`MOJO_MEDIA_LISTEN`).
    media_listener: Option<std::net::TcpListener>,
    tls: Option<RustlsConfig>,
}

/// Creates the data dir readable by its owner only (0700) when it does not exist yet.
pub fn prepare_data_dir(config: &Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))
}

/// Warns when the data dir (keys, certificate, uploads and, on SQLite, the database) is open to
/// other users.
fn warn_open_data_dir(config: &Config) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = &config.data_dir;
        let Ok(meta) = std::fs::metadata(dir) else {
            return;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "the data dir is open to other users; it holds keys and data (chmod 700 it)"
            );
        }
    }
}

/// The SQLite file of `url` exists and is readable by its owner only (0600); SQLite gives its
/// `-wal` and `-shm` files the same mode.
fn private_sqlite_file(url: &str) -> anyhow::Result<()> {
    let Some(path) = url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        for suffix in ["", "-wal", "-shm"] {
            let p = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot restrict {}", p.display()))?;
            }
        }
    }
    Ok(())
}

/// Opens the database named by the configuration and applies migrations.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    if !config.is_postgres() {
        prepare_data_dir(config)?;
    }
    let url = config.database_url();
    if !config.is_postgres() {
        private_sqlite_file(&url)?;
    }
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
        prepare_data_dir(&config)?;
        let (jwt_secret, credential_key) = keys::load(&config).map_err(anyhow::Error::msg)?;
        let db = open_database(&config).await?;
        keys::verify_credential_key(&db, &credential_key)
            .await
            .map_err(anyhow::Error::msg)?;
        bootstrap_admin(&db, &config).await?;
        service::catalogue::remove_stale_uploads(&config.data_dir, STALE_UPLOAD_AGE);
        warn_open_data_dir(&config);
        let tls = server_tls(&config).await?;
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let metrics_listener = bind_extra(config.metrics_listen, "MOJO_METRICS_LISTEN")?;
        let media_listener = bind_extra(config.media_listen, "MOJO_MEDIA_LISTEN")?;
        // URLs handed to BMCs name the listener that serves /media/.
        let media_at = match &media_listener {
            Some(l) => MediaListener {
                scheme: "http",
                addr: l.local_addr()?,
            },
            None => MediaListener {
                scheme: if tls.is_some() { "https" } else { "http" },
                addr: listener.local_addr()?,
            },
        };
        let media = MediaSigner::new(
            &jwt_secret,
            config.media_url_ttl,
            config.media_base_url.clone(),
            media_at,
        );
        let queue = Queue::new(job_kinds());
        let ctx = Ctx::new(CtxParts {
            db,
            config,
            credential_key,
            metrics: Metrics::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            jobs: queue.clone(),
            gauges: METRIC_GAUGES.to_vec(),
            media,
        });
        let state = AppState::new(ctx, JwtKeys::new(&jwt_secret));
        Ok(App {
            state,
            queue,
            listener,
            metrics_listener,
            media_listener,
            tls,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound address of the separate metrics listener, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
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
        if let Some(media_listener) = self.media_listener {
            serve_media(&state, media_listener, grace)?;
        }
        let service =
            crate::http::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let addr = self.listener.local_addr()?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %addr, scheme, "serving the MOJO API");
        if let Some(listener) = self.metrics_listener {
            let router = crate::http::ops::metrics_router(state.clone());
            let token = state.shutdown.clone();
            let addr = listener.local_addr()?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tracing::info!(address = %addr, "serving /metrics");
            state.tasks.spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(token.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::warn!(error = %e, "metrics listener failed");
                }
            });
        }
        let guard = crate::http::conn::Guard::new(crate::http::conn::Limits {
            max_connections: state.config.max_connections,
            header_read: state.config.header_read_timeout,
            body_progress: state.config.body_timeout,
            idle: state.config.idle_timeout,
        });
        let served = match self.tls {
            Some(tls) => {
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                    .handshake_timeout(state.config.header_read_timeout)
                    .acceptor(guard);
                let mut server = axum_server::from_tcp(self.listener).acceptor(acceptor);
                server
                    .http_builder()
                    .http1()
                    .timer(hyper_util::rt::TokioTimer::new())
                    // The guard enforces the header-read deadline from a head's first byte;
                    // hyper's own runs from the end of the last answer, which would close
                    // resting keep-alive connections after it instead of MOJO_IDLE_TIMEOUT.
                    .header_read_timeout(None);
                server.handle(handle).serve(service).await
            }
            None => {
                let mut server = axum_server::from_tcp(self.listener).acceptor(guard);
                server
                    .http_builder()
                    .http1()
                    .timer(hyper_util::rt::TokioTimer::new())
                    // The guard enforces the header-read deadline from a head's first byte;
                    // hyper's own runs from the end of the last answer, which would close
                    // resting keep-alive connections after it instead of MOJO_IDLE_TIMEOUT.
                    .header_read_timeout(None);
                server.handle(handle).serve(service).await
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

/// Serves `/media/` alone over plain HTTP on `listener` (`MOJO_MEDIA_LISTEN`) until shutdown.
fn serve_media(
    state: &AppState,
    listener: std::net::TcpListener,
    grace: Duration,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let token = state.shutdown.clone();
    let stopper = handle.clone();
    state.tasks.spawn(async move {
        token.cancelled().await;
        stopper.graceful_shutdown(Some(grace));
    });
    let service = crate::http::media_router(state.clone()).into_make_service();
    tracing::info!(address = %addr, "serving /media/ over plain HTTP");
    state.tasks.spawn(async move {
        if let Err(e) = axum_server::from_tcp(listener)
            .handle(handle)
            .serve(service)
            .await
        {
            tracing::error!(error = %e, "media listener failed");
        }
    });
    Ok(())
}

/// Why the API listener has no TLS configuration.
#[derive(Debug, thiserror::Error)]
enum ServerTlsError {
    /// No certificate and key (given, found or generated).
    #[error(transparent)]
    Paths(#[from] crate::tls::TlsError),
    /// The pair does not load.
    #[error("cannot load TLS certificate {}: {error}", path.display())]
    Load {
        /// The certificate file.
        path: std::path::PathBuf,
        /// What the loader said.
        error: std::io::Error,
    },
}

/// The listener's TLS configuration, or None when TLS is off.
async fn server_tls(config: &Config) -> Result<Option<RustlsConfig>, ServerTlsError> {
    if !config.tls {
        return Ok(None);
    }
    let (cert, key) = crate::tls::cert_paths(config)?;
    RustlsConfig::from_pem_file(&cert, &key)
        .await
        .map(Some)
        .map_err(|error| ServerTlsError::Load { path: cert, error })
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
    match create_superuser(db, "admin", "", &password).await {
        Ok(_) => Ok(()),
        // Another process (a replica started at the same time) bootstrapped first: its admin
        // stands, and this process comes up next to it.
        Err(CreateUserError::Exists(_)) => {
            tracing::info!("superuser admin was created by another process");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Why `create_superuser` created nothing.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The name is taken.
    #[error("a user named {0} already exists")]
    Exists(String),
    /// Hashing the password failed.
    #[error(transparent)]
    Hash(#[from] crate::service::passwords::HashError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// Creates a superuser in group 1 (used by bootstrap and `createsuperuser`).
pub async fn create_superuser(
    db: &Db,
    username: &str,
    email: &str,
    password: &str,
) -> Result<i64, CreateUserError> {
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
            CreateUserError::Exists(username.to_string())
        } else {
            e.into()
        }
    })?;
    tx.commit().await?;
    Ok(id)
}
