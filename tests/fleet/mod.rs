//! A block of lab BMCs registered through the API: the servers the lifecycle tests (power,
//! firmware, deployments) work on. Uses the harness (`common`) and the lab helper (`lab`), so a
//! test file declares all three modules.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Backend, TestApp};
use crate::lab::Lab;

/// The first address of block `base` of a test file's range `127.<net>.x.x` for one backend:
/// `127.<net>.<base>.1` on SQLite, `127.<net>.<base + 1>.1` on PostgreSQL, so the two variants of
/// a test run side by side.
pub fn block(net: u8, backend: Backend, base: u8) -> String {
    let b = match backend {
        Backend::Sqlite => base,
        Backend::Postgres => base + 1,
    };
    format!("127.{net}.{b}.1")
}

/// Starts `n` lab BMCs from address `base`, with the lab's `args`.
pub fn start(base: &str, n: usize, args: &[&str]) -> Lab {
    let mut all = vec!["--base", base];
    all.extend_from_slice(args);
    Lab::start("start", n, &all)
}

/// Scans the lab's addresses, registers every BMC with the first slot's credentials (one auth
/// profile); returns the server ids in slot order.
pub async fn register_all(app: &TestApp, lab: &Lab) -> Vec<i64> {
    let first = &lab.slots[0];
    let last = lab.slots.last().unwrap();
    let (s, r) = app
        .post(
            "/api/node_discovery/scan_range/",
            json!({"name": "Lab", "ip_from": first.ip, "ip_to": last.ip, "ports": [first.port]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let range = r["id"].as_i64().unwrap();
    let (s, r) = app
        .post(
            "/api/node_discovery/run_scan/",
            json!({"scan_ranges": [range]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, r) = app
            .get(&format!("/api/node_discovery/scan_range/{range}/"))
            .await;
        if r["status"] != "scanning" {
            break;
        }
        assert!(Instant::now() < deadline, "scan never ended: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, p) = app
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": "Lab", "bmc": "redfish"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let profile = p["id"].as_i64().unwrap();
    let (s, c) = app
        .post(
            &format!("/api/node_discovery/auth_profile/{profile}/credentials/"),
            json!({"username": first.user, "password": first.password}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (_, nodes) = app
        .get(&format!(
            "/api/node/?scan_range={range}&ordering=ip_address"
        ))
        .await;
    let mut servers = Vec::new();
    for slot in &lab.slots {
        let node = nodes["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["ip_address"] == slot.ip.as_str())
            .unwrap_or_else(|| panic!("no node for {}: {nodes}", slot.ip));
        let (s, n) = app
            .post(
                &format!("/api/node/{}/register/", node["id"]),
                json!({"auth_profile": profile}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{n}");
        servers.push(n["server"].as_i64().unwrap());
    }
    servers
}

/// Uploads a 200 kB installer image named `file_name` as OS `name` (linux, x86_64); returns
/// its id.
pub async fn upload_iso(app: &TestApp, name: &str, file_name: &str) -> i64 {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let form = Form::new()
        .text("name", name.to_string())
        .text("os_family", "linux")
        .text("version", "24.04")
        .text("arch", "x86_64")
        .part("file", Part::bytes(data).file_name(file_name.to_string()));
    app.upload_created("/api/os/", form).await
}
