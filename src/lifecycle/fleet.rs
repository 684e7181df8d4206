//! Per-server work of a lifecycle job: at most N servers at once, each server's result
//! (`queued` -> `running` -> `succeeded` | `failed` | `skipped`) and the job's progress
//! (`{total, done, failed, percent}`) written as they change, and a checkpoint written when a
//! server finishes or its work records a step (`ServerWork::save`). A job claimed again after its
//! worker died skips the servers that had finished and hands each other server what its work
//! had saved, so a step recorded as done is not repeated.
//!
//! The job ends `succeeded` when every server succeeded or was skipped, else `failed` with
//! `"2 of 10 servers failed"` (a single-server job: that server's message).
//!
//! A server's work may instead wait ([`ServerOutcome::Waiting`]: nothing to do until an event
//! or a deadline, e.g. a deployment's callback): the server stays `running` with what its work
//! saved, and once every other server has finished or waits too the job is parked
//! ([`Outcome::Wait`] until the earliest deadline). A parked job resumed (woken, or at that
//! deadline) runs the waiting servers' work again from what they saved.
//!
//! Every lifecycle kind calls [`finish`] from its `JobHandler::finish`, so a job that ends
//! another way (cancelled, given up after too many attempts, its handler panicked) leaves no
//! server `queued` or `running` in its results.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::db::{jobs, DbResult, JobStatus, Tx};
use crate::jobs::{JobContext, Outcome};

/// How one server's work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutcome {
    /// Done, with what happened (`"already On"`, `"BIOS 1.0.2 -> 2.19.1"`).
    Succeeded(String),
    /// Failed with the cause (the BMC's message).
    Failed(String),
    /// Not done, with the reason (the firmware does not apply, ...).
    Skipped(String),
    /// Nothing to do until the job is woken or this deadline passes (the work saved what it
    /// needs to resume with [`ServerWork::save`]); the server stays `running`.
    Waiting(chrono::DateTime<chrono::Utc>),
}

/// One server's entry in a job's `results`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerResult {
    /// Server id.
    pub server: i64,
    /// `queued` | `running` | `succeeded` | `failed` | `skipped` | `cancelled`.
    pub status: String,
    /// What happened.
    pub message: Option<String>,
}

impl ServerResult {
    /// True once the server's work has ended.
    pub fn finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "succeeded" | "failed" | "skipped" | "cancelled"
        )
    }
}

/// The results of a job as stored (unreadable entries are dropped).
pub fn results_of(v: &Value) -> Vec<ServerResult> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// `{total, done, failed, percent}` of `results`, with the per-server `percent` of those
/// still running.
pub fn progress_of(results: &[ServerResult], percents: &HashMap<i64, u8>) -> Value {
    let total = results.len();
    let done = results.iter().filter(|r| r.finished()).count();
    let failed = results.iter().filter(|r| r.status == "failed").count();
    let sum: usize = results
        .iter()
        .map(|r| {
            if r.finished() {
                100
            } else {
                usize::from(percents.get(&r.server).copied().unwrap_or(0).min(100))
            }
        })
        .sum();
    let percent = sum.checked_div(total).unwrap_or(100);
    json!({"total": total, "done": done, "failed": failed, "percent": percent})
}

struct State {
    results: Vec<ServerResult>,
    percents: HashMap<i64, u8>,
    saved: serde_json::Map<String, Value>,
    waiting: Vec<chrono::DateTime<chrono::Utc>>,
}

impl State {
    fn set(&mut self, server: i64, status: &str, message: Option<String>) {
        if let Some(r) = self.results.iter_mut().find(|r| r.server == server) {
            r.status = status.to_string();
            r.message = message;
        }
    }

    fn checkpoint(&self) -> Value {
        let finished: Vec<&ServerResult> = self.results.iter().filter(|r| r.finished()).collect();
        let percents: serde_json::Map<String, Value> = self
            .percents
            .iter()
            .map(|(server, p)| (server.to_string(), json!(p)))
            .collect();
        json!({"results": finished, "servers": self.saved, "percents": percents})
    }
}

struct Shared {
    ctx: crate::ctx::Ctx,
    job_id: i64,
    owner: String,
    cancel: tokio_util::sync::CancellationToken,
    state: Mutex<State>,
}

impl Shared {
    /// Writes results and progress (and the checkpoint); false when the job is no longer ours
    /// or storage failed (the token is then cancelled too, and the run stops).
    async fn write(&self, with_checkpoint: bool) -> bool {
        // Held across the write, so writes land in the order of the changes.
        let st = self.state.lock().await;
        let results = json!(st.results);
        let progress = progress_of(&st.results, &st.percents);
        let checkpoint = with_checkpoint.then(|| st.checkpoint());
        let written = jobs::set_report(
            &self.ctx.db,
            self.job_id,
            &self.owner,
            &progress,
            &results,
            checkpoint.as_ref(),
        )
        .await;
        match written {
            Ok(true) => true,
            Ok(false) => {
                self.cancel.cancel();
                false
            }
            Err(e) => {
                tracing::warn!(job = self.job_id, error = %e, "cannot write job results");
                self.cancel.cancel();
                false
            }
        }
    }
}

/// What the work on one server gets: the server, what an earlier attempt saved for it, and
/// ways to save a step and report progress.
pub struct ServerWork {
    /// Server id.
    pub server: i64,
    /// What an earlier attempt of this job saved for this server (`Null` when nothing).
    pub saved: Value,
    shared: Arc<Shared>,
}

impl ServerWork {
    /// The job this work belongs to.
    pub fn job(&self) -> i64 {
        self.shared.job_id
    }

    /// Records `value` for this server in the job's checkpoint, before a step that must not
    /// run twice; false when the job is no longer ours (the work must stop).
    pub async fn save(&self, value: Value) -> bool {
        self.shared
            .state
            .lock()
            .await
            .saved
            .insert(self.server.to_string(), value);
        self.shared.write(true).await
    }

    /// Reports this server's progress (0-100, e.g. a BMC task's `PercentComplete`).
    pub async fn percent(&self, percent: u8) -> bool {
        {
            let mut st = self.shared.state.lock().await;
            if st.percents.get(&self.server) == Some(&percent) {
                return true;
            }
            st.percents.insert(self.server, percent.min(100));
        }
        self.shared.write(false).await
    }
}

/// Runs `work` for every server of the job that has not finished, at most `concurrency` at
/// once, and returns how the job ends. `Outcome::Stopped` when the job's token fires (the
/// server futures are dropped: their BMC sessions are deleted by their guards).
pub async fn run_servers<F, Fut>(jc: &JobContext, concurrency: usize, work: F) -> Outcome
where
    F: Fn(ServerWork) -> Fut,
    Fut: Future<Output = ServerOutcome>,
{
    let mut results = results_of(&jc.job.results);
    if results.is_empty() {
        results = jc
            .job
            .target_ids()
            .into_iter()
            .map(|server| ServerResult {
                server,
                status: "queued".into(),
                message: None,
            })
            .collect();
    }
    let saved = jc
        .job
        .checkpoint
        .get("servers")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // Servers an earlier attempt finished keep their results; the others start again (those
    // whose work saved a step read `running`: they resume from it).
    let done_before = results_of(jc.job.checkpoint.get("results").unwrap_or(&Value::Null));
    for r in &mut results {
        match done_before.iter().find(|d| d.server == r.server) {
            Some(d) => *r = d.clone(),
            None => {
                let resumes = saved.contains_key(&r.server.to_string());
                r.status = if resumes { "running" } else { "queued" }.into();
                r.message = None;
            }
        }
    }
    let percents: HashMap<i64, u8> = jc
        .job
        .checkpoint
        .get("percents")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let p = u8::try_from(v.as_u64()?).ok()?;
                    Some((k.parse().ok()?, p))
                })
                .collect()
        })
        .unwrap_or_default();
    let pending: Vec<i64> = results
        .iter()
        .filter(|r| !r.finished())
        .map(|r| r.server)
        .collect();
    if !done_before.is_empty() && !jc.resumed_from_wait() {
        tracing::info!(
            job = jc.job.id,
            finished = done_before.len(),
            pending = pending.len(),
            "lifecycle job resumes from its checkpoint"
        );
    }
    let shared = Arc::new(Shared {
        ctx: jc.ctx.clone(),
        job_id: jc.job.id,
        owner: jc.owner.clone(),
        cancel: jc.cancel.clone(),
        state: Mutex::new(State {
            results,
            percents,
            saved,
            waiting: Vec::new(),
        }),
    });
    if !shared.write(false).await {
        return Outcome::Stopped;
    }
    let work = &work;
    let runs = futures::stream::iter(pending)
        .map(|server| {
            let shared = shared.clone();
            async move {
                let saved = {
                    let mut st = shared.state.lock().await;
                    st.set(server, "running", None);
                    st.saved
                        .get(&server.to_string())
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                if !shared.write(false).await {
                    return false;
                }
                let w = ServerWork {
                    server,
                    saved,
                    shared: shared.clone(),
                };
                let outcome = work(w).await;
                {
                    let mut st = shared.state.lock().await;
                    let (status, message) = match outcome {
                        ServerOutcome::Succeeded(m) => ("succeeded", m),
                        ServerOutcome::Failed(m) => ("failed", m),
                        ServerOutcome::Skipped(m) => ("skipped", m),
                        ServerOutcome::Waiting(until) => {
                            st.waiting.push(until);
                            drop(st);
                            return shared.write(true).await;
                        }
                    };
                    st.set(server, status, Some(message));
                    st.percents.remove(&server);
                }
                shared.write(true).await
            }
        })
        .buffer_unordered(concurrency.max(1));
    futures::pin_mut!(runs);
    loop {
        let next = tokio::select! {
            _ = jc.cancel.cancelled() => return Outcome::Stopped,
            n = runs.next() => n,
        };
        match next {
            Some(true) => {}
            Some(false) => return Outcome::Stopped,
            None => break,
        }
    }
    let st = shared.state.lock().await;
    if let Some(until) = st.waiting.iter().min() {
        return Outcome::Wait { until: *until };
    }
    end_of(&st.results)
}

/// How a job with these (finished) results ends.
pub fn end_of(results: &[ServerResult]) -> Outcome {
    let failed: Vec<&ServerResult> = results.iter().filter(|r| r.status == "failed").collect();
    match (failed.len(), results.len()) {
        (0, _) => Outcome::Succeeded,
        (1, 1) => Outcome::Failed(
            failed[0]
                .message
                .clone()
                .unwrap_or_else(|| "the server failed".into()),
        ),
        (n, total) => Outcome::Failed(format!("{n} of {total} servers failed")),
    }
}

/// Closes the results of a job that has just ended, inside its finishing transaction: servers
/// still `queued` or `running` become `cancelled` (the job was cancelled) or `failed` with the
/// job's error.
pub async fn finish(tx: &mut Tx, job_id: i64, error: Option<&str>) -> DbResult<()> {
    let Some(job) = jobs::get(&mut *tx, job_id).await? else {
        return Ok(());
    };
    let mut results = results_of(&job.results);
    if results.iter().all(ServerResult::finished) {
        return Ok(());
    }
    let cancelled = job.status == JobStatus::Cancelled;
    for r in results.iter_mut().filter(|r| !r.finished()) {
        if cancelled {
            r.status = "cancelled".into();
            r.message = Some("the job was cancelled".into());
        } else {
            r.status = "failed".into();
            r.message = Some(
                error
                    .unwrap_or("the job ended before this server was done")
                    .to_string(),
            );
        }
    }
    let progress = progress_of(&results, &HashMap::new());
    jobs::set_results_in(&mut *tx, job_id, &progress, &json!(results)).await
}

/// The result of an error on one server, logged.
pub fn failed(jc: &JobContext, server: i64, message: String) -> ServerOutcome {
    tracing::info!(job = jc.job.id, server, error = %message, "server failed");
    jc.ctx.metrics.add(
        "mojo_bmc_errors_total",
        "BMC errors by operation.",
        &[("op", jc.job.kind.as_str())],
        1,
    );
    ServerOutcome::Failed(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(server: i64, status: &str) -> ServerResult {
        ServerResult {
            server,
            status: status.into(),
            message: Some("m".into()),
        }
    }

    #[test]
    fn counts_and_ends() {
        let rs = vec![
            r(1, "succeeded"),
            r(2, "failed"),
            r(3, "running"),
            r(4, "skipped"),
        ];
        let mut p = HashMap::new();
        p.insert(3, 50);
        assert_eq!(
            progress_of(&rs, &p),
            json!({"total": 4, "done": 3, "failed": 1, "percent": 87})
        );
        assert!(matches!(end_of(&rs[..1]), Outcome::Succeeded));
        assert!(matches!(end_of(&[r(2, "failed")]), Outcome::Failed(m) if m == "m"));
        assert!(
            matches!(end_of(&[r(1, "failed"), r(2, "failed"), r(3, "skipped")]), Outcome::Failed(m) if m == "2 of 3 servers failed")
        );
        assert_eq!(progress_of(&[], &p)["percent"], 100);
    }
}
