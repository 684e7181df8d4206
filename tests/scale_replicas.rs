//! Two `mojo-server` processes on one PostgreSQL database share the work with no other
//! coordination: a scan of 100 lab BMCs probes each address once, registrations sent to both in
//! parallel register each BMC once, a job queued on a process whose only worker is busy starts
//! on the other (woken by LISTEN/NOTIFY, not the poll), and SIGKILL of the process running a
//! scan leaves the other to finish it once the lease expires. Lab: 127.76.1.1-100. And two
//! processes started together on one empty database (replicas at first start) both come up
//! with exactly one `admin`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod lab;
mod procs;

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use procs::{Proc, Spec};
use reqwest::StatusCode;
use serde_json::{json, Value};

const N: usize = 100;

/// The two tests run one after the other: the scale test's timings assume the machine to itself.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn requests(state: &Value) -> i64 {
    state["requests"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_i64).sum())
        .unwrap_or(0)
}

async fn reset(lab: &lab::Lab) {
    let http = lab::lab_http().unwrap();
    for s in lab.bmcs() {
        let r = http
            .post(format!("{}/lab/reset", s.base_url()))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
}

async fn range(p: &Proc, name: &str, from: &str, to: &str) -> i64 {
    let (s, r) = p
        .post(
            "/api/node_discovery/scan_range/",
            json!({"name": name, "ip_from": from, "ip_to": to, "ports": [9443]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r["id"].as_i64().unwrap()
}

/// Starts a scan of `range` through `p`; returns the job id.
async fn run_scan(p: &Proc, range: i64) -> i64 {
    let (s, r) = p
        .post(
            "/api/node_discovery/run_scan/",
            json!({"scan_ranges": [range]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let jobs = p.all("/api/job/?kind=scan&ordering=-id").await;
    jobs[0]["id"].as_i64().unwrap()
}

async fn job_done(p: &Proc, job: i64, secs: u64) -> Value {
    p.wait_for(&format!("/api/job/{job}/"), secs, |j| {
        ["succeeded", "failed", "cancelled"].contains(&j["status"].as_str().unwrap_or(""))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_processes_share_scans_registrations_and_crashed_jobs() {
    let _serial = SERIAL.lock().await;
    let db = common::PgDatabase::create().await;
    let lab = lab::Lab::start(
        "start",
        N,
        &[
            "--base",
            "127.76.1.1",
            "--port",
            "9443",
            "--single-process",
            "--persona",
            "dell",
            "--delay-ms",
            "100",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = |name: &str, workers: &str, scan: &str| {
        Spec::new(&dir.path().join(name), Some(&db.url()))
            .env("MOJO_JOB_LEASE_SECS", "3")
            .env("MOJO_WORKERS", workers)
            .env("MOJO_SCAN_CONCURRENCY", scan)
            .env("MOJO_PROBE_TIMEOUT_MS", "5000")
    };
    // A scans slowly (one address at a time), so its scan is still running when it is killed.
    let spec_a = spec("a", "1", "1");
    let spec_b = spec("b", "2", "8");
    let mut a = Proc::start(&spec_a, "a").await;
    let mut b = Proc::start(&spec_b, "b").await;

    // What one probe of one address costs at the lab.
    let one = range(&a, "one", "127.76.1.1", "127.76.1.1").await;
    job_done(&a, run_scan(&a, one).await, 60).await;
    let per_probe = requests(&lab::lab_state(lab.slot(0)).await.unwrap());
    assert!(per_probe > 0);
    reset(&lab).await;

    // 1. A scan of the range queued on B: every address probed exactly once across both.
    let all = range(&a, "all", "127.76.1.1", "127.76.1.100").await;
    let job = run_scan(&b, all).await;
    let j = job_done(&a, job, 300).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert!(
        a.claimed(job) != b.claimed(job),
        "claimed by exactly one process"
    );
    for s in lab.bmcs() {
        let st = lab::lab_state(s).await.unwrap();
        assert_eq!(
            requests(&st),
            per_probe,
            "{} probed more than once: {st}",
            s.ip
        );
    }
    let nodes = a.all(&format!("/api/node/?scan_range={all}")).await;
    assert_eq!(nodes.len(), N);

    // 2. Each node registered through both processes at once: one server per BMC.
    let (s, p) = a
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": "replicas", "bmc": "redfish"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let prof = p["id"].as_i64().unwrap();
    let (s, c) = a
        .post(
            &format!("/api/node_discovery/auth_profile/{prof}/credentials/"),
            json!({"username": "root", "password": "calvin"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    // Both calls for one node go out together (that is the race under test); 16 nodes are in
    // flight at a time so the lab's 100 ms per request measures races, not the lab's throughput.
    let pairs = nodes.iter().map(|n| {
        let path = format!("/api/node/{}/register/", n["id"]);
        let (a, b) = (&a, &b);
        async move {
            let body = json!({"auth_profile": prof});
            let (x, y) = tokio::join!(a.post(&path, body.clone()), b.post(&path, body));
            [x, y]
        }
    });
    let answers: Vec<_> = futures::stream::iter(pairs)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut ok = 0;
    for (s, r) in &answers {
        assert!(!s.is_server_error(), "{s} {r}");
        ok += usize::from(*s == StatusCode::OK);
    }
    let refused: Vec<String> = answers
        .iter()
        .filter(|(s, r)| *s != StatusCode::OK && !r.to_string().contains("is being registered"))
        .map(|(s, r)| format!("{s} {r}"))
        .take(6)
        .collect();
    assert!(
        ok >= N,
        "{ok} registrations answered 200; some refusals: {refused:?}"
    );
    let servers = a.all("/api/server/").await;
    assert_eq!(servers.len(), N, "one server per BMC");
    let nodes = b.all(&format!("/api/node/?scan_range={all}")).await;
    let mut with_server: Vec<i64> = nodes
        .iter()
        .map(|n| {
            assert_eq!(n["status"], "registered", "{n}");
            n["server"].as_i64().unwrap()
        })
        .collect();
    with_server.sort_unstable();
    with_server.dedup();
    assert_eq!(with_server.len(), N, "nodes share a server");

    // 3. A's only worker runs a long scan (B is down while it is claimed) ...
    b.stop();
    reset(&lab).await;
    let long = run_scan(&a, all).await;
    a.wait_for(&format!("/api/job/{long}/"), 60, |j| {
        j["status"] == "running" && j["progress"]["scanned"].as_i64().unwrap_or(0) > 0
    })
    .await;
    b = Proc::start(&spec_b, "b").await;
    // ... so a job queued on A is started by B, woken by NOTIFY.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let queued_at = Instant::now();
    let quick = run_scan(&a, one).await;
    let q = a
        .wait_for(&format!("/api/job/{quick}/"), 30, |j| {
            !j["started_at"].is_null()
        })
        .await;
    let waited = queued_at.elapsed();
    let latency = time(&q["started_at"]) - time(&q["created_at"]);
    println!(
        "job queued on A started on B after {} ms (seen by the test after {} ms; poll interval 1000 ms)",
        latency.num_milliseconds(),
        waited.as_millis()
    );
    job_done(&a, quick, 60).await;
    assert!(b.claimed(quick), "B ran job {quick}: {}", b.logs());
    assert!(!a.claimed(quick), "A ran job {quick}");

    // 4. SIGKILL of A mid-scan: B takes the scan over once the lease expires and finishes it.
    let before = a.get(&format!("/api/job/{long}/")).await.1;
    assert_eq!(before["status"], "running", "{before}");
    a.kill();
    let j = job_done(&b, long, 300).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert!(b.claimed(long), "B took the scan over");
    let (_, r) = b
        .get(&format!("/api/node_discovery/scan_range/{all}/"))
        .await;
    assert_eq!(r["status"], "ready", "{r}");
    assert_eq!(
        b.all(&format!("/api/node/?scan_range={all}")).await.len(),
        N
    );
    assert_eq!(b.all("/api/server/").await.len(), N);

    b.stop();
    drop(a);
    drop(lab);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_at_first_start_postgres() {
    let _serial = SERIAL.lock().await;
    // A few rounds: the race is between two processes, so one round may not hit it.
    for _ in 0..3 {
        let db = common::PgDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let spec_a = Spec::new(&dir.path().join("a"), Some(&db.url()));
        let spec_b = Spec::new(&dir.path().join("b"), Some(&db.url()));
        // Both spawn in the first poll of the join (nothing is awaited before the spawn), so
        // they bootstrap the empty database at the same time; each then logs in as admin.
        let (a, b) = tokio::join!(Proc::start(&spec_a, "a"), Proc::start(&spec_b, "b"));
        let mut admin_ids = Vec::new();
        for p in [&a, &b] {
            let (s, users) = p.get("/api/users/?username=admin").await;
            assert_eq!(s, StatusCode::OK, "{users}");
            let list = users
                .get("results")
                .and_then(|v| v.as_array())
                .or_else(|| users.as_array())
                .cloned()
                .unwrap();
            let admins: Vec<_> = list.iter().filter(|u| u["username"] == "admin").collect();
            assert_eq!(admins.len(), 1, "{users}");
            admin_ids.push(admins[0]["id"].clone());
        }
        assert_eq!(admin_ids[0], admin_ids[1]);
        drop((a, b));
        db.drop_now().await;
    }
}
