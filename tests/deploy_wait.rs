//! Deployments waiting for their callbacks hold no workers (the queue's waiting state), on both
//! backends against lab BMCs: with 2 workers, 6 deployments all reach `installing` (and a power
//! job on a seventh server still runs meanwhile), each reads `running` / `installing` with its
//! job `running`, and the callbacks complete every one of them and eject their media. With 1
//! worker, 2 deployments whose installers never call back both fail at MOJO_DEPLOY_TIMEOUT.
//! Lab addresses 127.78.1.x (SQLite), 127.78.2.x (PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod fleet;
mod lab;

use std::time::{Duration, Instant};

use lab::{lab_state, Lab};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SYSTEM_CD: &str = "/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD1";
const DEPLOYS: usize = 6;

fn octet(backend: common::Backend) -> u8 {
    match backend {
        common::Backend::Sqlite => 1,
        common::Backend::Postgres => 2,
    }
}

/// Waits (60 s at most) until `f` holds for the JSON at `path`; returns it.
async fn wait_for(app: &common::TestApp, path: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, v) = app.get(path).await;
        if s == StatusCode::OK && f(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ended(v: &Value) -> bool {
    !["queued", "running"].contains(&v["status"].as_str().unwrap_or(""))
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

async fn more_deployments_than_workers(backend: common::Backend) {
    let o = octet(backend);
    let base = format!("127.78.{o}.1");
    let lab = Lab::start(
        "start",
        DEPLOYS + 1,
        &[
            "--base",
            &base,
            "--port",
            "9443",
            "--persona",
            "dell",
            "--mockups",
            "public-rackmount1",
        ],
    );
    let app = common::TestApp::builder(backend)
        .args(["--workers", "2", "--job-lease-secs", "3"])
        .spawn()
        .await;
    let servers = fleet::register_all(&app, &lab).await;
    let os = fleet::upload_iso(&app, "Installer", "installer.iso").await;
    let mut started = Vec::new();
    for server in &servers[..DEPLOYS] {
        let (s, d) = app
            .post(&format!("/api/server/{server}/deploy/"), json!({"os": os}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{d}");
        started.push(d);
    }
    for d in &started {
        let d = wait_for(&app, &format!("/api/deployment/{}/", d["id"]), |d| {
            d["step"] == "installing" || ended(d)
        })
        .await;
        assert_eq!(
            (d["status"].as_str(), d["step"].as_str()),
            (Some("running"), Some("installing")),
            "{d}"
        );
    }
    // Every deployment waits at once, and their jobs read as before: running.
    for d in &started {
        let (_, j) = app.get(&format!("/api/job/{}/", d["job"])).await;
        assert_eq!(j["status"], "running", "{j}");
        assert_eq!(j["results"][0]["status"], "running", "{j}");
    }
    let (_, l) = app.get("/api/job/?kind=deployment&status=running").await;
    assert_eq!(l["count"], DEPLOYS, "{l}");
    // The workers are free: another server's power job runs to its end meanwhile.
    let spare = servers[DEPLOYS];
    let (s, j) = app
        .post(
            &format!("/api/server/{spare}/power/"),
            json!({"action": "ForceOff"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    let j = wait_for(&app, &format!("/api/job/{}/", j["id"]), ended).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    // The callbacks complete all of them; the media comes out.
    for d in &started {
        let url = d["callback_url"].as_str().unwrap();
        let (s, r) = app
            .call(
                Method::POST,
                &path_of(url),
                Some(json!({"status": "complete"})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    for (i, d) in started.iter().enumerate() {
        let j = wait_for(&app, &format!("/api/job/{}/", d["job"]), ended).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["results"][0]["status"], "succeeded", "{j}");
        assert_eq!(j["progress"]["percent"], 100, "{j}");
        let (_, d) = app.get(&format!("/api/deployment/{}/", d["id"])).await;
        assert_eq!(
            (d["status"].as_str(), d["step"].as_str()),
            (Some("complete"), Some("done"))
        );
        let st = lab_state(lab.slot(i)).await.unwrap();
        assert_eq!(st["virtual_media"][SYSTEM_CD]["Inserted"], false, "{st}");
        assert_eq!(st["resets"].as_array().unwrap().len(), 1, "{st}");
    }
    app.finish().await;
    assert_eq!(lab.open_sessions().await, 0);

    // Nobody calls back: both deployments fail at the timeout, one worker between them.
    let app = common::TestApp::builder(backend)
        .args(["--workers", "1", "--deploy-timeout", "3s"])
        .spawn()
        .await;
    let servers = fleet::register_all(&app, &lab).await;
    let os = fleet::upload_iso(&app, "Installer", "installer.iso").await;
    let mut jobs = Vec::new();
    for server in &servers[..2] {
        let (s, d) = app
            .post(&format!("/api/server/{server}/deploy/"), json!({"os": os}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{d}");
        jobs.push((d["id"].clone(), d["job"].clone()));
    }
    for (i, (id, job)) in jobs.iter().enumerate() {
        let j = wait_for(&app, &format!("/api/job/{job}/"), ended).await;
        assert_eq!(j["status"], "failed", "{j}");
        let (_, d) = app.get(&format!("/api/deployment/{id}/")).await;
        assert_eq!(d["status"], "failed", "{d}");
        assert_eq!(d["step"], "installing", "{d}");
        assert!(
            d["error"].as_str().unwrap().contains("MOJO_DEPLOY_TIMEOUT"),
            "{d}"
        );
        let st = lab_state(lab.slot(i)).await.unwrap();
        assert_eq!(st["virtual_media"][SYSTEM_CD]["Inserted"], false, "{st}");
    }
    app.finish().await;
    assert_eq!(lab.open_sessions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_wait_without_workers_sqlite() {
    more_deployments_than_workers(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_wait_without_workers_postgres() {
    more_deployments_than_workers(common::Backend::Postgres).await;
}
