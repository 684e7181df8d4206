//! The job queue and its worker pool.
//!
//! `start` spawns `MOJO_WORKERS` workers into `state.tasks`; each `run`s until the shutdown
//! token is cancelled, calling [`run_single_iteration`] (public so tests drive the queue without
//! sleeping). A claimed job holds a lease renewed every third of `MOJO_JOB_LEASE_SECS`; when the
//! lease cannot be renewed (the job was cancelled, or another process took it over) the job's
//! cancellation token fires and its handler stops. A job left running by a dead process is
//! claimed again once its lease expires, also by the next start of the same process.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::jobs::{self, Job};
use crate::db::DbResult;
use crate::http::AppState;

/// Wakes idle workers of this process when a job is queued.
static WAKE: Notify = Notify::const_new();

/// Tells idle workers that a job was queued (call after the enqueueing transaction commits).
pub fn wake() {
    WAKE.notify_waiters();
}

/// Longest idle wait between polls of the queue (other processes may queue work too).
const POLL: Duration = Duration::from_millis(1000);

/// What a handler gets to run one job.
pub struct JobContext {
    /// App state.
    pub state: AppState,
    /// The claimed job.
    pub job: Job,
    /// The lease owner (this worker).
    pub owner: String,
    /// Fires when the job was cancelled, taken over, or the process shuts down.
    pub cancel: CancellationToken,
}

impl JobContext {
    /// Writes the job's progress; false (and the token cancelled) when the job is no longer ours.
    pub async fn progress(&self, progress: &Value) -> DbResult<bool> {
        let ours = jobs::set_progress(&self.state.db, self.job.id, &self.owner, progress).await?;
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
}

/// One kind of job.
pub trait JobHandler: Send + Sync {
    /// The `kind` this handler runs.
    fn kind(&self) -> &'static str;
    /// Runs one claimed job. Must be idempotent: a re-claimed job starts over.
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Outcome>;
    /// Cleans up after a job that ended (succeeded, failed) inside the finishing transaction.
    fn finish<'a>(
        &'a self,
        tx: &'a mut crate::db::Tx,
        job: &'a Job,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, DbResult<()>>;
}

/// The handlers of every job kind, as the server runs them.
pub fn handlers() -> Arc<Vec<Arc<dyn JobHandler>>> {
    Arc::new(vec![Arc::new(crate::discovery::scan::ScanJob::default())])
}

/// Cancels a queued or running job inside `tx` and lets its kind's handler clean up, as when a
/// job ends. False when the job had already ended.
pub async fn cancel(tx: &mut crate::db::Tx, job: &Job) -> DbResult<bool> {
    if !jobs::cancel(tx, job.id).await? {
        return Ok(false);
    }
    if let Some(handler) = handlers().iter().find(|h| h.kind() == job.kind) {
        handler.finish(tx, job, None).await?;
    }
    Ok(true)
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

/// Starts the worker pool into `state.tasks` (a [`crate::StartFn`]).
pub fn start(state: &AppState) {
    let handlers = handlers();
    for i in 0..state.config.workers {
        let state = state.clone();
        let handlers = handlers.clone();
        let owner = owner_name(i);
        state
            .tasks
            .clone()
            .spawn(async move { run(state, owner, handlers).await });
    }
}

/// One worker: claims and runs jobs until shutdown.
pub async fn run(state: AppState, owner: String, handlers: Arc<Vec<Arc<dyn JobHandler>>>) {
    while !state.shutdown.is_cancelled() {
        match run_single_iteration(&state, &owner, &handlers).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, worker = %owner, "job queue unavailable"),
        }
        let notified = WAKE.notified();
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            _ = notified => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

fn lease_of(state: &AppState) -> (chrono::Duration, Duration) {
    let secs = state.config.job_lease_secs.max(3);
    (
        chrono::Duration::seconds(i64::try_from(secs).unwrap_or(30)),
        Duration::from_secs(secs) / 3,
    )
}

/// Claims at most one job and runs it to its end; returns the job id, or None when the queue
/// had nothing to claim.
pub async fn run_single_iteration(
    state: &AppState,
    owner: &str,
    handlers: &[Arc<dyn JobHandler>],
) -> DbResult<Option<i64>> {
    let (lease, renew_every) = lease_of(state);
    let Some(job) = jobs::claim(&state.db, owner, lease).await? else {
        return Ok(None);
    };
    let id = job.id;
    tracing::info!(job = id, kind = %job.kind, attempt = job.attempts, worker = %owner, "job claimed");
    let Some(handler) = handlers.iter().find(|h| h.kind() == job.kind).cloned() else {
        let mut tx = state.db.begin().await?;
        jobs::finish(&mut tx, id, owner, "failed", Some("unknown job kind")).await?;
        tx.commit().await?;
        return Ok(Some(id));
    };
    let cancel = state.shutdown.child_token();
    let done = CancellationToken::new();
    let renewal = {
        let (db, cancel, done, owner) = (
            state.db.clone(),
            cancel.clone(),
            done.clone(),
            owner.to_string(),
        );
        state.tasks.spawn(async move {
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
    let ctx = JobContext {
        state: state.clone(),
        job,
        owner: owner.to_string(),
        cancel,
    };
    let outcome = handler.run(&ctx).await;
    done.cancel();
    let _ = renewal.await;
    let error = match &outcome {
        Outcome::Succeeded => None,
        Outcome::Failed(e) => Some(e.as_str()),
        Outcome::Stopped => {
            tracing::info!(job = id, "job stopped before its end");
            return Ok(Some(id));
        }
    };
    let mut tx = state.db.begin().await?;
    if jobs::finish(
        &mut tx,
        id,
        owner,
        if error.is_some() {
            "failed"
        } else {
            "succeeded"
        },
        error,
    )
    .await?
    {
        handler.finish(&mut tx, &ctx.job, error).await?;
    }
    tx.commit().await?;
    tracing::info!(job = id, failed = error.is_some(), "job finished");
    Ok(Some(id))
}

/// Prometheus gauges of jobs by kind and status (a [`crate::http::ops::GaugeFn`]).
pub fn job_gauges(state: &AppState) -> BoxFuture<'_, String> {
    Box::pin(async move {
        use std::fmt::Write as _;
        let mut out =
            String::from("# HELP mojo_jobs Jobs by kind and status.\n# TYPE mojo_jobs gauge\n");
        match jobs::counts(&state.db).await {
            Ok(rows) => {
                for (kind, status, n) in rows {
                    let _ = writeln!(out, "mojo_jobs{{kind=\"{kind}\",status=\"{status}\"}} {n}");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot count jobs for /metrics"),
        }
        out
    })
}
