//! The context every layer below the web edge works with: storage, settings, the credential
//! key, metrics, the process's task tracker and shutdown token, and the job queue.
//!
//! Built once by the composition root (`app`) and handed down; cheap to clone. It names no web
//! type: the HTTP edge wraps it with what only requests need (JWT keys, login throttle,
//! identity cache).

use std::ops::Deref;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::jobs::Job;
use crate::db::{Db, DbResult, Tx};
use crate::keys::CredentialKey;
use crate::media::MediaSigner;
use crate::metrics::Metrics;

/// What the rest of the process may ask of the job queue, whatever kinds are registered.
///
/// Implemented by `jobs::Queue`; kept as a trait here so the context sits below the job
/// machinery that uses it.
pub trait JobQueue: Send + Sync {
    /// Tells this process's idle workers that a job was queued (after the enqueueing commit).
    fn wake(&self);
    /// Cancels a queued or running job inside `tx` and lets its kind clean up, as when a job
    /// ends. False when the job had already ended.
    fn cancel<'a>(&'a self, tx: &'a mut Tx, job: &'a Job) -> BoxFuture<'a, DbResult<bool>>;
}

/// Refreshes scrape-time gauges in `ctx.metrics` before `/metrics` renders (job counts, ...);
/// registered at the root.
pub type GaugeFn = fn(&Ctx) -> BoxFuture<'_, ()>;

/// The parts of [`Ctx`].
pub struct CtxParts {
    /// The database.
    pub db: Db,
    /// Settings.
    pub config: Config,
    /// Key sealing stored BMC credentials (32 bytes).
    pub credential_key: CredentialKey,
    /// Process metrics.
    pub metrics: Metrics,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// Owns every background task of the process (no detached spawns).
    pub tasks: TaskTracker,
    /// The job queue.
    pub jobs: Arc<dyn JobQueue>,
    /// Scrape-time gauges.
    pub gauges: Vec<GaugeFn>,
    /// Signs the media URLs handed to BMCs.
    pub media: MediaSigner,
}

/// Cheaply clonable handle to the process context.
#[derive(Clone)]
pub struct Ctx(Arc<CtxParts>);

impl Ctx {
    /// Wraps the parts.
    pub fn new(parts: CtxParts) -> Ctx {
        Ctx(Arc::new(parts))
    }
}

impl Deref for Ctx {
    type Target = CtxParts;
    fn deref(&self) -> &CtxParts {
        &self.0
    }
}
