//! Continuous discovery and zero-touch onboarding through HTTP against emulated BMCs: the
//! scan scheduler (`rescan_interval`, `next_scan_at`, one scan per due time across replicas)
//! and ranges that register what they find (`auth_profile`, `auto_register`, `resource_pool`),
//! lockout-safe. Address blocks 127.74.x.x.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod lab;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lab::Lab;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The scheduler tick of these tests' servers.
const FAST_TICK: [&str; 2] = ["--scheduler-tick-ms", "100"];

/// An address block of this file for one test on one backend.
fn block(app: &common::TestApp, base: u8) -> u8 {
    match app.backend {
        common::Backend::Sqlite => base,
        common::Backend::Postgres => base + 1,
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

async fn spawn_fast(backend: common::Backend) -> common::TestApp {
    common::TestApp::builder(backend)
        .args(FAST_TICK)
        .spawn()
        .await
}

async fn profile(app: &common::TestApp, name: &str, creds: &[(&str, &str)]) -> i64 {
    let (s, p) = app
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": name, "bmc": "redfish"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["id"].as_i64().unwrap();
    for (u, pw) in creds {
        add_credential(app, id, u, pw).await;
    }
    id
}

async fn add_credential(app: &common::TestApp, profile: i64, user: &str, password: &str) {
    let (s, c) = app
        .post(
            &format!("/api/node_discovery/auth_profile/{profile}/credentials/"),
            json!({"username": user, "password": password}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
}

async fn pool(app: &common::TestApp, name: &str) -> i64 {
    let (s, p) = app
        .post("/api/pool/", json!({"name": name, "group": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    p["id"].as_i64().unwrap()
}

async fn create_range(app: &common::TestApp, body: Value) -> Value {
    let (s, r) = app.post("/api/node_discovery/scan_range/", body).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r
}

async fn range(app: &common::TestApp, id: i64) -> Value {
    let (s, r) = app
        .get(&format!("/api/node_discovery/scan_range/{id}/"))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

/// Polls (GETs only) until the range has finished a scan that ended after `after`.
async fn wait_scanned(app: &common::TestApp, id: i64, after: Option<DateTime<Utc>>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let r = range(app, id).await;
        let done = r["status"] != "scanning"
            && !r["last_scan_at"].is_null()
            && after.is_none_or(|a| time(&r["last_scan_at"]) > a);
        if done {
            return r;
        }
        assert!(Instant::now() < deadline, "range {id} was not scanned: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scans a range by hand and waits for the scan's end.
async fn scan(app: &common::TestApp, id: i64) -> Value {
    let last = range(app, id).await;
    let after = (!last["last_scan_at"].is_null()).then(|| time(&last["last_scan_at"]));
    let (s, r) = app
        .post(
            "/api/node_discovery/run_scan/",
            json!({"scan_ranges": [id]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    wait_scanned(app, id, after).await
}

async fn scan_jobs(app: &common::TestApp) -> Vec<Value> {
    let (s, j) = app.get("/api/job/?kind=scan&ordering=id").await;
    assert_eq!(s, StatusCode::OK, "{j}");
    j["results"].as_array().unwrap().clone()
}

async fn nodes_of(app: &common::TestApp, range: i64) -> Vec<Value> {
    let (s, r) = app
        .get(&format!(
            "/api/node/?scan_range={range}&ordering=ip_address"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["results"].as_array().unwrap().clone()
}

fn node_at<'a>(nodes: &'a [Value], ip: &str) -> &'a Value {
    nodes
        .iter()
        .find(|n| n["ip_address"] == ip)
        .unwrap_or_else(|| panic!("no node at {ip}: {nodes:?}"))
}

/// `(failed_logins, lockouts triggered, sessions open)` of every BMC of the lab, by slot.
async fn login_counters(lab: &Lab) -> Vec<(usize, i64, i64, i64)> {
    let mut out = Vec::new();
    for s in lab.bmcs() {
        let st = lab.state_of(s).await.unwrap();
        out.push((
            s.idx,
            st["failed_logins"].as_i64().unwrap(),
            st["lockout"]["times_triggered"].as_i64().unwrap(),
            st["sessions_open"].as_i64().unwrap(),
        ));
    }
    out
}

both!(
    rescan_interval_and_onboarding_fields_are_validated,
    |app: common::TestApp| async move {
        let b = block(&app, 30);
        let ip = format!("127.74.{b}.1");
        let base = json!({"name": "Rack", "ip_from": ip, "ip_to": ip, "ports": [9443]});
        let with = |extra: Value| {
            let mut body = base.clone();
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        for (extra, field, msg) in [
            (
                json!({"rescan_interval": 299}),
                "rescan_interval",
                "Ensure this value is greater than or equal to 300.",
            ),
            (
                json!({"rescan_interval": "soon"}),
                "rescan_interval",
                "A valid integer is required.",
            ),
            (
                json!({"rescan_interval": 400 * 86400}),
                "rescan_interval",
                "Ensure this value is less than or equal to 31536000.",
            ),
            (
                json!({"auth_profile": 999}),
                "auth_profile",
                "Invalid pk \"999\" - object does not exist.",
            ),
            (
                json!({"resource_pool": 999}),
                "resource_pool",
                "Invalid pk \"999\" - object does not exist.",
            ),
            (
                json!({"auto_register": "maybe"}),
                "auto_register",
                "Must be a valid boolean.",
            ),
        ] {
            let (s, e) = app
                .post("/api/node_discovery/scan_range/", with(extra.clone()))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{extra}: {e}");
            assert_eq!(e, json!({ field: [msg] }), "{extra}");
        }
        // Defaults: scanned only when asked, no onboarding.
        let r = create_range(&app, base.clone()).await;
        assert_eq!(r["rescan_interval"], Value::Null, "{r}");
        assert_eq!(r["next_scan_at"], Value::Null, "{r}");
        assert_eq!(r["auth_profile"], Value::Null, "{r}");
        assert_eq!(r["auto_register"], false, "{r}");
        assert_eq!(r["resource_pool"], Value::Null, "{r}");
        let id = r["id"].as_i64().unwrap();
        // Given an interval, the range is due at once; read-only next_scan_at is ignored.
        let before = Utc::now() - chrono::Duration::seconds(1);
        let (s, r) = app
            .patch(
                &format!("/api/node_discovery/scan_range/{id}/"),
                json!({"rescan_interval": 300, "next_scan_at": "2000-01-01T00:00:00Z"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["rescan_interval"], 300);
        let next = time(&r["next_scan_at"]);
        assert!(
            next >= before && next <= Utc::now() + chrono::Duration::seconds(1),
            "{r}"
        );
        let (s, e) = app
            .patch(
                &format!("/api/node_discovery/scan_range/{id}/"),
                json!({"rescan_interval": 60}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(
            e,
            json!({"rescan_interval": ["Ensure this value is greater than or equal to 300."]})
        );
        // Without an interval it has no next scan.
        let (s, r) = app
            .patch(
                &format!("/api/node_discovery/scan_range/{id}/"),
                json!({"rescan_interval": null}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["next_scan_at"], Value::Null, "{r}");
        // Onboarding settings round-trip; deleting the profile or the pool unsets them.
        let prof = profile(&app, "Onboard", &[("root", "calvin")]).await;
        let p = pool(&app, "Landing").await;
        let (s, r) = app
            .patch(
                &format!("/api/node_discovery/scan_range/{id}/"),
                json!({"auth_profile": prof, "auto_register": true, "resource_pool": p}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(
            (&r["auth_profile"], &r["auto_register"], &r["resource_pool"]),
            (&json!(prof), &json!(true), &json!(p))
        );
        let (s, _) = app.delete(&format!("/api/pool/{p}/")).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = app
            .delete(&format!("/api/node_discovery/auth_profile/{prof}/"))
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let r = range(&app, id).await;
        assert_eq!(r["auth_profile"], Value::Null, "{r}");
        assert_eq!(r["resource_pool"], Value::Null, "{r}");
        app
    }
);

/// A range with an interval, a profile (a wrong credential first), auto_register and a pool
/// turns a fresh lab that locks accounts after 3 failures into registered servers in the pool,
/// with no call after the range was created.
async fn fresh_lab_is_onboarded(backend: common::Backend) {
    let app = spawn_fast(backend).await;
    let b = block(&app, 10);
    let lab = Lab::start(
        "start",
        4,
        &[
            "--base",
            &format!("127.74.{b}.1"),
            "--port",
            "9443",
            "--persona",
            "dell",
            "--lockout",
            "3",
        ],
    );
    let prof = profile(&app, "Rack A", &[("root", "wrong"), ("root", "calvin")]).await;
    let p = pool(&app, "Rack A servers").await;
    let created = create_range(
        &app,
        json!({
            "name": "Rack A", "ip_from": format!("127.74.{b}.1"), "ip_to": format!("127.74.{b}.4"),
            "ports": [9443], "rescan_interval": 300, "auth_profile": prof,
            "auto_register": true, "resource_pool": p,
        }),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    // From here on only reads.
    let r = wait_scanned(&app, id, None).await;
    assert_eq!(r["status"], "ready", "{r}");
    assert_eq!(
        r["progress"],
        json!({"scanned": 4, "total": 4, "found": 4, "registered": 4, "registration_failed": 0}),
        "{r}"
    );
    let jobs = scan_jobs(&app).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        jobs[0]["created_by"],
        Value::Null,
        "the scheduler started it"
    );
    assert_eq!(jobs[0]["status"], "succeeded", "{jobs:?}");
    assert_eq!(jobs[0]["progress"]["registered"], 4, "{jobs:?}");
    assert_eq!(jobs[0]["progress"]["registration_failed"], 0, "{jobs:?}");
    // Next due one interval after the scan started.
    let started = time(&jobs[0]["created_at"]);
    let next = time(&r["next_scan_at"]);
    let gap = (next - started).num_milliseconds();
    assert!((299_000..=301_000).contains(&gap), "{gap} ms: {r} {jobs:?}");

    let nodes = nodes_of(&app, id).await;
    assert_eq!(nodes.len(), 4);
    for n in &nodes {
        assert_eq!(n["status"], "registered", "{n}");
        assert_eq!(n["auth_profile"], prof, "{n}");
        assert_eq!(n["last_error"], Value::Null, "{n}");
    }
    let (_, detail) = app.get(&format!("/api/pool/{p}/")).await;
    assert_eq!(detail["servers_count"], 4, "{detail}");
    for (idx, failed, lockouts, open) in login_counters(&lab).await {
        assert_eq!(failed, 1, "slot {idx}: the wrong credential was tried once");
        assert_eq!(lockouts, 0, "slot {idx} locked out");
        assert_eq!(open, 0, "slot {idx} has open sessions");
    }
    drop(lab);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fresh_lab_is_onboarded() {
    fresh_lab_is_onboarded(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fresh_lab_is_onboarded() {
    fresh_lab_is_onboarded(common::Backend::Postgres).await;
}

/// On a mixed lab with lockout (slots 2 and 8 take other credentials, slot 3 is plain HTTP),
/// refused nodes are not tried again on the next scan; a credential added to the profile makes
/// the next scan try them once more, and they register with it.
async fn refused_nodes_wait_for_a_credential_change(backend: common::Backend) {
    let app = spawn_fast(backend).await;
    let b = block(&app, 20);
    let lab = Lab::start(
        "start-mixed",
        10,
        &[
            "--base",
            &format!("127.74.{b}.1"),
            "--port",
            "9443",
            "--persona",
            "dell",
            "--lockout",
            "3",
        ],
    );
    let main = lab.slot(0).clone();
    let alt = lab.slot(2).clone();
    let prof = profile(&app, "Mixed", &[(&main.user, &main.password)]).await;
    let r = create_range(
        &app,
        json!({
            "name": "Mixed", "ip_from": format!("127.74.{b}.1"), "ip_to": format!("127.74.{b}.10"),
            "ports": [9443], "auth_profile": prof, "auto_register": true,
        }),
    )
    .await;
    let id = r["id"].as_i64().unwrap();
    assert_eq!(
        r["next_scan_at"],
        Value::Null,
        "no interval: only when asked"
    );

    let r = scan(&app, id).await;
    // Found: slots 0,1,2,3,6,8,9; registered 0,1,6,9; refused 2,8; plain HTTP 3.
    assert_eq!(r["progress"]["found"], 7, "{r}");
    assert_eq!(r["progress"]["registered"], 4, "{r}");
    assert_eq!(r["progress"]["registration_failed"], 3, "{r}");
    let nodes = nodes_of(&app, id).await;
    for s in lab.bmcs() {
        let n = node_at(&nodes, &s.ip);
        if matches!(s.idx, 2 | 3 | 8) {
            assert_eq!(n["status"], "discovered", "{n}");
            assert!(n["last_error"].is_string(), "{n}");
        } else {
            assert_eq!(n["status"], "registered", "{n}");
        }
    }
    let expect_failed = |idx: usize, n: i64| if matches!(idx, 2 | 8) { n } else { 0 };
    for (idx, failed, lockouts, open) in login_counters(&lab).await {
        assert_eq!(failed, expect_failed(idx, 1), "slot {idx}");
        assert_eq!(lockouts, 0, "slot {idx}");
        assert_eq!(open, 0, "slot {idx}");
    }

    // The next scan tries nobody again.
    let r = scan(&app, id).await;
    assert_eq!(r["progress"]["registered"], 0, "{r}");
    assert_eq!(r["progress"]["registration_failed"], 0, "{r}");
    for (idx, failed, lockouts, _) in login_counters(&lab).await {
        assert_eq!(failed, expect_failed(idx, 1), "slot {idx} was tried again");
        assert_eq!(lockouts, 0, "slot {idx}");
    }

    // A credential added: the next scan tries the refused nodes once more, each credential once.
    add_credential(&app, prof, &alt.user, &alt.password).await;
    let r = scan(&app, id).await;
    assert_eq!(r["progress"]["registered"], 2, "{r}");
    assert_eq!(r["progress"]["registration_failed"], 1, "plain HTTP: {r}");
    let nodes = nodes_of(&app, id).await;
    for s in lab.bmcs() {
        let n = node_at(&nodes, &s.ip);
        let want = if s.idx == 3 {
            "discovered"
        } else {
            "registered"
        };
        assert_eq!(n["status"], want, "{n}");
    }
    for (idx, failed, lockouts, open) in login_counters(&lab).await {
        assert_eq!(failed, expect_failed(idx, 2), "slot {idx}");
        assert_eq!(lockouts, 0, "slot {idx}");
        assert_eq!(open, 0, "slot {idx}");
    }
    drop(lab);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refused_nodes_wait_for_a_credential_change() {
    refused_nodes_wait_for_a_credential_change(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refused_nodes_wait_for_a_credential_change() {
    refused_nodes_wait_for_a_credential_change(common::Backend::Postgres).await;
}

/// Two server processes on one PostgreSQL database, both running the scheduler: each due
/// time gives exactly one scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas_scan_each_due_range_once() {
    let first = spawn_fast(common::Backend::Postgres).await;
    let second = common::TestApp::builder(common::Backend::Postgres)
        .same_database_as(&first)
        .args(["--scheduler-tick-ms", "20"])
        .spawn()
        .await;
    let lab = Lab::start(
        "start",
        3,
        &[
            "--base",
            "127.74.40.1",
            "--port",
            "9443",
            "--persona",
            "dell",
        ],
    );
    let gets = |lab: &Lab| {
        let slots: Vec<lab::Slot> = lab.bmcs().cloned().collect();
        async move {
            let mut n = Vec::new();
            for s in &slots {
                let st = lab::lab_state(s).await.unwrap();
                n.push(st["requests"]["GET"].as_i64().unwrap_or(0));
            }
            n
        }
    };
    let r = create_range(
        &first,
        json!({"name": "Twice", "ip_from": "127.74.40.1", "ip_to": "127.74.40.3",
               "ports": [9443], "rescan_interval": 300}),
    )
    .await;
    let id = r["id"].as_i64().unwrap();
    let done = wait_scanned(&second, id, None).await;
    assert_eq!(done["progress"]["found"], 3, "{done}");
    // Many ticks of both schedulers later, still one scan.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let jobs = scan_jobs(&first).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let once = gets(&lab).await;
    assert!(once.iter().all(|n| *n > 0), "{once:?}");

    // A changed interval makes the range due again at once: one more scan, not two.
    let (s, r) = second
        .patch(
            &format!("/api/node_discovery/scan_range/{id}/"),
            json!({"rescan_interval": 600}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let done = wait_scanned(&first, id, Some(time(&done["last_scan_at"]))).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let jobs = scan_jobs(&second).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let twice = gets(&lab).await;
    let doubled: Vec<i64> = once.iter().map(|n| n * 2).collect();
    assert_eq!(twice, doubled, "service roots asked once per scan");
    let gap = (time(&done["next_scan_at"]) - time(&jobs[1]["created_at"])).num_milliseconds();
    assert!((599_000..=601_000).contains(&gap), "{gap} ms");
    drop(lab);
    second.finish().await;
    first.finish().await;
}

/// A BMC onboarded at a new address whose server (same identity) is already in another pool:
/// the server stays there, and the node's `last_error` says so.
async fn a_server_in_another_pool_stays_there(backend: common::Backend) {
    let app = spawn_fast(backend).await;
    let (old_ip, new_ip) = (
        format!("127.74.{}.1", block(&app, 50)),
        format!("127.74.{}.1", block(&app, 52)),
    );
    let lab_args = |ip: &str| {
        vec![
            "--base".to_string(),
            ip.to_string(),
            "--port".into(),
            "9443".into(),
            "--persona".into(),
            "dell".into(),
            "--seed".into(),
            "onboard-move".into(),
        ]
    };
    let prof = profile(&app, "Moved", &[("root", "calvin")]).await;
    let other = pool(&app, "Other").await;
    let landing = pool(&app, "Landing").await;
    let old = {
        let args = lab_args(&old_ip);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Lab::start("start", 1, &args)
    };
    let by_hand = create_range(
        &app,
        json!({"name": "Old", "ip_from": old_ip, "ip_to": old_ip, "ports": [9443]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let r = scan(&app, by_hand).await;
    assert!(
        r["progress"].get("registered").is_none(),
        "no onboarding: {r}"
    );
    let node = nodes_of(&app, by_hand).await[0]["id"].as_i64().unwrap();
    let (s, n) = app
        .post(
            &format!("/api/node/{node}/register/"),
            json!({"auth_profile": prof}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{n}");
    let server = n["server"].as_i64().unwrap();
    let (s, p) = app
        .post(
            &format!("/api/pool/{other}/assign_servers/"),
            json!({"servers": [server]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    drop(old);
    // The old address stops answering: a rescan marks its node unreachable, so the server may
    // move (a server whose node is still registered is refused by the identity rules).
    scan(&app, by_hand).await;
    let old_node = nodes_of(&app, by_hand).await[0].clone();
    assert_eq!(old_node["status"], "unreachable", "{old_node}");

    // The same BMC answers at a new address, inside a range that onboards into another pool.
    let new = {
        let args = lab_args(&new_ip);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Lab::start("start", 1, &args)
    };
    let onboarding = create_range(
        &app,
        json!({"name": "New", "ip_from": new_ip, "ip_to": new_ip, "ports": [9443],
               "auth_profile": prof, "auto_register": true, "resource_pool": landing}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let r = scan(&app, onboarding).await;
    assert_eq!(r["progress"]["registered"], 1, "{r}");
    let n = nodes_of(&app, onboarding).await[0].clone();
    assert_eq!(n["status"], "registered", "{n}");
    assert_eq!(n["server"], server, "same identity, same server: {n}");
    let msg = n["last_error"].as_str().unwrap_or_else(|| panic!("{n}"));
    assert!(
        msg.contains(&format!("Server {server} ("))
            && msg.contains(&format!("is already in pool {other} (Other).")),
        "{msg}"
    );
    let (_, s) = app.get(&format!("/api/server/{server}/")).await;
    assert_eq!(s["resource_pool"], other, "{s}");
    let (_, l) = app.get(&format!("/api/pool/{landing}/")).await;
    assert_eq!(l["servers_count"], 0, "{l}");
    assert_eq!(new.open_sessions().await, 0);
    drop(new);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_server_in_another_pool_stays_there() {
    a_server_in_another_pool_stays_there(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_server_in_another_pool_stays_there() {
    a_server_in_another_pool_stays_there(common::Backend::Postgres).await;
}
