//! OS deployments over virtual media through HTTP against emulated BMCs, on both backends: the
//! image URL lands in the right CD slot of each lab mockup (system-level and manager-level
//! VirtualMedia), the BMC fetched it, the one-time Cd boot and the reset happened with that
//! media, the installer's callback completes the deployment and ejects; wrong tokens, cancel,
//! the deployment locks, the timeout and a restart in `installing`. The lab's `/lab/state` is
//! the ground truth. Address blocks 127.75.1.x-127.75.19.x.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod fleet;
mod lab;

use std::time::{Duration, Instant};

use lab::{lab_state, Lab};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ISO_NAME: &str = "ubuntu 24.04 server.iso";
const ISO_URL_NAME: &str = "ubuntu_24.04_server.iso";
const SYSTEM_CD: &str = "/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD1";
const MANAGER_CD: &str = "/redfish/v1/Managers/BMC/VirtualMedia/CD1";

/// `n` Dell-persona BMCs on port 9443 from `base` (a [`fleet::block`]).
fn start_lab(base: &str, n: usize, extra: &[&str]) -> Lab {
    fleet::start(
        base,
        n,
        &[&["--port", "9443", "--persona", "dell"], extra].concat(),
    )
}

/// Waits until the deployment reads `step` (or ends); returns it.
async fn wait_step(app: &common::TestApp, id: i64, step: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, d) = app.get(&format!("/api/deployment/{id}/")).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        if d["step"] == step || !(d["status"] == "queued" || d["status"] == "running") {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "deployment {id} never reached {step}: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for a job to end; returns it.
async fn wait_job(app: &common::TestApp, job: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, j) = app.get(&format!("/api/job/{job}/")).await;
        if j["status"] != "queued" && j["status"] != "running" {
            return j;
        }
        assert!(Instant::now() < deadline, "job {job} never ended: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The path (and nothing else) of a callback URL, for calling it on the app's current base.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

/// POSTs the installer's callback (no token of a user).
async fn call_back(app: &common::TestApp, url: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, &path_of(url), Some(body), None)
        .await
}

/// Starts a deployment; returns the answer.
async fn deploy(app: &common::TestApp, server: i64, os: i64) -> Value {
    let (s, d) = app
        .post(&format!("/api/server/{server}/deploy/"), json!({"os": os}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{d}");
    d
}

fn vm<'a>(st: &'a Value, path: &str) -> &'a Value {
    st["virtual_media"]
        .get(path)
        .unwrap_or_else(|| panic!("no slot {path}: {}", st["virtual_media"]))
}

/// Each mockup: the image goes into the right CD slot, the BMC fetches it, boots once from Cd
/// with it, and the callback completes the deployment and ejects.
async fn deploys_each_mockup(backend: common::Backend) {
    let b = fleet::block(75, backend, 1);
    let lab = start_lab(
        &b,
        3,
        &[
            "--mockups",
            "public-rackmount1,public-tower,public-localstorage",
        ],
    );
    let app = common::spawn(backend).await;
    let servers = fleet::register_all(&app, &lab).await;
    let os = fleet::upload_iso(&app, "Ubuntu 24.04", ISO_NAME).await;
    let (s, d) = app
        .post(
            &format!("/api/server/{}/deploy/", servers[0]),
            json!({"os": 999}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{d}");
    assert_eq!(
        d,
        json!({"os": ["Invalid pk \"999\" - object does not exist."]})
    );
    let (s, d) = app
        .post(&format!("/api/server/{}/deploy/", servers[0]), json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{d}");
    let (s, _) = app
        .post("/api/server/9999/deploy/", json!({"os": os}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for (i, slot) in lab.slots.iter().enumerate() {
        let cd = if i == 0 { SYSTEM_CD } else { MANAGER_CD };
        let started = deploy(&app, servers[i], os).await;
        let id = started["id"].as_i64().unwrap();
        assert_eq!(started["server"], servers[i]);
        assert_eq!(started["os"], os);
        assert_eq!(started["status"], "queued");
        assert_eq!(started["step"], "insert_media");
        assert_eq!(started["created_by"], 1);
        let url = started["callback_url"].as_str().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert!(url.contains("/media/callback/"), "{url}");
        // A second operation on the server is refused by the busy rule.
        let (s, e) = app
            .post(
                &format!("/api/server/{}/deploy/", servers[i]),
                json!({"os": os}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let busy = format!(
            "Server {} is busy: job {} (deployment) is running.",
            servers[i], started["job"]
        );
        assert_eq!(e, json!({"detail": busy}));
        let d = wait_step(&app, id, "installing").await;
        assert_eq!(d["status"], "running", "{d}");
        assert_eq!(d["callback_url"], Value::Null, "shown only once: {d}");
        let st = lab_state(slot).await.unwrap();
        let media = vm(&st, cd);
        let image = media["Image"].as_str().unwrap_or_default();
        assert!(image.contains("/media/os/"), "{media}");
        assert!(image.ends_with(ISO_URL_NAME), "{media}");
        assert_eq!(media["Inserted"], true, "{media}");
        assert_eq!(media["last_fetch"]["ok"], true, "{media}");
        let boot = st["boots"].as_array().unwrap().last().cloned().unwrap();
        assert_eq!(boot["override"], "Cd", "{st}");
        assert_eq!(boot["media"], image, "{st}");
        assert_eq!(st["resets"].as_array().unwrap().len(), 1, "{st}");
        // The one-time override was consumed by that boot.
        let sys = st["systems"].as_object().unwrap().values().next().unwrap();
        assert_eq!(
            sys["Boot"]["BootSourceOverrideEnabled"], "Disabled",
            "{sys}"
        );
        // A wrong token.
        let mut wrong = url.trim_end_matches('/').to_string();
        wrong.replace_range(wrong.len() - 4.., "0000");
        let (s, _) = call_back(&app, &format!("{wrong}/"), json!({"status": "complete"})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call_back(
            &app,
            "http://x/media/callback/abc/",
            json!({"status": "complete"}),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, e) = call_back(&app, &url, json!({"status": "done"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        // The callback completes it and ejects.
        let (s, d) = call_back(&app, &url, json!({"status": "complete", "message": "ok"})).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        assert_eq!(d["status"], "complete", "{d}");
        assert_eq!(d["step"], "done", "{d}");
        assert_eq!(d["callback_url"], Value::Null);
        assert!(d["finished_at"].is_string(), "{d}");
        let st = lab_state(slot).await.unwrap();
        assert_eq!(vm(&st, cd)["Inserted"], false, "{st}");
        let j = wait_job(&app, started["job"].as_i64().unwrap()).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["kind"], "deployment");
        // Once ended, the token is dead.
        let (s, _) = call_back(&app, &url, json!({"status": "complete"})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    // List and filters; another user sees none of them.
    let (s, l) = app.get("/api/deployment/?status=complete").await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(l["count"], 3, "{l}");
    let (_, l) = app
        .get(&format!("/api/deployment/?server={}&os={os}", servers[1]))
        .await;
    assert_eq!(l["count"], 1, "{l}");
    let (_, l) = app.get("/api/deployment/?status=running").await;
    assert_eq!(l["count"], 0, "{l}");
    let (_, token) = app.user("bob", &[1]).await;
    let (s, l) = app
        .call(Method::GET, "/api/deployment/", None, Some(&token))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["count"], 0, "{l}");
    let (s, _) = app
        .call(Method::GET, "/api/deployment/1/", None, Some(&token))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.finish().await;
    assert_eq!(lab.open_sessions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_each_mockup_sqlite() {
    deploys_each_mockup(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_each_mockup_postgres() {
    deploys_each_mockup(common::Backend::Postgres).await;
}

/// While a deployment is active, every pool change of its server is refused with 400 naming
/// the deployment and changes nothing; renaming is allowed; cancel ejects and frees it.
async fn locks_and_cancel(backend: common::Backend) {
    let b = fleet::block(75, backend, 3);
    let lab = start_lab(&b, 2, &["--mockups", "public-tower"]);
    let app = common::spawn(backend).await;
    let servers = fleet::register_all(&app, &lab).await;
    let (a, other) = (servers[0], servers[1]);
    let os = fleet::upload_iso(&app, "Ubuntu 24.04", ISO_NAME).await;
    let (_, p) = app
        .post("/api/pool/", json!({"name": "Row", "group": 1}))
        .await;
    let pool = p["id"].as_i64().unwrap();
    let (_, p2) = app
        .post("/api/pool/", json!({"name": "Other", "group": 1}))
        .await;
    let pool2 = p2["id"].as_i64().unwrap();
    let (s, r) = app
        .post(
            &format!("/api/pool/{pool}/assign_servers/"),
            json!({"servers": servers}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let started = deploy(&app, a, os).await;
    let id = started["id"].as_i64().unwrap();
    let (_, bob) = app.user("bob", &[1]).await;
    wait_step(&app, id, "installing").await;
    let locked = json!({"detail": format!("Server {a} is locked by deployment {id}.")});
    let refusals: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/api/server/remove_from_pool/".into(),
            json!({"servers": [other, a]}),
        ),
        (
            Method::PATCH,
            format!("/api/server/{a}/"),
            json!({"resource_pool": null}),
        ),
        (
            Method::PATCH,
            format!("/api/server/{a}/"),
            json!({"resource_pool": pool2}),
        ),
        (
            Method::PUT,
            format!("/api/server/{a}/"),
            json!({"name": "x", "resource_pool": pool2}),
        ),
        (
            Method::POST,
            format!("/api/pool/{pool2}/assign_servers/"),
            json!({"servers": [other, a]}),
        ),
        (Method::DELETE, format!("/api/server/{a}/"), Value::Null),
        (Method::DELETE, format!("/api/pool/{pool}/"), Value::Null),
    ];
    for (m, path, body) in refusals {
        let body = (!body.is_null()).then_some(body);
        let (s, e) = app.call(m.clone(), &path, body, Some(&app.token)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{m} {path}: {e}");
        assert_eq!(e, locked, "{m} {path}");
    }
    // Nothing changed.
    for sv in &servers {
        let (_, s) = app.get(&format!("/api/server/{sv}/")).await;
        assert_eq!(s["resource_pool"], pool, "{s}");
    }
    let (s, _) = app.get(&format!("/api/pool/{pool}/")).await;
    assert_eq!(s, StatusCode::OK);
    // Renaming stays allowed, and so does a PUT repeating the pool.
    let (s, r) = app
        .patch(&format!("/api/server/{a}/"), json!({"name": "renamed"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // A power action is refused by the busy rule.
    let (s, e) = app
        .post(&format!("/api/server/{a}/power/"), json!({"action": "On"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("(deployment) is running"),
        "{e}"
    );
    // Cancel: another user gets 404; the starter (admin) cancels, the media is ejected.
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/deployment/{id}/cancel/"),
            None,
            Some(&bob),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, d) = app
        .post(&format!("/api/deployment/{id}/cancel/"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["status"], "cancelled", "{d}");
    assert_eq!(d["step"], "installing", "{d}");
    let st = lab_state(lab.slot(0)).await.unwrap();
    assert_eq!(vm(&st, MANAGER_CD)["Inserted"], false, "{st}");
    let j = wait_job(&app, started["job"].as_i64().unwrap()).await;
    assert_eq!(j["status"], "cancelled", "{j}");
    let (s, e) = app
        .post(&format!("/api/deployment/{id}/cancel/"), json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    // Unlocked: the pool change goes through.
    let (s, r) = app
        .post("/api/server/remove_from_pool/", json!({"servers": [a]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    app.finish().await;
    assert_eq!(lab.open_sessions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_and_cancel_sqlite() {
    locks_and_cancel(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_and_cancel_postgres() {
    locks_and_cancel(common::Backend::Postgres).await;
}

/// A deployment waiting for its callback survives a restart: the re-claimed job keeps waiting
/// (no second insert, boot or reset) and the callback completes it. A deployment whose
/// installer never calls back fails at MOJO_DEPLOY_TIMEOUT with the media ejected; a failed
/// report ends it failed with the message.
async fn restart_timeout_and_failure(backend: common::Backend) {
    let b = fleet::block(75, backend, 5);
    let lab = start_lab(&b, 3, &["--mockups", "public-rackmount1"]);
    let mut app = common::TestApp::builder(backend)
        .args(["--job-lease-secs", "3"])
        .spawn()
        .await;
    let servers = fleet::register_all(&app, &lab).await;
    let os = fleet::upload_iso(&app, "Ubuntu 24.04", ISO_NAME).await;
    let started = deploy(&app, servers[0], os).await;
    let id = started["id"].as_i64().unwrap();
    let url = started["callback_url"].as_str().unwrap().to_string();
    wait_step(&app, id, "installing").await;
    app.restart().await;
    // Past the lease, the job is claimed again and keeps waiting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, d) = app.get(&format!("/api/deployment/{id}/")).await;
    assert_eq!(d["status"], "running", "{d}");
    assert_eq!(d["step"], "installing", "{d}");
    let (_, j) = app.get(&format!("/api/job/{}/", started["job"])).await;
    assert_eq!(j["status"], "running", "{j}");
    let st = lab_state(lab.slot(0)).await.unwrap();
    assert_eq!(st["resets"].as_array().unwrap().len(), 1, "one reset: {st}");
    assert_eq!(st["boots"].as_array().unwrap().len(), 1, "one boot: {st}");
    assert_eq!(
        st["requests"]["POST"].as_i64().unwrap() - st["requests"]["DELETE"].as_i64().unwrap(),
        2,
        "inserts and resets were not repeated (logins match logouts): {st}"
    );
    let (s, d) = call_back(&app, &url, json!({"status": "complete"})).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["status"], "complete");
    let j = wait_job(&app, started["job"].as_i64().unwrap()).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let st = lab_state(lab.slot(0)).await.unwrap();
    assert_eq!(vm(&st, SYSTEM_CD)["Inserted"], false, "{st}");
    // A failure report.
    let started = deploy(&app, servers[1], os).await;
    let id = started["id"].as_i64().unwrap();
    wait_step(&app, id, "installing").await;
    let (s, d) = call_back(
        &app,
        started["callback_url"].as_str().unwrap(),
        json!({"status": "failed", "message": "no disk found"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["status"], "failed");
    assert_eq!(d["error"], "no disk found");
    let j = wait_job(&app, started["job"].as_i64().unwrap()).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error"], "no disk found", "{j}");
    // Cancelling the deployment's job cancels the deployment and ejects too.
    let started = deploy(&app, servers[1], os).await;
    let id = started["id"].as_i64().unwrap();
    wait_step(&app, id, "installing").await;
    let (s, j) = app
        .post(&format!("/api/job/{}/cancel/", started["job"]), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["status"], "cancelled", "{j}");
    let (_, d) = app.get(&format!("/api/deployment/{id}/")).await;
    assert_eq!(d["status"], "cancelled", "{d}");
    let st = lab_state(lab.slot(1)).await.unwrap();
    assert_eq!(vm(&st, SYSTEM_CD)["Inserted"], false, "{st}");
    app.finish().await;
    // The timeout.
    let app = common::TestApp::builder(backend)
        .args(["--deploy-timeout", "2s"])
        .spawn()
        .await;
    let servers = fleet::register_all(&app, &lab).await;
    let os = fleet::upload_iso(&app, "Ubuntu 24.04", ISO_NAME).await;
    let started = deploy(&app, servers[2], os).await;
    let j = wait_job(&app, started["job"].as_i64().unwrap()).await;
    assert_eq!(j["status"], "failed", "{j}");
    let (_, d) = app
        .get(&format!("/api/deployment/{}/", started["id"]))
        .await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["step"], "installing", "{d}");
    assert!(
        d["error"].as_str().unwrap().contains("MOJO_DEPLOY_TIMEOUT"),
        "{d}"
    );
    let st = lab_state(lab.slot(2)).await.unwrap();
    assert_eq!(vm(&st, SYSTEM_CD)["Inserted"], false, "{st}");
    app.finish().await;
    assert_eq!(lab.open_sessions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_timeout_and_failure_sqlite() {
    restart_timeout_and_failure(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_timeout_and_failure_postgres() {
    restart_timeout_and_failure(common::Backend::Postgres).await;
}

/// Uploads a BIOS package of `version` (applies to every server); returns its id.
async fn upload_bios(app: &common::TestApp, version: &str) -> i64 {
    let form = Form::new()
        .text("name", format!("BIOS {version}"))
        .text("firmware_type", "BIOS")
        .text("version", version.to_string())
        .part(
            "file",
            Part::bytes(format!("VERSION={version}\n").into_bytes()).file_name("bios.bin"),
        );
    app.upload_created("/api/firmware/", form).await
}

/// A pool's firmware baseline: writable (unknown ids refused), `compliance` in the detail and
/// `/api/pool/{id}/compliance/` (400 without a baseline; compliant while empty).
async fn pool_baseline(backend: common::Backend) {
    let b = fleet::block(75, backend, 7);
    let lab = start_lab(&b, 1, &["--mockups", "public-rackmount1"]);
    let app = common::spawn(backend).await;
    let servers = fleet::register_all(&app, &lab).await;
    let (_, p) = app
        .post("/api/pool/", json!({"name": "Row", "group": 1}))
        .await;
    let pool = p["id"].as_i64().unwrap();
    assert_eq!(p["firmware_baseline"], Value::Null, "{p}");
    let (_, d) = app.get(&format!("/api/pool/{pool}/")).await;
    assert_eq!(d["compliance"], Value::Null, "{d}");
    let (s, e) = app.get(&format!("/api/pool/{pool}/compliance/")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e,
        json!({"detail": format!("Pool {pool} has no firmware baseline.")})
    );
    let fw = upload_bios(&app, "9.9.9").await;
    let (s, bl) = app
        .post(
            "/api/firmware_baseline/",
            json!({"name": "gen1", "firmware_binaries": [fw]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bl}");
    let baseline = bl["id"].as_i64().unwrap();
    let (s, e) = app
        .patch(
            &format!("/api/pool/{pool}/"),
            json!({"firmware_baseline": 999}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e,
        json!({"firmware_baseline": ["Invalid pk \"999\" - object does not exist."]})
    );
    let (s, d) = app
        .patch(
            &format!("/api/pool/{pool}/"),
            json!({"firmware_baseline": baseline}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["firmware_baseline"], baseline, "{d}");
    let (_, d) = app.get(&format!("/api/pool/{pool}/")).await;
    assert_eq!(d["compliance"], "compliant", "an empty pool: {d}");
    let (s, c) = app.get(&format!("/api/pool/{pool}/compliance/")).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "compliant", "{c}");
    assert_eq!(c["baseline"], baseline, "{c}");
    let (s, r) = app
        .post(
            &format!("/api/pool/{pool}/assign_servers/"),
            json!({"servers": servers}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["compliance"], "non_compliant", "{r}");
    let (_, c) = app.get(&format!("/api/pool/{pool}/compliance/")).await;
    assert_eq!(c["status"], "non_compliant", "{c}");
    assert_eq!(c["servers"][0]["server"], servers[0], "{c}");
    assert_eq!(c["servers"][0]["status"], "non_compliant", "{c}");
    // A pool created with a baseline; clearing it.
    let (s, p2) = app
        .post(
            "/api/pool/",
            json!({"name": "Row2", "group": 1, "firmware_baseline": baseline}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p2}");
    assert_eq!(p2["firmware_baseline"], baseline, "{p2}");
    let (s, d) = app
        .patch(
            &format!("/api/pool/{pool}/"),
            json!({"firmware_baseline": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["compliance"], Value::Null, "{d}");
    app.finish().await;
    assert_eq!(lab.open_sessions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_baseline_sqlite() {
    pool_baseline(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_baseline_postgres() {
    pool_baseline(common::Backend::Postgres).await;
}
