//! The worker driven directly with `run_single_iteration` and a fake prober: no sleeps, no
//! network. Covers node status rules across rescans, leases and their takeover, cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

mod common;

use futures::future::BoxFuture;
use mojo_server::db::{jobs, nodes, scan_ranges, Sql};
use mojo_server::discovery::scan::ScanJob;
use mojo_server::discovery::Prober;
use mojo_server::http::AppState;
use mojo_server::jobs::{run_single_iteration, JobContext, JobHandler, Outcome, Registry};
use mojo_server::redfish::{BmcInfo, ProbeOutcome, Scheme};
use serde_json::json;

#[derive(Default)]
struct FakeProber {
    answers: Mutex<HashMap<IpAddr, ProbeOutcome>>,
}

impl FakeProber {
    fn set(&self, ip: &str, o: ProbeOutcome) {
        self.answers.lock().unwrap().insert(ip.parse().unwrap(), o);
    }
    fn clear(&self, ip: &str) {
        self.answers
            .lock()
            .unwrap()
            .remove(&ip.parse::<IpAddr>().unwrap());
    }
}

impl Prober for FakeProber {
    fn probe(&self, ip: IpAddr, _port: u16) -> BoxFuture<'_, ProbeOutcome> {
        let o = self
            .answers
            .lock()
            .unwrap()
            .get(&ip)
            .cloned()
            .unwrap_or(ProbeOutcome::Closed {
                reason: "refused".into(),
            });
        Box::pin(async move { o })
    }
}

fn found(ip: &str) -> ProbeOutcome {
    ProbeOutcome::Redfish(BmcInfo {
        scheme: Scheme::Https,
        url: format!("https://{ip}:443"),
        vendor: Some("Dell".into()),
        product: Some("iDRAC".into()),
        uuid: Some(format!("uuid-{ip}")),
        redfish_version: Some("1.6.0".into()),
        cert_sha256: Some("ab".repeat(32)),
    })
}

async fn state() -> (AppState, common::BuiltApp) {
    state_with(&[]).await
}

async fn state_with(extra: &[&str]) -> (AppState, common::BuiltApp) {
    state_on(common::Backend::Sqlite, extra).await
}

/// A built (never run) app on `backend`: no background workers, the test is the only worker.
/// The `BuiltApp` holds the data dir and the database (dropped with it, or by `drop_state`).
async fn state_on(backend: common::Backend, extra: &[&str]) -> (AppState, common::BuiltApp) {
    let app = common::TestApp::builder(backend)
        .args(["--job-lease-secs", "3"])
        .args(extra.iter().copied())
        .build_only()
        .await;
    (app.state.clone(), app)
}

async fn drop_state(state: AppState, app: common::BuiltApp) {
    drop(state);
    app.finish().await;
}

async fn queue_scan(state: &AppState, range: i64) -> i64 {
    let mut tx = state.db.begin().await.unwrap();
    let job = jobs::enqueue(&mut tx, "scan", &json!([range]), &json!({}), None)
        .await
        .unwrap();
    assert_eq!(
        scan_ranges::start_scan(&mut tx, &[range], job)
            .await
            .unwrap(),
        vec![range]
    );
    tx.commit().await.unwrap();
    job
}

async fn node_status(state: &AppState, ip: &str) -> String {
    let row = state
        .db
        .fetch_optional(&Sql::new("SELECT status FROM nodes WHERE ip_address = $1").arg(ip))
        .await
        .unwrap()
        .unwrap();
    row.text("status").unwrap()
}

#[tokio::test]
async fn scans_rescans_and_status_rules() {
    let (state, _dir) = state().await;
    let fake = Arc::new(FakeProber::default());
    let handlers = Registry::new().register(ScanJob::with_prober(fake.clone()));
    fake.set("127.0.0.1", found("127.0.0.1"));
    fake.set("127.0.0.3", found("127.0.0.3"));
    fake.set(
        "127.0.0.2",
        ProbeOutcome::TlsError {
            message: "TLS: peer is incompatible".into(),
        },
    );

    let mut tx = state.db.begin().await.unwrap();
    let w = scan_ranges::ScanRangeWrite {
        name: Some("r".into()),
        ip_from: Some("127.0.0.1".into()),
        ip_to: Some("127.0.0.10".into()),
        ports: Some(vec![443]),
        ..Default::default()
    };
    let range = scan_ranges::insert(&mut tx, &w).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        run_single_iteration(&state, "w1", &handlers).await.unwrap(),
        None,
        "empty queue"
    );
    let job = queue_scan(&state, range).await;
    assert_eq!(
        run_single_iteration(&state, "w1", &handlers).await.unwrap(),
        Some(job)
    );
    let r = scan_ranges::get(&state.db, range).await.unwrap().unwrap();
    assert_eq!(r.status, "ready");
    assert_eq!(r.progress, json!({"scanned": 10, "total": 10, "found": 2}));
    let j = jobs::get(&state.db, job).await.unwrap().unwrap();
    assert_eq!(j.status, "succeeded");
    assert_eq!(node_status(&state, "127.0.0.1").await, "discovered");
    assert_eq!(node_status(&state, "127.0.0.2").await, "error");

    // .3 stops answering, then comes back.
    fake.clear("127.0.0.3");
    queue_scan(&state, range).await;
    run_single_iteration(&state, "w1", &handlers).await.unwrap();
    assert_eq!(node_status(&state, "127.0.0.3").await, "unreachable");
    fake.set("127.0.0.3", found("127.0.0.3"));
    queue_scan(&state, range).await;
    run_single_iteration(&state, "w1", &handlers).await.unwrap();
    assert_eq!(node_status(&state, "127.0.0.3").await, "discovered");

    // A registered node stays registered across rescans and comes back registered.
    let id = state
        .db
        .fetch_int(&Sql::new(
            "SELECT id FROM nodes WHERE ip_address = '127.0.0.1'",
        ))
        .await
        .unwrap();
    state
        .db
        .execute(&Sql::new("UPDATE nodes SET status = 'registered' WHERE id = $1").arg(id))
        .await
        .unwrap();
    queue_scan(&state, range).await;
    run_single_iteration(&state, "w1", &handlers).await.unwrap();
    assert_eq!(node_status(&state, "127.0.0.1").await, "registered");
    fake.clear("127.0.0.1");
    queue_scan(&state, range).await;
    run_single_iteration(&state, "w1", &handlers).await.unwrap();
    assert_eq!(node_status(&state, "127.0.0.1").await, "unreachable");
    fake.set("127.0.0.1", found("127.0.0.1"));
    queue_scan(&state, range).await;
    run_single_iteration(&state, "w1", &handlers).await.unwrap();
    assert_eq!(node_status(&state, "127.0.0.1").await, "registered");
    let n = nodes::get(&state.db, id).await.unwrap().unwrap();
    assert_eq!(n.cert_sha256.as_deref(), Some("ab".repeat(32).as_str()));
    let count = state
        .db
        .fetch_int(&Sql::new("SELECT COUNT(*) FROM nodes"))
        .await
        .unwrap();
    assert_eq!(count, 3, "rescans never duplicate nodes");
}

#[tokio::test]
async fn leases_expire_and_cancellation_sticks() {
    let (state, _dir) = state().await;
    let fake = Arc::new(FakeProber::default());
    let handlers = Registry::new().register(ScanJob::with_prober(fake.clone()));
    let mut tx = state.db.begin().await.unwrap();
    let w = scan_ranges::ScanRangeWrite {
        name: Some("r".into()),
        ip_from: Some("127.0.0.1".into()),
        ip_to: Some("127.0.0.2".into()),
        ports: Some(vec![443]),
        ..Default::default()
    };
    let range = scan_ranges::insert(&mut tx, &w).await.unwrap();
    tx.commit().await.unwrap();
    let job = queue_scan(&state, range).await;

    // A dead worker holds the job: nobody else takes it while the lease runs.
    let claimed = jobs::claim(&state.db, "dead", chrono::Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, job);
    assert_eq!(
        run_single_iteration(&state, "w2", &handlers).await.unwrap(),
        None
    );
    // Its lease runs out: the next worker claims it again and finishes it.
    state
        .db
        .execute(
            &Sql::new("UPDATE jobs SET lease_expires_at = $1")
                .arg(mojo_server::db::now() - chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
    assert_eq!(
        run_single_iteration(&state, "w2", &handlers).await.unwrap(),
        Some(job)
    );
    let j = jobs::get(&state.db, job).await.unwrap().unwrap();
    assert_eq!((j.status.as_str(), j.attempts), ("succeeded", 2));
    // The dead worker's writes no longer land.
    assert!(!jobs::set_progress(&state.db, job, "dead", &json!({}))
        .await
        .unwrap());
    assert_eq!(
        scan_ranges::get(&state.db, range)
            .await
            .unwrap()
            .unwrap()
            .status,
        "ready"
    );

    // A cancelled job is never run and its range is ready again.
    let job = queue_scan(&state, range).await;
    let mut tx = state.db.begin().await.unwrap();
    assert!(jobs::cancel(&mut tx, job).await.unwrap());
    scan_ranges::release_job(&mut tx, job, None).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        run_single_iteration(&state, "w2", &handlers).await.unwrap(),
        None
    );
    assert_eq!(
        jobs::status(&state.db, job)
            .await
            .unwrap()
            .map(|s| s.as_str()),
        Some("cancelled")
    );
    assert_eq!(
        scan_ranges::get(&state.db, range)
            .await
            .unwrap()
            .unwrap()
            .status,
        "ready"
    );
}

#[tokio::test]
async fn scan_rate_paces_probes() {
    let (state, _dir) = state_with(&["--scan-rate", "20"]).await;
    let fake = Arc::new(FakeProber::default());
    let handlers = Registry::new().register(ScanJob::with_prober(fake.clone()));
    let mut tx = state.db.begin().await.unwrap();
    let w = scan_ranges::ScanRangeWrite {
        name: Some("r".into()),
        ip_from: Some("127.0.0.1".into()),
        ip_to: Some("127.0.0.11".into()),
        ports: Some(vec![443]),
        ..Default::default()
    };
    let range = scan_ranges::insert(&mut tx, &w).await.unwrap();
    tx.commit().await.unwrap();
    queue_scan(&state, range).await;
    let started = std::time::Instant::now();
    run_single_iteration(&state, "w3", &handlers).await.unwrap();
    // 11 probes at 20/s: the first is immediate, the other 10 take at least 0.5 s.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    let r = scan_ranges::get(&state.db, range).await.unwrap().unwrap();
    assert_eq!(r.progress["scanned"], 11);
}

/// A job kind for the queue's own rules: panics, or stops after writing a checkpoint (as a
/// worker that died would), recording the checkpoint each attempt saw.
#[derive(Clone)]
struct Probe {
    panic: bool,
    seen: Arc<Mutex<Vec<serde_json::Value>>>,
    finished: Arc<Mutex<Vec<Option<String>>>>,
}

impl JobHandler for Probe {
    fn kind(&self) -> &'static str {
        "test_probe"
    }
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(ctx.job.checkpoint.clone());
            if self.panic {
                panic!("handler bug");
            }
            let step = ctx.job.checkpoint["step"].as_i64().unwrap_or(0) + 1;
            assert!(ctx
                .checkpoint(&json!({ "step": step }), Some(&json!({ "done": step })))
                .await
                .unwrap());
            Outcome::Stopped
        })
    }
    fn finish<'a>(
        &'a self,
        _tx: &'a mut mojo_server::db::Tx,
        _job: &'a jobs::Job,
        error: Option<&'a str>,
    ) -> BoxFuture<'a, mojo_server::db::DbResult<()>> {
        self.finished
            .lock()
            .unwrap()
            .push(error.map(str::to_string));
        Box::pin(async { Ok(()) })
    }
}

/// The registry running a probe kind, and a handle on what that probe records.
fn probe_kind(panic: bool) -> (Registry, Probe) {
    let probe = Probe {
        panic,
        seen: Default::default(),
        finished: Default::default(),
    };
    (Registry::new().register(probe.clone()), probe)
}

async fn queue_probe(state: &AppState) -> i64 {
    let mut tx = state.db.begin().await.unwrap();
    let id = jobs::enqueue(&mut tx, "test_probe", &json!([]), &json!({}), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn expire_lease(state: &AppState, id: i64) {
    state
        .db
        .execute(
            &Sql::new("UPDATE jobs SET lease_expires_at = $1 WHERE id = $2")
                .arg(mojo_server::db::now() - chrono::Duration::seconds(60))
                .arg(id),
        )
        .await
        .unwrap();
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

#[tokio::test]
async fn a_panicking_handler_fails_its_job_sqlite() {
    panicking_handler(common::Backend::Sqlite).await;
}

#[tokio::test]
async fn a_panicking_handler_fails_its_job_postgres() {
    panicking_handler(common::Backend::Postgres).await;
}

/// A handler that panics ends its job `failed` and releases the lease.
async fn panicking_handler(backend: common::Backend) {
    let (state, app) = state_on(backend, &[]).await;
    let (registry, probe) = probe_kind(true);
    let id = queue_probe(&state).await;
    assert_eq!(
        run_single_iteration(&state, "w1", &registry).await.unwrap(),
        Some(id)
    );
    let job = jobs::get(&state.db, id).await.unwrap().unwrap();
    assert_eq!(job.status, "failed");
    let error = job.error.unwrap();
    assert!(error.contains("test_probe"), "{error}");
    assert!(
        !error.contains("handler bug"),
        "panic text is for the log: {error}"
    );
    assert_eq!(lease_owner(&state, id).await, None);
    assert_eq!(probe.finished.lock().unwrap().len(), 1, "finish hook ran");
    // Nothing left to claim: the job is not retried forever.
    assert_eq!(
        run_single_iteration(&state, "w1", &registry).await.unwrap(),
        None
    );
    drop_state(state, app).await;
}

#[tokio::test]
async fn a_reclaimed_job_resumes_from_its_checkpoint_sqlite() {
    reclaimed_job(common::Backend::Sqlite).await;
}

#[tokio::test]
async fn a_reclaimed_job_resumes_from_its_checkpoint_postgres() {
    reclaimed_job(common::Backend::Postgres).await;
}

/// A re-claimed job sees the checkpoint its last attempt wrote; attempts are capped.
async fn reclaimed_job(backend: common::Backend) {
    let (state, app) = state_on(backend, &["--job-max-attempts", "3"]).await;
    let (registry, probe) = probe_kind(false);
    let id = queue_probe(&state).await;
    for (attempt, owner) in ["w1", "w2", "w3"].iter().enumerate() {
        assert_eq!(
            run_single_iteration(&state, owner, &registry)
                .await
                .unwrap(),
            Some(id)
        );
        let job = jobs::get(&state.db, id).await.unwrap().unwrap();
        assert_eq!(job.status, "running", "the worker 'died' holding the lease");
        assert_eq!(job.attempts, attempt as i64 + 1);
        assert_eq!(job.checkpoint, json!({ "step": attempt + 1 }));
        assert_eq!(job.progress, json!({ "done": attempt + 1 }));
        // Not claimable while the lease holds.
        assert_eq!(
            run_single_iteration(&state, "other", &registry)
                .await
                .unwrap(),
            None
        );
        expire_lease(&state, id).await;
    }
    assert_eq!(
        *probe.seen.lock().unwrap(),
        vec![json!({}), json!({ "step": 1 }), json!({ "step": 2 })],
        "each attempt resumed from the checkpoint of the one before"
    );
    // The fourth claim exceeds the cap: failed without running, finish hook called.
    assert_eq!(
        run_single_iteration(&state, "w4", &registry).await.unwrap(),
        Some(id)
    );
    let job = jobs::get(&state.db, id).await.unwrap().unwrap();
    assert_eq!(job.status, "failed");
    assert!(job.error.unwrap().contains("3 attempts"));
    assert_eq!(probe.seen.lock().unwrap().len(), 3);
    assert_eq!(probe.finished.lock().unwrap().len(), 1);
    assert_eq!(lease_owner(&state, id).await, None);
    drop_state(state, app).await;
}
