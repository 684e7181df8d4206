//! The queue's waiting state, driven with `run_single_iteration` (no workers, no network), on
//! both backends: a handler that returns `Outcome::Wait` releases its worker and lease, the job
//! stays `running` with its checkpoint, and it is claimed again (without counting an attempt)
//! on an explicit wake, on its deadline, or at once when the wake came while it still ran; a
//! parked job can be cancelled; on PostgreSQL a wake NOTIFYs the other processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use mojo_server::db::notify::{JobListener, Wakeup};
use mojo_server::db::{jobs, Sql};
use mojo_server::http::AppState;
use mojo_server::jobs::{run_single_iteration, JobContext, JobHandler, Outcome, Registry};
use serde_json::{json, Value};

/// What one run of the test kind does.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Parks for this many ms.
    Wait(i64),
    /// Wakes its own job (as a callback arriving mid-run would), then parks for a minute.
    WakeSelfThenWait,
    /// Ends.
    Succeed,
}

/// A kind that follows `plans` run after run, recording (checkpoint, resumed) per run.
#[derive(Clone, Default)]
struct Waiter {
    plans: Arc<Mutex<Vec<Plan>>>,
    seen: Arc<Mutex<Vec<(Value, bool)>>>,
}

impl JobHandler for Waiter {
    fn kind(&self) -> &'static str {
        "test_wait"
    }
    fn run<'a>(&'a self, jc: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap()
                .push((jc.job.checkpoint.clone(), jc.resumed_from_wait()));
            let plan = self.plans.lock().unwrap().remove(0);
            let runs = jc.job.checkpoint["runs"].as_i64().unwrap_or(0) + 1;
            assert!(jc.checkpoint(&json!({ "runs": runs }), None).await.unwrap());
            let until = |ms: i64| mojo_server::db::now() + chrono::Duration::milliseconds(ms);
            match plan {
                Plan::Wait(ms) => Outcome::Wait { until: until(ms) },
                Plan::WakeSelfThenWait => {
                    let mut tx = jc.ctx.db.begin().await.unwrap();
                    assert!(jobs::wake(&mut tx, jc.job.id).await.unwrap());
                    tx.commit().await.unwrap();
                    Outcome::Wait {
                        until: until(60_000),
                    }
                }
                Plan::Succeed => Outcome::Succeeded,
            }
        })
    }
    fn finish<'a>(
        &'a self,
        _tx: &'a mut mojo_server::db::Tx,
        _job: &'a jobs::Job,
        _error: Option<&'a str>,
    ) -> BoxFuture<'a, mojo_server::db::DbResult<()>> {
        Box::pin(async { Ok(()) })
    }
}

async fn queue(state: &AppState) -> i64 {
    let mut tx = state.db.begin().await.unwrap();
    let id = jobs::enqueue(&mut tx, "test_wait", &json!([]), &json!({}), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn lease_owner(state: &AppState, id: i64) -> Option<String> {
    let row = state
        .db
        .fetch_optional(&Sql::new("SELECT lease_owner FROM jobs WHERE id = $1").arg(id))
        .await
        .unwrap()
        .unwrap();
    row.opt_text("lease_owner").unwrap()
}

async fn wake(state: &AppState, id: i64) -> bool {
    let mut tx = state.db.begin().await.unwrap();
    let woken = jobs::wake(&mut tx, id).await.unwrap();
    tx.commit().await.unwrap();
    woken
}

async fn waiting(backend: common::Backend) {
    let app = common::TestApp::builder(backend)
        .args(["--job-lease-secs", "3"])
        .build_only()
        .await;
    let state = app.state.clone();
    let waiter = Waiter::default();
    let registry = Registry::new().register(waiter.clone());
    let run = || run_single_iteration(&state, "w1", &registry);

    // Parks: no owner, still running (as the API shows it), not claimable, checkpoint kept.
    *waiter.plans.lock().unwrap() = vec![Plan::Wait(60_000), Plan::Succeed];
    let id = queue(&state).await;
    assert_eq!(run().await.unwrap(), Some(id));
    let j = jobs::get(&state.db, id).await.unwrap().unwrap();
    assert_eq!(j.status, "running");
    assert!(j.wait_until.is_some(), "{j:?}");
    assert!(jobs::is_parked(&state.db, id).await.unwrap());
    assert_eq!(lease_owner(&state, id).await, None);
    assert_eq!(run().await.unwrap(), None, "a parked job holds no worker");
    // An explicit wake: claimed again, same attempt, checkpoint seen, then it ends.
    assert!(wake(&state, id).await);
    assert_eq!(run().await.unwrap(), Some(id));
    let j = jobs::get(&state.db, id).await.unwrap().unwrap();
    assert_eq!((j.status.as_str(), j.attempts), ("succeeded", 1));
    assert!(j.wait_until.is_none());
    assert_eq!(
        *waiter.seen.lock().unwrap(),
        vec![(json!({}), false), (json!({"runs": 1}), true)]
    );
    assert!(!wake(&state, id).await, "an ended job is not woken");

    // The deadline wakes it without anyone asking.
    waiter.seen.lock().unwrap().clear();
    *waiter.plans.lock().unwrap() = vec![Plan::Wait(1_000), Plan::Succeed];
    let id = queue(&state).await;
    assert_eq!(run().await.unwrap(), Some(id));
    assert_eq!(run().await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(run().await.unwrap(), Some(id));
    let j = jobs::get(&state.db, id).await.unwrap().unwrap();
    assert_eq!((j.status.as_str(), j.attempts), ("succeeded", 1));
    assert_eq!(waiter.seen.lock().unwrap()[1], (json!({"runs": 1}), true));

    // A wake that comes while the job still runs is not slept through.
    *waiter.plans.lock().unwrap() = vec![Plan::WakeSelfThenWait, Plan::Succeed];
    let id = queue(&state).await;
    assert_eq!(run().await.unwrap(), Some(id));
    assert_eq!(run().await.unwrap(), Some(id), "claimable at once");
    let j = jobs::get(&state.db, id).await.unwrap().unwrap();
    assert_eq!(j.status, "succeeded");

    // A parked job can be cancelled, and is never claimed again.
    *waiter.plans.lock().unwrap() = vec![Plan::Wait(500)];
    let id = queue(&state).await;
    assert_eq!(run().await.unwrap(), Some(id));
    let mut tx = state.db.begin().await.unwrap();
    assert!(jobs::cancel(&mut tx, id).await.unwrap());
    tx.commit().await.unwrap();
    assert!(!jobs::is_parked(&state.db, id).await.unwrap());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(run().await.unwrap(), None);
    assert_eq!(
        jobs::status(&state.db, id).await.unwrap().unwrap(),
        "cancelled"
    );

    // Another process hears the wake (PostgreSQL LISTEN/NOTIFY).
    if backend == common::Backend::Postgres {
        *waiter.plans.lock().unwrap() = vec![Plan::Wait(60_000), Plan::Succeed];
        let id = queue(&state).await;
        assert_eq!(run().await.unwrap(), Some(id));
        let mut listener = JobListener::connect(&state.db).await.unwrap().unwrap();
        assert!(wake(&state, id).await);
        let heard = tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .expect("no notification")
            .unwrap();
        assert_eq!(heard, Wakeup::Queued);
        assert_eq!(run().await.unwrap(), Some(id));
    }
    drop(state);
    app.finish().await;
}

#[tokio::test]
async fn a_job_waits_without_a_worker_sqlite() {
    waiting(common::Backend::Sqlite).await;
}

#[tokio::test]
async fn a_job_waits_without_a_worker_postgres() {
    waiting(common::Backend::Postgres).await;
}
