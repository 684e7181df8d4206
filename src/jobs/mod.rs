//! The job queue and its worker pool, for whatever kinds of job the composition root registers.
//!
//! A [`Registry`] holds one [`JobHandler`] per kind; [`Queue`] (the [`JobQueue`] the context
//! carries) wakes this process's workers and cancels jobs through their kind. `start` spawns
//! `MOJO_WORKERS` workers into `ctx.tasks`; each `run`s until the shutdown token is cancelled,
//! calling [`run_single_iteration`] (public so tests drive the queue without sleeping).
//! Replicas on one PostgreSQL wake each other: queuing a job NOTIFYs in its transaction and
//! [`listen`] turns the notification into a wake-up here; the poll stays as the fallback.
//!
//! A claimed job holds a lease renewed every third of `MOJO_JOB_LEASE_SECS`; when the lease
//! cannot be renewed (the job was cancelled, or another process took it over) the job's
//! cancellation token fires and its handler stops. A job left running by a dead process is
//! claimed again once its lease expires, also by the next start of the same process, and its
//! handler sees the checkpoint it wrote (`JobContext::checkpoint`) so that it resumes instead of
//! starting over. A job claimed more than `MOJO_JOB_MAX_ATTEMPTS` times is failed without
//! running, and a handler that panics fails its job (the lease is released, not left running).
//!
//! A handler that has nothing to do until something happens elsewhere (a deployment waiting
//! for its installer's callback) returns [`Outcome::Wait`]: the worker parks the job
//! (`db::jobs::park`: lease released, the job still `running` to the API, its checkpoint kept)
//! and takes the next one. The parked job is claimed again, with the same checkpoint and
//! without counting as another attempt, when its deadline passes or when something wakes it
//! (`db::jobs::wake` inside the transaction that records the event, then [`JobQueue::wake`]);
//! the wake NOTIFYs the other replicas like a queued job, and the state is in the database, so
//! a parked job survives restarts and wakes on whichever process is up.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ctx::{Ctx, JobQueue};
use crate::db::jobs::{self, Job};
use crate::db::notify::{JobListener, Wakeup};
use crate::db::{DbResult, Dialect, JobStatus, Tx};

/// Longest idle wait between polls of the queue: the fallback when a wake-up from another
/// process was missed (the listener was reconnecting) and for leases that expire.
const POLL: Duration = Duration::from_millis(1000);

/// What a handler gets to run one job.
pub struct JobContext {
    /// The process context.
    pub ctx: Ctx,
    /// The claimed job (its `checkpoint` is what an earlier attempt recorded).
    pub job: Job,
    /// The lease owner (this worker).
    pub owner: String,
    /// Fires when the job was cancelled, taken over, or the process shuts down.
    pub cancel: CancellationToken,
}

impl JobContext {
    /// Writes the job's progress; false (and the token cancelled) when the job is no longer ours.
    pub async fn progress(&self, progress: &Value) -> DbResult<bool> {
        let ours = jobs::set_progress(&self.ctx.db, self.job.id, &self.owner, progress).await?;
        self.keep(ours)
    }

    /// Records what is done so far (with the progress, when given), before the next step
    /// that must not be repeated; a re-claimed job starts from it. False (and the token
    /// cancelled) when the job is no longer ours: the handler must then stop.
    pub async fn checkpoint(&self, checkpoint: &Value, progress: Option<&Value>) -> DbResult<bool> {
        let ours =
            jobs::set_checkpoint(&self.ctx.db, self.job.id, &self.owner, checkpoint, progress)
                .await?;
        self.keep(ours)
    }

    /// Writes progress and per-server results together, with the checkpoint when given (the
    /// lifecycle kinds); false (and the token cancelled) when the job is no longer ours.
    pub async fn report(
        &self,
        progress: &Value,
        results: &Value,
        checkpoint: Option<&Value>,
    ) -> DbResult<bool> {
        let ours = jobs::set_report(
            &self.ctx.db,
            self.job.id,
            &self.owner,
            progress,
            results,
            checkpoint,
        )
        .await?;
        self.keep(ours)
    }

    /// True when this run resumes a job its handler had parked ([`Outcome::Wait`]), after a
    /// wake or its deadline.
    pub fn resumed_from_wait(&self) -> bool {
        self.job.wait_until.is_some()
    }

    fn keep(&self, ours: bool) -> DbResult<bool> {
        if !ours {
            self.cancel.cancel();
        }
        Ok(ours)
    }
}

/// How a handler's run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Done.
    Succeeded,
    /// Failed with a message for `job.error`.
    Failed(String),
    /// Stopped because its token fired; the job is not finished by the worker.
    Stopped,
    /// Nothing to do until an explicit wake or `until`, whichever comes first: the job is
    /// parked (no worker, no lease, checkpoint kept) and run again then. The handler must have
    /// written what it needs to resume in its checkpoint.
    Wait {
        /// The latest time the job runs again (its deadline).
        until: chrono::DateTime<chrono::Utc>,
    },
}

/// One kind of job.
pub trait JobHandler: Send + Sync {
    /// The `kind` this handler runs.
    fn kind(&self) -> &'static str;
    /// Runs one claimed job. A re-claimed job runs again: the handler resumes from
    /// `ctx.job.checkpoint` and must not repeat a step it recorded as done.
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Outcome>;
    /// Cleans up after a job that ended (succeeded, failed, cancelled) inside the finishing
    /// transaction.
    fn finish<'a>(
        &'a self,
        tx: &'a mut Tx,
        job: &'a Job,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, DbResult<()>>;
}

/// The handlers of every job kind this process runs, registered at the composition root.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: Vec<Arc<dyn JobHandler>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds the handler of one kind (a later one of the same kind replaces it).
    pub fn register(mut self, handler: impl JobHandler + 'static) -> Registry {
        self.handlers.retain(|h| h.kind() != handler.kind());
        self.handlers.push(Arc::new(handler));
        self
    }

    /// The handler of `kind`.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.iter().find(|h| h.kind() == kind).cloned()
    }
}

/// This process's queue: the registry and the signal that wakes its idle workers.
pub struct Queue {
    registry: Registry,
    wake: Notify,
}

impl Queue {
    /// A queue running the kinds of `registry`.
    pub fn new(registry: Registry) -> Arc<Queue> {
        Arc::new(Queue {
            registry,
            wake: Notify::new(),
        })
    }

    /// The registered kinds.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl JobQueue for Queue {
    fn wake(&self) {
        self.wake.notify_waiters();
    }

    fn cancel<'a>(&'a self, tx: &'a mut Tx, job: &'a Job) -> BoxFuture<'a, DbResult<bool>> {
        Box::pin(async move {
            if !jobs::cancel(&mut *tx, job.id).await? {
                return Ok(false);
            }
            if let Some(handler) = self.registry.get(&job.kind) {
                handler.finish(tx, job, None).await?;
            }
            Ok(true)
        })
    }
}

/// A lease owner name unique to this worker.
pub fn owner_name(worker: usize) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "mojo".into());
    format!(
        "{host}-{}-{}-w{worker}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 4]>())
    )
}

/// Starts `MOJO_WORKERS` workers of `queue` into `ctx.tasks`.
pub fn start(ctx: &Ctx, queue: &Arc<Queue>) {
    for i in 0..ctx.config.workers {
        let (ctx, queue) = (ctx.clone(), queue.clone());
        let owner = owner_name(i);
        ctx.tasks
            .clone()
            .spawn(async move { run(ctx, owner, queue).await });
    }
}

/// Wakes this process's workers when another process queues a job (PostgreSQL `LISTEN`; on
/// SQLite nothing to do: one process per file, woken in-process by [`Queue`]). The listening
/// connection is re-established whenever it drops (PostgreSQL restarted); the workers poll
/// after each reconnect for what was queued meanwhile, and keep polling every [`POLL`] anyway.
pub fn listen(ctx: &Ctx, queue: &Arc<Queue>) {
    if ctx.db.dialect() != Dialect::Postgres {
        return;
    }
    let (ctx, queue) = (ctx.clone(), queue.clone());
    ctx.tasks.clone().spawn(async move {
        while !ctx.shutdown.is_cancelled() {
            let connected = tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                c = JobListener::connect(&ctx.db) => c,
            };
            match connected {
                Ok(Some(mut listener)) => {
                    tracing::debug!("listening for jobs queued by other processes");
                    queue.wake();
                    loop {
                        let got = tokio::select! {
                            _ = ctx.shutdown.cancelled() => return,
                            got = listener.recv() => got,
                        };
                        match got {
                            Ok(Wakeup::Queued) => queue.wake(),
                            Ok(Wakeup::Reconnected) => {
                                tracing::info!("job listener reconnected");
                                queue.wake();
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "job listener lost; polling until it is back");
                                break;
                            }
                        }
                    }
                }
                Ok(None) => return,
                Err(e) => tracing::warn!(error = %e, "cannot listen for queued jobs; polling"),
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    });
}

/// One worker: claims and runs jobs until shutdown.
pub async fn run(ctx: Ctx, owner: String, queue: Arc<Queue>) {
    while !ctx.shutdown.is_cancelled() {
        // Registered before the claim, so a job queued meanwhile is not slept through.
        let notified = queue.wake.notified();
        match run_single_iteration(&ctx, &owner, queue.registry()).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, worker = %owner, "job queue unavailable"),
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = notified => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

fn lease_of(ctx: &Ctx) -> (chrono::Duration, Duration) {
    let secs = ctx.config.job_lease_secs.max(3);
    (
        chrono::Duration::seconds(i64::try_from(secs).unwrap_or(30)),
        Duration::from_secs(secs) / 3,
    )
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// Claims at most one job and runs it to its end; returns the job id, or None when the queue
/// had nothing to claim.
pub async fn run_single_iteration(
    ctx: &Ctx,
    owner: &str,
    registry: &Registry,
) -> DbResult<Option<i64>> {
    let (lease, renew_every) = lease_of(ctx);
    let Some(job) = jobs::claim(&ctx.db, owner, lease).await? else {
        return Ok(None);
    };
    let id = job.id;
    tracing::info!(job = id, kind = %job.kind, attempt = job.attempts, resumed = job.wait_until.is_some(), worker = %owner, "job claimed");
    if job.attempts > 1 && job.wait_until.is_none() {
        // The lease was taken over: sessions the earlier attempt left on BMCs go first (a
        // parked job resumed is not a takeover: its last run ended cleanly).
        if let Err(error) = crate::bmc_sessions::reap_job(ctx, id).await {
            tracing::warn!(job = id, %error, "cannot reap the BMC sessions of an earlier attempt");
        }
    }
    let Some(handler) = registry.get(&job.kind) else {
        end(ctx, None, &job, owner, Some("unknown job kind")).await?;
        return Ok(Some(id));
    };
    let max = ctx.config.job_max_attempts.max(1);
    if job.attempts > max {
        let error = format!("given up after {max} attempts: its worker stopped each time");
        tracing::warn!(job = id, kind = %job.kind, "{error}");
        end(ctx, Some(&handler), &job, owner, Some(&error)).await?;
        return Ok(Some(id));
    }
    let cancel = ctx.shutdown.child_token();
    let done = CancellationToken::new();
    let renewal = {
        let (db, cancel, done, owner) = (
            ctx.db.clone(),
            cancel.clone(),
            done.clone(),
            owner.to_string(),
        );
        ctx.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = done.cancelled() => break,
                    _ = tokio::time::sleep(renew_every) => {}
                }
                match jobs::renew(&db, id, &owner, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        cancel.cancel();
                        break;
                    }
                    Err(e) => tracing::warn!(job = id, error = %e, "cannot renew the job lease"),
                }
            }
        })
    };
    let jc = JobContext {
        ctx: ctx.clone(),
        job,
        owner: owner.to_string(),
        cancel,
    };
    // A panicking handler fails its job instead of leaving it running under a live lease.
    let outcome = match AssertUnwindSafe(handler.run(&jc)).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(payload) => {
            let text = panic_text(payload.as_ref());
            tracing::error!(job = id, kind = %jc.job.kind, panic = %text, "job handler panicked");
            Outcome::Failed(format!(
                "internal error: the {} job stopped unexpectedly",
                jc.job.kind
            ))
        }
    };
    done.cancel();
    let _ = renewal.await;
    let error = match &outcome {
        Outcome::Succeeded => None,
        Outcome::Failed(e) => Some(e.as_str()),
        Outcome::Stopped => {
            tracing::info!(job = id, "job stopped before its end");
            return Ok(Some(id));
        }
        Outcome::Wait { until } => {
            if jobs::park(&ctx.db, id, owner, *until, jc.job.wakes).await? {
                tracing::info!(job = id, kind = %jc.job.kind, until = %until, "job waiting");
            } else {
                tracing::info!(job = id, "job ended or was taken over before it could wait");
            }
            return Ok(Some(id));
        }
    };
    end(ctx, Some(&handler), &jc.job, owner, error).await?;
    tracing::info!(job = id, failed = error.is_some(), "job finished");
    Ok(Some(id))
}

/// Ends a job this owner holds (`failed` with an error, else `succeeded`) and runs its kind's
/// finish hook in the same transaction.
async fn end(
    ctx: &Ctx,
    handler: Option<&Arc<dyn JobHandler>>,
    job: &Job,
    owner: &str,
    error: Option<&str>,
) -> DbResult<()> {
    let status = if error.is_some() {
        JobStatus::Failed
    } else {
        JobStatus::Succeeded
    };
    let mut tx = ctx.db.begin().await?;
    if jobs::finish(&mut tx, job.id, owner, status, error).await? {
        if let Some(handler) = handler {
            handler.finish(&mut tx, job, error).await?;
        }
    }
    tx.commit().await
}

/// Refreshes the `mojo_jobs` gauges (jobs by kind and status) before a scrape (a
/// [`crate::ctx::GaugeFn`]).
pub fn job_gauges(ctx: &Ctx) -> BoxFuture<'_, ()> {
    Box::pin(async move {
        match jobs::counts(&ctx.db).await {
            Ok(rows) => {
                let rows: Vec<(Vec<String>, i64)> = rows
                    .into_iter()
                    .map(|(kind, status, n)| (vec![kind, status], n))
                    .collect();
                ctx.metrics.set_gauges(
                    "mojo_jobs",
                    "Jobs by kind and status.",
                    &["kind", "status"],
                    &rows,
                );
            }
            Err(e) => tracing::warn!(error = %e, "cannot count jobs for /metrics"),
        }
    })
}
