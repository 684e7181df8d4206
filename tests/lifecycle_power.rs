//! Power, inventory refresh and the power poll through HTTP against emulated BMCs, on both
//! backends: the lab's own state (`/lab/state`: power_state, resets, sessions_open) is the
//! ground truth. Address blocks 127.70.1.x-127.70.19.x.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod fleet;
mod lab;

use std::time::{Duration, Instant};

use lab::{lab_http, lab_state, Lab, Slot};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// `n` Dell-persona BMCs on port 9443 from `base` (a [`fleet::block`]).
fn start_lab(base: &str, n: usize, extra: &[&str]) -> Lab {
    fleet::start(
        base,
        n,
        &[&["--port", "9443", "--persona", "dell"], extra].concat(),
    )
}

/// Waits for a job to end (as `token`); returns it.
async fn wait_job(app: &common::TestApp, job: i64, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, j) = app
            .call(
                reqwest::Method::GET,
                &format!("/api/job/{job}/"),
                None,
                Some(token),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{j}");
        if j["status"] != "queued" && j["status"] != "running" {
            return j;
        }
        assert!(Instant::now() < deadline, "job {job} never ended: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POSTs a power action as `token`; returns the status and body.
async fn power(app: &common::TestApp, path: &str, body: Value, token: &str) -> (StatusCode, Value) {
    app.call(reqwest::Method::POST, path, Some(body), Some(token))
        .await
}

/// Runs a power action on a server as admin and waits for its job.
async fn power_server(app: &common::TestApp, server: i64, action: &str) -> Value {
    let (s, j) = power(
        app,
        &format!("/api/server/{server}/power/"),
        json!({"action": action}),
        &app.token,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    assert_eq!(j["kind"], "power");
    assert_eq!(j["targets"], json!([server]));
    wait_job(app, j["id"].as_i64().unwrap(), &app.token).await
}

async fn resets(slot: &Slot) -> Vec<String> {
    lab_state(slot).await.unwrap()["resets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ResetType"].as_str().unwrap().to_string())
        .collect()
}

async fn lab_power(slot: &Slot) -> String {
    lab_state(slot).await.unwrap()["power_state"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn server_power(app: &common::TestApp, server: i64) -> Value {
    let (s, srv) = app.get(&format!("/api/server/{server}/")).await;
    assert_eq!(s, StatusCode::OK, "{srv}");
    srv["power_state"].clone()
}

async fn power_actions_and_access(backend: common::Backend) {
    let b = fleet::block(70, backend, 1);
    let lab = start_lab(&b, 3, &["--power-delay-ms", "300"]);
    let app = common::spawn(backend).await;
    let servers = fleet::register_all(&app, &lab).await;
    let (a, c) = (servers[0], servers[2]);
    let slot_a = lab.slot(0);
    assert_eq!(lab_power(slot_a).await, "On");

    // ForceOff, On, GracefulRestart: one reset each, reflected at the lab and in power_state.
    let j = power_server(&app, a, "ForceOff").await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(
        j["results"],
        json!([{"server": a, "status": "succeeded", "message": "ForceOff -> Off"}])
    );
    assert_eq!(
        j["progress"],
        json!({"total": 1, "done": 1, "failed": 0, "percent": 100})
    );
    assert_eq!(lab_power(slot_a).await, "Off");
    assert_eq!(resets(slot_a).await, ["ForceOff"]);
    assert_eq!(server_power(&app, a).await, "Off");
    // Already off: nothing sent.
    let j = power_server(&app, a, "GracefulShutdown").await;
    assert_eq!(j["results"][0]["message"], "already Off", "{j}");
    assert_eq!(resets(slot_a).await, ["ForceOff"]);

    let j = power_server(&app, a, "On").await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(lab_power(slot_a).await, "On");
    assert_eq!(server_power(&app, a).await, "On");
    let j = power_server(&app, a, "On").await;
    assert_eq!(j["results"][0]["message"], "already On", "{j}");
    let j = power_server(&app, a, "GracefulRestart").await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(lab_power(slot_a).await, "On");
    assert_eq!(resets(slot_a).await, ["ForceOff", "On", "GracefulRestart"]);
    assert_eq!(server_power(&app, a).await, "On");

    // Bad input.
    let (s, e) = app
        .post(&format!("/api/server/{a}/power/"), json!({"action": "Foo"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"action": ["\"Foo\" is not a valid choice."]}));
    let (s, e) = app
        .post(&format!("/api/server/{a}/power/"), json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"action": ["This field is required."]}));
    let (s, e) = app
        .post("/api/server/999999/power/", json!({"action": "On"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e, json!({"detail": "No Server matches the given query."}));

    // A second operation on a busy server is refused, naming the job.
    let (s, first) = app
        .post(
            &format!("/api/server/{a}/power/"),
            json!({"action": "GracefulShutdown"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let busy = first["id"].as_i64().unwrap();
    let (s, e) = app
        .post(&format!("/api/server/{a}/refresh/"), json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        e,
        json!({"detail": format!("Server {a} is busy: job {busy} (power) is running.")})
    );
    let j = wait_job(&app, busy, &app.token).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(lab_power(slot_a).await, "Off");

    // A pool of two servers (a in the pool, c in its sub-pool), per-server results.
    let (s, g) = app.post("/api/groups/", json!({"name": "ops"})).await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let group = g["id"].as_i64().unwrap();
    let (_, p) = app
        .post("/api/pool/", json!({"name": "Rack", "group": group}))
        .await;
    let pool = p["id"].as_i64().unwrap();
    let (_, sp) = app
        .post(
            "/api/pool/",
            json!({"name": "Shelf", "group": group, "parent": pool}),
        )
        .await;
    let sub = sp["id"].as_i64().unwrap();
    let (s, r) = app
        .post(
            &format!("/api/pool/{pool}/assign_servers/"),
            json!({"servers": [a]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, r) = app
        .post(
            &format!("/api/pool/{sub}/assign_servers/"),
            json!({"servers": [c]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, j) = app
        .post(
            &format!("/api/pool/{pool}/power/"),
            json!({"action": "On", "include_sub_pools": true}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    assert_eq!(j["targets"], json!([a, c]));
    let j = wait_job(&app, j["id"].as_i64().unwrap(), &app.token).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(
        j["results"],
        json!([
            {"server": a, "status": "succeeded", "message": "On -> On"},
            {"server": c, "status": "succeeded", "message": "already On"},
        ])
    );
    assert_eq!(
        j["progress"],
        json!({"total": 2, "done": 2, "failed": 0, "percent": 100})
    );
    let (s, j) = app
        .post(
            &format!("/api/pool/{pool}/power/"),
            json!({"action": "ForceOff"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    assert_eq!(j["targets"], json!([a]), "without sub-pools");
    wait_job(&app, j["id"].as_i64().unwrap(), &app.token).await;
    // Filters.
    let (_, l) = app.get(&format!("/api/job/?server={c}")).await;
    assert_eq!(l["count"], 1, "{l}");
    let (_, l) = app
        .get(&format!("/api/job/?server={a}&kind=power&status=succeeded"))
        .await;
    assert_eq!(l["count"], 8, "{l}");
    let (s, e) = app.get("/api/job/?server=x").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"server": ["Enter a number."]}));

    // A user of the pool's group powers its servers; everything else is 404 to them.
    let (_, token) = app.user("operator", &[group]).await;
    let (s, j) = power(
        &app,
        &format!("/api/server/{c}/power/"),
        json!({"action": "ForceOff"}),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    let own = j["id"].as_i64().unwrap();
    assert_eq!(wait_job(&app, own, &token).await["status"], "succeeded");
    assert_eq!(lab_power(lab.slot(2)).await, "Off");
    let (s, j) = power(
        &app,
        &format!("/api/pool/{pool}/power/"),
        json!({"action": "On", "include_sub_pools": true}),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    assert_eq!(
        wait_job(&app, j["id"].as_i64().unwrap(), &token).await["status"],
        "succeeded"
    );
    let b_server = servers[1];
    let (s, e) = power(
        &app,
        &format!("/api/server/{b_server}/power/"),
        json!({"action": "On"}),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, _) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/server/{b_server}/refresh/"),
            None,
            Some(&token),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(
            reqwest::Method::POST,
            "/api/pool/999999/power/",
            Some(json!({"action": "On"})),
            Some(&token),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Others' jobs: 404, also for cancel; the list holds only their own.
    let (s, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/job/{busy}/"),
            None,
            Some(&token),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/job/{busy}/cancel/"),
            None,
            Some(&token),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, l) = app
        .call(
            reqwest::Method::GET,
            "/api/job/?created_by=1",
            None,
            Some(&token),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["count"], 2, "{l}");
    assert!(l["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["created_by"] != 1));
    // Their scope is the list's: the links hold only what they sent.
    let (_, l) = app
        .call(
            reqwest::Method::GET,
            "/api/job/?page_size=1",
            None,
            Some(&token),
        )
        .await;
    assert_eq!(l["count"], 2, "{l}");
    assert_ne!(l["results"][0]["created_by"], 1, "{l}");
    let next = l["next"].as_str().unwrap_or_default();
    assert!(next.ends_with("/api/job/?page=2&page_size=1"), "{l}");
    let (_, l) = app
        .call(
            reqwest::Method::GET,
            "/api/job/?created_by=1&page_size=1",
            None,
            Some(&token),
        )
        .await;
    assert_eq!(l["count"], 2, "{l}");
    let next = l["next"].as_str().unwrap_or_default();
    assert!(
        next.ends_with("/api/job/?created_by=1&page=2&page_size=1"),
        "{l}"
    );
    // The admin sees them all.
    let (_, l) = app.get(&format!("/api/job/{own}/")).await;
    assert_eq!(l["id"], own);

    // Refresh re-reads the inventory: a stale model and lost processors come back.
    let (_, before) = app.get(&format!("/api/server/{a}/")).await;
    let (_, procs) = app.get(&format!("/api/server/{a}/processors/")).await;
    assert!(!procs.as_array().unwrap().is_empty());
    {
        use mojo_server::db::Sql;
        let db = &app.state.db;
        db.execute(&Sql::new("UPDATE servers SET model = 'stale' WHERE id = $1").arg(a))
            .await
            .unwrap();
        db.execute(&Sql::new("DELETE FROM server_processors WHERE server_id = $1").arg(a))
            .await
            .unwrap();
    }
    let (s, j) = power(
        &app,
        &format!("/api/server/{a}/refresh/"),
        json!({}),
        &app.token,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    assert_eq!(j["kind"], "inventory");
    let j = wait_job(&app, j["id"].as_i64().unwrap(), &app.token).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let (_, after) = app.get(&format!("/api/server/{a}/")).await;
    assert_eq!(after["model"], before["model"]);
    assert_ne!(after["last_inventory_at"], before["last_inventory_at"]);
    let (_, procs2) = app.get(&format!("/api/server/{a}/processors/")).await;
    assert_eq!(
        procs2.as_array().unwrap().len(),
        procs.as_array().unwrap().len()
    );

    assert_eq!(lab.open_sessions().await, 0, "every session was deleted");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_actions_and_access_sqlite() {
    power_actions_and_access(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_actions_and_access_postgres() {
    power_actions_and_access(common::Backend::Postgres).await;
}

/// Powers a lab BMC's system off directly with Redfish (behind the server's back).
async fn force_off_at_lab(slot: &Slot) {
    let st = lab_state(slot).await.unwrap();
    let system = st["systems"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let r = lab_http()
        .unwrap()
        .post(format!(
            "{}{system}/Actions/ComputerSystem.Reset",
            slot.base_url()
        ))
        .basic_auth(&slot.user, Some(&slot.password))
        .json(&json!({"ResetType": "ForceOff"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn poll_sees_changes(backend: common::Backend) {
    let b = fleet::block(70, backend, 3);
    let lab = start_lab(&b, 2, &[]);
    let app = common::TestApp::builder(backend)
        .args(["--power-poll-secs", "1"])
        .spawn()
        .await;
    let servers = fleet::register_all(&app, &lab).await;
    assert_eq!(server_power(&app, servers[1]).await, "On");
    force_off_at_lab(lab.slot(1)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while server_power(&app, servers[1]).await != "Off" {
        assert!(Instant::now() < deadline, "the poll never saw the change");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server_power(&app, servers[0]).await, "On");
    // The poll keeps polling and leaves no session behind.
    app.finish().await;
    assert_eq!(lab.open_sessions().await, 0);
    // Each poll round logged in once (one session per BMC per round) and logged out again.
    let st = lab_state(lab.slot(1)).await.unwrap();
    assert_eq!(
        st["requests"]["POST"],
        st["requests"]["DELETE"].as_i64().unwrap() + 1,
        "logins = logouts + the reset: {st}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_sees_changes_sqlite() {
    poll_sees_changes(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_sees_changes_postgres() {
    poll_sees_changes(common::Backend::Postgres).await;
}

/// A pool job stopped mid-way (the process stops) is claimed again after its lease and resumes
/// from its checkpoint: the server that had finished is not powered again, the one whose reset
/// was sent is not reset twice.
async fn resumes_from_checkpoint(backend: common::Backend) {
    let b = fleet::block(70, backend, 5);
    let lab = start_lab(&b, 2, &["--power-delay-ms", "2500"]);
    let mut app = common::TestApp::builder(backend)
        .args(["--bmc-concurrency", "1", "--job-lease-secs", "3"])
        .spawn()
        .await;
    let servers = fleet::register_all(&app, &lab).await;
    let (_, p) = app
        .post("/api/pool/", json!({"name": "Row", "group": 1}))
        .await;
    let pool = p["id"].as_i64().unwrap();
    let (s, r) = app
        .post(
            &format!("/api/pool/{pool}/assign_servers/"),
            json!({"servers": servers}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, j) = app
        .post(
            &format!("/api/pool/{pool}/power/"),
            json!({"action": "GracefulShutdown"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    let job = j["id"].as_i64().unwrap();
    // Wait until the first server is done and the second one's reset went out.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, j) = app.get(&format!("/api/job/{job}/")).await;
        if j["results"][0]["status"] == "succeeded" && !resets(lab.slot(1)).await.is_empty() {
            assert_eq!(j["results"][1]["status"], "running", "{j}");
            assert_eq!(j["progress"]["done"], 1, "{j}");
            break;
        }
        assert!(Instant::now() < deadline, "never half-way: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.restart().await;
    let j = wait_job(&app, job, &app.token).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_eq!(j["results"][1]["status"], "succeeded", "{j}");
    assert_eq!(resets(lab.slot(0)).await, ["GracefulShutdown"]);
    assert_eq!(
        resets(lab.slot(1)).await,
        ["GracefulShutdown"],
        "not sent twice"
    );
    assert_eq!(lab_power(lab.slot(1)).await, "Off");
    assert_eq!(server_power(&app, servers[1]).await, "Off");
    // Busy servers were freed with the job's end.
    let (s, j) = app
        .post(&format!("/api/server/{}/refresh/", servers[1]), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    wait_job(&app, j["id"].as_i64().unwrap(), &app.token).await;
    app.finish().await;
    assert_eq!(lab.open_sessions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_checkpoint_sqlite() {
    resumes_from_checkpoint(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_checkpoint_postgres() {
    resumes_from_checkpoint(common::Backend::Postgres).await;
}

/// A power action that does not settle within MOJO_POWER_TIMEOUT fails with that cause; a
/// cancelled job ends its servers `cancelled` and frees them; no session is left behind.
async fn timeout_and_cancel(backend: common::Backend) {
    let b = fleet::block(70, backend, 7);
    let lab = start_lab(&b, 1, &["--power-delay-ms", "4000"]);
    let app = common::TestApp::builder(backend)
        .args(["--power-timeout", "1s"])
        .spawn()
        .await;
    let servers = fleet::register_all(&app, &lab).await;
    let s0 = servers[0];
    let j = power_server(&app, s0, "GracefulShutdown").await;
    assert_eq!(j["status"], "failed", "{j}");
    let msg = "PowerState did not settle on Off within MOJO_POWER_TIMEOUT (1 s)";
    assert_eq!(j["error"], msg, "{j}");
    assert_eq!(
        j["results"],
        json!([{"server": s0, "status": "failed", "message": msg}])
    );
    assert_eq!(j["progress"]["failed"], 1, "{j}");
    // The lab finishes powering off; On then waits 4 s for PoweringOn -> On: cancel it.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let (s, j) = app
        .post(&format!("/api/server/{s0}/power/"), json!({"action": "On"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    let job = j["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while resets(lab.slot(0)).await.len() < 2 {
        assert!(Instant::now() < deadline, "On never sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, j) = app
        .post(&format!("/api/job/{job}/cancel/"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["status"], "cancelled", "{j}");
    assert_eq!(j["results"][0]["status"], "cancelled", "{j}");
    let (s, e) = app
        .post(&format!("/api/job/{job}/cancel/"), json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    // The server is free again at once.
    let (s, j) = app
        .post(&format!("/api/server/{s0}/refresh/"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    assert_eq!(
        wait_job(&app, j["id"].as_i64().unwrap(), &app.token).await["status"],
        "succeeded"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.open_sessions().await != 0 {
        assert!(Instant::now() < deadline, "a session was left open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.finish().await;
    assert_eq!(lab.open_sessions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_cancel_sqlite() {
    timeout_and_cancel(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_cancel_postgres() {
    timeout_and_cancel(common::Backend::Postgres).await;
}
