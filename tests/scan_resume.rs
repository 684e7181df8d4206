//! A scan interrupted by stopping the server mid-scan is resumed by the next start on the same
//! database (its lease expires, the job is claimed again and starts over idempotently).
//! Address blocks 127.0.74.x (SQLite) and 127.0.75.x (Postgres).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod lab;

use std::time::{Duration, Instant};

use clap::Parser;
use mojo_server::app::App;
use mojo_server::config::Cli;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Server {
    base: String,
    token: String,
    client: reqwest::Client,
    state: mojo_server::http::AppState,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(data_dir: &std::path::Path, db_url: Option<&str>) -> Server {
    let mut args: Vec<String> = [
        "mojo-server",
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "off",
        "--discovery-allowed-networks",
        "127.0.0.0/8",
        "--job-lease-secs",
        "3",
        "--scan-concurrency",
        "2",
        "--probe-timeout-ms",
        "5000",
        "--shutdown-grace-secs",
        "5",
        "--workers",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--data-dir".into());
    args.push(data_dir.display().to_string());
    if let Some(u) = db_url {
        args.push("--database-url".into());
        args.push(u.to_string());
    }
    let mut config = Cli::parse_from(args).config;
    config.injected.admin_password = Some(common::ADMIN_PASSWORD.into());
    config.injected.secret_key = Some("test-jwt-secret-0123456789abcdef".into());
    config.injected.credential_key =
        Some("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into());
    let app = App::build(config).await.expect("app builds");
    let base = format!("http://{}", app.local_addr().unwrap());
    let state = app.state.clone();
    let handle = tokio::spawn(app.run());
    let client = reqwest::Client::new();
    let tok: Value = client
        .post(format!("{base}/api/token/"))
        .json(&json!({"username": "admin", "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Server {
        base,
        token: tok["access"].as_str().unwrap().to_string(),
        client,
        state,
        handle,
    }
}

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let s = resp.status();
        (s, resp.json().await.unwrap_or(Value::Null))
    }

    async fn stop(self) {
        self.state.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.handle).await;
    }
}

async fn resume(octet: u8, db_url: Option<String>) {
    let lab = lab::Lab::start(
        "start",
        12,
        &[
            "--base",
            &format!("127.0.{octet}.1"),
            "--port",
            "9443",
            "--persona",
            "dell",
            "--delay-ms",
            "400",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), db_url.as_deref()).await;
    let (s, r) = a
        .call(
            reqwest::Method::POST,
            "/api/node_discovery/scan_range/",
            Some(json!({"name": "resume", "ip_from": format!("127.0.{octet}.1"), "ip_to": format!("127.0.{octet}.12"), "ports": [9443]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let range = r["id"].as_i64().unwrap();
    let (s, r) = a
        .call(
            reqwest::Method::POST,
            "/api/node_discovery/run_scan/",
            Some(json!({"scan_ranges": [range]})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let job = r["job"].as_i64().unwrap();
    // Stop the server once the scan is under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, r) = a
            .call(
                reqwest::Method::GET,
                &format!("/api/node_discovery/scan_range/{range}/"),
                None,
            )
            .await;
        if r["progress"]["scanned"].as_u64().unwrap_or(0) >= 1 {
            assert_eq!(
                r["status"], "scanning",
                "stopped too late to test resumption: {r}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "scan did not start: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.stop().await;

    let b = start(dir.path(), db_url.as_deref()).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let done = loop {
        let (_, r) = b
            .call(
                reqwest::Method::GET,
                &format!("/api/node_discovery/scan_range/{range}/"),
                None,
            )
            .await;
        if r["status"] != "scanning" {
            break r;
        }
        assert!(Instant::now() < deadline, "scan was not resumed: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(
        done["progress"],
        json!({"scanned": 12, "total": 12, "found": 12})
    );
    let (_, j) = b
        .call(reqwest::Method::GET, &format!("/api/job/{job}/"), None)
        .await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let (_, nodes) = b.call(reqwest::Method::GET, "/api/node/", None).await;
    assert_eq!(nodes["count"], 12, "no duplicates after the restart");
    b.stop().await;
    drop(lab);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_scan_resumes_sqlite() {
    resume(74, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_scan_resumes_postgres() {
    use sqlx::Connection;
    let name = format!("mojo_t_resume_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&format!("{}/postgres", common::pg_base()))
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    resume(75, Some(format!("{}/{name}", common::pg_base()))).await;
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
}
