//! The worker driven directly with `run_single_iteration` and a fake prober: no sleeps, no
//! network. Covers node status rules across rescans, leases and their takeover, cancellation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use clap::Parser;
use futures::future::BoxFuture;
use mojo_server::app::App;
use mojo_server::config::Cli;
use mojo_server::db::{jobs, nodes, scan_ranges, Sql};
use mojo_server::discovery::scan::ScanJob;
use mojo_server::discovery::Prober;
use mojo_server::http::AppState;
use mojo_server::jobs::{run_single_iteration, JobHandler};
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

async fn state() -> (AppState, tempfile::TempDir) {
    state_with(&[]).await
}

async fn state_with(extra: &[&str]) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "mojo-server",
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "off",
        "--discovery-allowed-networks",
        "127.0.0.0/8",
        "--job-lease-secs",
        "3",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut config = Cli::parse_from(args).config;
    config.injected.admin_password = Some("pw-of-the-admin".into());
    config.injected.secret_key = Some("test-jwt-secret-0123456789abcdef".into());
    config.injected.credential_key =
        Some("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into());
    // Built, never run: no background workers, the test is the only worker.
    let app = App::build(config).await.unwrap();
    (app.state.clone(), dir)
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
    let handlers: Vec<Arc<dyn JobHandler>> = vec![Arc::new(ScanJob::with_prober(fake.clone()))];
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
    let handlers: Vec<Arc<dyn JobHandler>> = vec![Arc::new(ScanJob::with_prober(fake.clone()))];
    let mut tx = state.db.begin().await.unwrap();
    let w = scan_ranges::ScanRangeWrite {
        name: Some("r".into()),
        ip_from: Some("127.0.0.1".into()),
        ip_to: Some("127.0.0.2".into()),
        ports: Some(vec![443]),
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
        jobs::status(&state.db, job).await.unwrap().as_deref(),
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
    let handlers: Vec<Arc<dyn JobHandler>> = vec![Arc::new(ScanJob::with_prober(fake.clone()))];
    let mut tx = state.db.begin().await.unwrap();
    let w = scan_ranges::ScanRangeWrite {
        name: Some("r".into()),
        ip_from: Some("127.0.0.1".into()),
        ip_to: Some("127.0.0.11".into()),
        ports: Some(vec![443]),
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
