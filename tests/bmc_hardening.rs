//! Hostile clients, odd BMCs and careless operators (issue 9): pool assignment scope, server
//! identity, allowed networks at scan and registration, BMC-supplied references, BMCs without
//! sessions, interrupted registrations. Through the HTTP API on both backends; address blocks
//! 127.72.10.x-127.72.39.x.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod adversary;
mod common;
mod lab;

use std::time::{Duration, Instant};

use adversary::{Adversary, Spy, Tamper};
use common::{Backend, TestApp};
use lab::Lab;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The address block of one test on one backend: `base` on SQLite, `base + 1` on PostgreSQL.
fn block(backend: Backend, base: u8) -> u8 {
    match backend {
        Backend::Sqlite => base,
        Backend::Postgres => base + 1,
    }
}

/// `n` lab BMCs on port 9443 from `127.72.<b>.<first>`, with the lab's `extra` arguments.
fn lab_at(b: u8, first: u8, n: usize, extra: &[&str]) -> Lab {
    let base = format!("127.72.{b}.{first}");
    let args = [&["--base", base.as_str(), "--port", "9443"], extra].concat();
    Lab::start("start", n, &args)
}

async fn wait_scan(app: &TestApp, range: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (s, r) = app
            .get(&format!("/api/node_discovery/scan_range/{range}/"))
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        if r["status"] != "scanning" {
            return r;
        }
        assert!(Instant::now() < deadline, "scan did not end: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_range(app: &TestApp, from: &str, to: &str, port: u16) -> i64 {
    let (s, r) = app
        .post(
            "/api/node_discovery/scan_range/",
            json!({"name": format!("R {from}"), "ip_from": from, "ip_to": to, "ports": [port]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r["id"].as_i64().unwrap()
}

async fn scan(app: &TestApp, range: i64) -> Value {
    let (s, r) = app
        .post(
            "/api/node_discovery/run_scan/",
            json!({"scan_ranges": [range]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    wait_scan(app, range).await
}

async fn nodes_of(app: &TestApp, range: i64) -> Vec<Value> {
    let (s, r) = app
        .get(&format!(
            "/api/node/?scan_range={range}&ordering=ip_address"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["results"].as_array().unwrap().clone()
}

async fn profile(app: &TestApp, creds: &[(&str, &str)]) -> i64 {
    let (s, p) = app
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": "Hardening", "bmc": "redfish"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["id"].as_i64().unwrap();
    for (u, pw) in creds {
        let (s, c) = app
            .post(
                &format!("/api/node_discovery/auth_profile/{id}/credentials/"),
                json!({"username": u, "password": pw}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
    }
    id
}

async fn register(app: &TestApp, node: i64, profile: i64) -> (StatusCode, Value) {
    app.post(
        &format!("/api/node/{node}/register/"),
        json!({"auth_profile": profile}),
    )
    .await
}

/// Scans one address and returns its node id.
async fn node_at(app: &TestApp, ip: &str, port: u16) -> i64 {
    let range = create_range(app, ip, ip, port).await;
    let r = scan(app, range).await;
    let nodes = nodes_of(app, range).await;
    assert_eq!(nodes.len(), 1, "{r} {nodes:?}");
    nodes[0]["id"].as_i64().unwrap()
}

async fn wait_no_sessions(lab: &Lab) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while lab.open_sessions().await != 0 {
        assert!(Instant::now() < deadline, "a BMC session was left open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn http_app(backend: Backend) -> TestApp {
    TestApp::builder(backend)
        .args(["--allow-http-bmc", "true"])
        .spawn()
        .await
}

/// Item 4: references a BMC hands out that resolve to another host are refused; the session
/// token never reaches that host.
async fn evil_references(backend: Backend) {
    let b = block(backend, 10);
    let app = http_app(backend).await;
    let lab = lab_at(b, 1, 1, &["--http", "--persona", "dell"]);
    let spy = Spy::start(&format!("127.72.{b}.3:9443")).await;
    let adv = Adversary::start(
        &format!("127.72.{b}.2:9443"),
        &lab.slot(0).base_url(),
        Tamper::EvilReferences {
            spy: spy.addr.to_string(),
        },
    )
    .await;
    let node = node_at(&app, &adv.addr.ip().to_string(), 9443).await;
    let prof = profile(&app, &[("root", "calvin")]).await;
    // The member that points elsewhere is skipped (as any unreadable member is); the session
    // is deleted at the BMC's own session URL.
    let (s, n) = register(&app, node, prof).await;
    assert_eq!(s, StatusCode::OK, "{n}");
    assert_eq!(n["server"], Value::Null, "{n}");
    assert!(adv.session_posts() >= 1);
    wait_no_sessions(&lab).await;
    assert_eq!(spy.hits(), 0, "a request reached another host");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evil_references_sqlite() {
    evil_references(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evil_references_postgres() {
    evil_references(Backend::Postgres).await;
}

/// Item 12: a BMC whose root advertises no session service is registered with Basic auth,
/// one attempt per credential, and no session POST.
async fn no_session_service(backend: Backend) {
    let b = block(backend, 12);
    let app = http_app(backend).await;
    let lab = lab_at(b, 1, 1, &["--http", "--persona", "dell"]);
    let adv = Adversary::start(
        &format!("127.72.{b}.2:9443"),
        &lab.slot(0).base_url(),
        Tamper::NoSessions,
    )
    .await;
    let node = node_at(&app, &adv.addr.ip().to_string(), 9443).await;
    let prof = profile(&app, &[("nobody", "wrong"), ("root", "calvin")]).await;
    let (s, n) = register(&app, node, prof).await;
    assert_eq!(s, StatusCode::OK, "{n}");
    assert_eq!(n["status"], "registered", "{n}");
    assert!(n["server"].as_i64().is_some(), "{n}");
    assert_eq!(
        adv.session_posts(),
        0,
        "no session POST to a BMC without sessions"
    );
    let st = lab.state_of(lab.slot(0)).await.unwrap();
    assert_eq!(st["failed_logins"], 1, "one attempt per credential: {st}");
    assert_eq!(st["sessions_open"], 0, "{st}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_service_sqlite() {
    no_session_service(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_service_postgres() {
    no_session_service(Backend::Postgres).await;
}

/// Item 3: after the allowlist narrows, a stored range still scans but only inside it (the rest
/// is skipped and counted in `last_error`), and a node outside it is not registered.
async fn allowlist_checked_late(backend: Backend) {
    let b = block(backend, 14);
    let mut app = common::spawn(backend).await;
    let lab = lab_at(b, 1, 3, &[]);
    let range = create_range(
        &app,
        &format!("127.72.{b}.1"),
        &format!("127.72.{b}.3"),
        9443,
    )
    .await;
    let r = scan(&app, range).await;
    assert_eq!(r["last_error"], Value::Null, "{r}");
    let nodes = nodes_of(&app, range).await;
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let outside = nodes[1]["id"].as_i64().unwrap();
    let inside = nodes[0]["id"].as_i64().unwrap();

    app.restart_with("--discovery-allowed-networks", &format!("127.72.{b}.1/32"))
        .await;
    let r = scan(&app, range).await;
    assert_eq!(r["status"], "ready", "{r}");
    let note = r["last_error"].as_str().unwrap_or_default();
    assert!(
        note.contains("2 address(es) outside MOJO_DISCOVERY_ALLOWED_NETWORKS"),
        "{r}"
    );
    assert_eq!(r["progress"]["found"], 1, "{r}");
    // Not probed, so not marked unreachable either.
    let nodes = nodes_of(&app, range).await;
    assert!(
        nodes.iter().all(|n| n["status"] == "discovered"),
        "{nodes:?}"
    );

    let prof = profile(&app, &[(&lab.slot(0).user, &lab.slot(0).password)]).await;
    let (s, e) = register(&app, outside, prof).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["detail"],
        format!("Node {outside} (127.72.{b}.2) is outside MOJO_DISCOVERY_ALLOWED_NETWORKS."),
    );
    let (s, n) = register(&app, inside, prof).await;
    assert_eq!(s, StatusCode::OK, "{n}");
    wait_no_sessions(&lab).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_checked_late_sqlite() {
    allowlist_checked_late(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_checked_late_postgres() {
    allowlist_checked_late(Backend::Postgres).await;
}

/// Item 2: a second BMC reporting the identity of a server that another registered node owns is
/// refused (400 naming both); once the first node is unreachable the server moves (a
/// re-addressed BMC), keeping its id and pool.
async fn identity_takeover(backend: Backend) {
    let b = block(backend, 16);
    let app = common::spawn(backend).await;
    let seed = format!("twin-{b}");
    let lab_a = lab_at(b, 1, 1, &["--seed", &seed]);
    let lab_b = lab_at(b, 2, 1, &["--seed", &seed]);
    let range = create_range(
        &app,
        &format!("127.72.{b}.1"),
        &format!("127.72.{b}.2"),
        9443,
    )
    .await;
    scan(&app, range).await;
    let nodes = nodes_of(&app, range).await;
    let (node_a, node_b) = (
        nodes[0]["id"].as_i64().unwrap(),
        nodes[1]["id"].as_i64().unwrap(),
    );
    let prof = profile(&app, &[("root", "calvin")]).await;
    let (s, a) = register(&app, node_a, prof).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let server = a["server"].as_i64().unwrap();
    let (_, srv) = app.get(&format!("/api/server/{server}/")).await;
    assert!(
        srv["uuid"].is_string() && srv["serial_number"].is_string(),
        "{srv}"
    );
    let (s, p) = app
        .post("/api/pool/", json!({"name": "Kept", "group": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let pool = p["id"].as_i64().unwrap();
    let (s, _) = app
        .post(
            &format!("/api/pool/{pool}/assign_servers/"),
            json!({"servers": [server]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, e) = register(&app, node_b, prof).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("server {server} ("))
            && detail.contains(&format!("node {node_a}")),
        "{detail}"
    );
    let (_, srv) = app.get(&format!("/api/server/{server}/")).await;
    assert_eq!(srv["node"], node_a, "{srv}");
    let (_, nb) = app.get(&format!("/api/node/{node_b}/")).await;
    assert_eq!(nb["status"], "discovered", "{nb}");
    assert_eq!(nb["last_error"], detail, "{nb}");

    // The first BMC goes away (re-addressed): its node turns unreachable, the server moves.
    drop(lab_a);
    scan(&app, range).await;
    let (_, na) = app.get(&format!("/api/node/{node_a}/")).await;
    assert_eq!(na["status"], "unreachable", "{na}");
    let (s, n) = register(&app, node_b, prof).await;
    assert_eq!(s, StatusCode::OK, "{n}");
    assert_eq!(n["server"], server, "{n}");
    let (_, srv) = app.get(&format!("/api/server/{server}/")).await;
    assert_eq!(srv["node"], node_b, "{srv}");
    assert_eq!(
        srv["bmc_url"],
        format!("https://127.72.{b}.2:9443"),
        "{srv}"
    );
    assert_eq!(srv["resource_pool"], pool, "{srv}");
    let (_, list) = app.get("/api/server/").await;
    assert_eq!(list["count"], 1, "{list}");
    wait_no_sessions(&lab_b).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_takeover_sqlite() {
    identity_takeover(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_takeover_postgres() {
    identity_takeover(Backend::Postgres).await;
}

/// Item 2: placeholder UUIDs and serial numbers are no identity: two BMCs reporting the same
/// placeholders are two servers.
async fn placeholder_identity(backend: Backend) {
    let b = block(backend, 18);
    let app = http_app(backend).await;
    let lab = lab_at(b, 1, 2, &["--http"]);
    let _a = Adversary::start(
        &format!("127.72.{b}.3:9443"),
        &lab.slot(0).base_url(),
        Tamper::PlaceholderIdentity,
    )
    .await;
    let _b = Adversary::start(
        &format!("127.72.{b}.4:9443"),
        &lab.slot(1).base_url(),
        Tamper::PlaceholderIdentity,
    )
    .await;
    let range = create_range(
        &app,
        &format!("127.72.{b}.3"),
        &format!("127.72.{b}.4"),
        9443,
    )
    .await;
    scan(&app, range).await;
    let nodes = nodes_of(&app, range).await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let prof = profile(&app, &[("root", "calvin")]).await;
    let mut servers = Vec::new();
    for n in &nodes {
        let (s, r) = register(&app, n["id"].as_i64().unwrap(), prof).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        servers.push(r["server"].as_i64().unwrap());
    }
    assert_ne!(
        servers[0], servers[1],
        "placeholders made one server of two"
    );
    for id in &servers {
        let (_, srv) = app.get(&format!("/api/server/{id}/")).await;
        assert_eq!(srv["uuid"], Value::Null, "{srv}");
        assert_eq!(srv["serial_number"], Value::Null, "{srv}");
        assert!(!srv["name"].as_str().unwrap().contains("O.E.M"), "{srv}");
    }
    wait_no_sessions(&lab).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholder_identity_sqlite() {
    placeholder_identity(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholder_identity_postgres() {
    placeholder_identity(Backend::Postgres).await;
}
