//! Crash safety: the binary is SIGKILLed during a scan, during registrations, during an
//! `assign_servers` of 300 servers, during a power job, during a firmware update (while the
//! BMC's update task runs) and during a deployment (while it waits for its callback), then
//! started again on the same data dir / database. Afterwards nothing is half-written: no duplicate nodes or servers, no node
//! left `registering`, no range left `scanning`, every job final, an assignment applied to all
//! of its servers or none, and SQLite passes `PRAGMA integrity_check`.
//!
//! Adding a case (e.g. a firmware update): start the job through `p`, call
//! [`kill_while_running`] with its id, `p = restart(p).await`, wait for [`job_final`], then
//! [`assert_consistent`]. Lab: 127.76.2.x (SQLite) and 127.76.3.x (PostgreSQL); the lifecycle
//! cases 127.78.3.x (SQLite) and 127.78.4.x (PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod lab;
mod procs;

use std::collections::HashSet;
use std::time::Duration;

use lab::lab_state;
use mojo_server::db::inventory::{upsert_from_inventory, ServerInventory};
use mojo_server::db::{Db, Sql};
use procs::{Proc, Spec};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

const BMCS: usize = 6;
const SEEDED: usize = 300;

fn spec(dir: &std::path::Path, url: Option<&str>) -> Spec {
    Spec::new(dir, url)
        .env("MOJO_JOB_LEASE_SECS", "3")
        .env("MOJO_WORKERS", "2")
        .env("MOJO_SCAN_CONCURRENCY", "2")
        .env("MOJO_PROBE_TIMEOUT_MS", "5000")
        .env("MOJO_REGISTER_TIMEOUT", "4s")
        .env("MOJO_POWER_POLL_SECS", "1")
}

/// SIGKILL, then a new process on the same storage.
async fn restart(mut p: Proc) -> Proc {
    p.kill();
    let spec = p.spec.clone();
    drop(p);
    Proc::start(&spec, "server").await
}

/// Waits until job `id` runs (and, when given, until `ready` holds for it), then SIGKILLs.
async fn kill_while_running(p: &mut Proc, id: i64, ready: impl Fn(&Value) -> bool) {
    p.wait_for(&format!("/api/job/{id}/"), 60, |j| {
        j["status"] == "running" && ready(j)
    })
    .await;
    p.kill();
}

async fn job_final(p: &Proc, id: i64, secs: u64) -> Value {
    p.wait_for(&format!("/api/job/{id}/"), secs, |j| {
        ["succeeded", "failed", "cancelled"].contains(&j["status"].as_str().unwrap_or(""))
    })
    .await
}

/// The invariants every crash must leave (once leases and registration deadlines ran out).
async fn assert_consistent(p: &Proc) {
    let nodes = p.all("/api/node/").await;
    let mut seen = HashSet::new();
    for n in &nodes {
        assert_ne!(n["status"], "registering", "{n}");
        let key = (n["ip_address"].to_string(), n["port"].to_string());
        assert!(seen.insert(key), "duplicate node {n}");
    }
    let servers = p.all("/api/server/").await;
    let mut uuids = HashSet::new();
    for s in &servers {
        if let Some(u) = s["uuid"].as_str() {
            assert!(uuids.insert(u.to_string()), "duplicate server {s}");
        }
    }
    let linked: Vec<i64> = nodes.iter().filter_map(|n| n["server"].as_i64()).collect();
    assert_eq!(
        linked.len(),
        linked.iter().collect::<HashSet<_>>().len(),
        "two nodes share a server"
    );
    for r in p.all("/api/node_discovery/scan_range/").await {
        assert_ne!(r["status"], "scanning", "{r}");
    }
    for j in p.all("/api/job/").await {
        assert!(
            ["succeeded", "failed", "cancelled"].contains(&j["status"].as_str().unwrap()),
            "job not final: {j}"
        );
    }
}

/// `PRAGMA integrity_check` of the SQLite file (the server stopped).
async fn integrity(dir: &std::path::Path) {
    let db = Db::connect(&format!("sqlite://{}", dir.join("mojo.db").display()), 1)
        .await
        .unwrap();
    let rows = db
        .fetch_all(&Sql::new("PRAGMA integrity_check"))
        .await
        .unwrap();
    let first = rows[0].text("integrity_check").unwrap();
    assert_eq!(first, "ok", "integrity_check: {first}");
    db.close().await;
}

async fn seed_servers(url: &str) -> Vec<i64> {
    let db = Db::connect(url, 2).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..SEEDED {
        let inv = ServerInventory {
            uuid: Some(format!("c7a5c7a5-0000-4000-8000-{i:012}")),
            serial_number: Some(format!("CRASH{i:05}")),
            manufacturer: Some("Dell Inc.".into()),
            model: Some("PowerEdge R650".into()),
            ..Default::default()
        };
        // 198.18.0.0/15 is reserved for benchmarks: data only, never contacted.
        let url = format!("https://198.18.{}.{}", i / 250, i % 250 + 1);
        ids.push(
            upsert_from_inventory(&mut tx, 900_000 + i as i64, &url, &inv)
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    db.close().await;
    ids
}

/// Registers `nodes` with `prof`, all at once.
async fn register_all(p: &Proc, nodes: &[Value], prof: i64) -> Vec<(StatusCode, Value)> {
    let calls = nodes.iter().map(|n| {
        let path = format!("/api/node/{}/register/", n["id"]);
        async move { p.post(&path, json!({"auth_profile": prof})).await }
    });
    futures::future::join_all(calls).await
}

async fn crash_cases(octet: u8, url: Option<String>) {
    let lab = lab::Lab::start(
        "start",
        BMCS,
        &[
            "--base",
            &format!("127.76.{octet}.1"),
            "--port",
            "9443",
            "--persona",
            "dell",
            "--delay-ms",
            "250",
            "--power-delay-ms",
            "4000",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), url.as_deref());
    let db_url = url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("mojo.db").display()));
    let mut p = Proc::start(&spec, "server").await;

    // 1. A scan.
    let (s, r) = p
        .post(
            "/api/node_discovery/scan_range/",
            json!({"name": "crash", "ip_from": format!("127.76.{octet}.1"),
                   "ip_to": format!("127.76.{octet}.{BMCS}"), "ports": [9443]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let range = r["id"].as_i64().unwrap();
    let (s, r) = p
        .post(
            "/api/node_discovery/run_scan/",
            json!({"scan_ranges": [range]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let scan = p.all("/api/job/?kind=scan").await[0]["id"]
        .as_i64()
        .unwrap();
    kill_while_running(&mut p, scan, |j| {
        j["progress"]["scanned"].as_i64().unwrap_or(0) >= 1
    })
    .await;
    p = restart(p).await;
    let j = job_final(&p, scan, 120).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let nodes = p.all(&format!("/api/node/?scan_range={range}")).await;
    assert_eq!(nodes.len(), BMCS, "{nodes:?}");
    assert_consistent(&p).await;

    // 2. Registrations in flight.
    let (s, prof) = p
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": "crash", "bmc": "redfish"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{prof}");
    let prof = prof["id"].as_i64().unwrap();
    let (s, c) = p
        .post(
            &format!("/api/node_discovery/auth_profile/{prof}/credentials/"),
            json!({"username": "root", "password": "calvin"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    {
        let calls = register_all(&p, &nodes, prof);
        tokio::select! {
            _ = calls => {}
            _ = tokio::time::sleep(Duration::from_millis(1500)) => {}
        }
    }
    p = restart(p).await;
    // The registrations cut off end with their deadline (MOJO_REGISTER_TIMEOUT).
    p.wait_for(
        &format!("/api/node/?scan_range={range}&status=registering"),
        60,
        |r| r["count"] == 0,
    )
    .await;
    assert_consistent(&p).await;
    let left: Vec<Value> = p
        .all(&format!("/api/node/?scan_range={range}"))
        .await
        .into_iter()
        .filter(|n| n["status"] != "registered")
        .collect();
    for (s, r) in register_all(&p, &left, prof).await {
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    let nodes = p.all(&format!("/api/node/?scan_range={range}")).await;
    assert!(
        nodes.iter().all(|n| n["status"] == "registered"),
        "{nodes:?}"
    );
    assert_eq!(p.all("/api/server/").await.len(), BMCS);
    assert_consistent(&p).await;

    // 3. A power job.
    let servers: Vec<i64> = nodes
        .iter()
        .map(|n| n["server"].as_i64().unwrap())
        .collect();
    let (s, rack) = p
        .post("/api/pool/", json!({"name": "rack", "group": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rack}");
    let rack = rack["id"].as_i64().unwrap();
    let (s, r) = p
        .post(
            &format!("/api/pool/{rack}/assign_servers/"),
            json!({"servers": servers}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let power_path = format!("/api/pool/{rack}/power/");
    let (s, r) = p
        .post(&power_path, json!({"action": "GracefulRestart"}))
        .await;
    assert!(s.is_success(), "{s} {r}");
    let power = p.all("/api/job/?kind=power&ordering=-id").await[0]["id"]
        .as_i64()
        .unwrap();
    kill_while_running(&mut p, power, |_| true).await;
    p = restart(p).await;
    let j = job_final(&p, power, 180).await;
    assert_ne!(j["status"], "cancelled", "{j}");
    assert_consistent(&p).await;
    // Its servers are free again.
    let (s, r) = p.post(&power_path, json!({"action": "On"})).await;
    assert!(s.is_success(), "servers still busy: {s} {r}");
    let again = p.all("/api/job/?kind=power&ordering=-id").await[0]["id"]
        .as_i64()
        .unwrap();
    job_final(&p, again, 180).await;

    // 4. assign_servers of 300 servers: all of them or none.
    p.stop();
    let seeded = seed_servers(&db_url).await;
    p = Proc::start(&spec, "server").await;
    for (i, delay_ms) in [2u64, 15, 40].into_iter().enumerate() {
        let (s, pool) = p
            .post(
                "/api/pool/",
                json!({"name": format!("crash-{i}"), "group": 1}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{pool}");
        let pool = pool["id"].as_i64().unwrap();
        {
            let path = format!("/api/pool/{pool}/assign_servers/");
            let call = p.post(&path, json!({"servers": seeded}));
            tokio::select! {
                _ = call => {}
                _ = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
            }
        }
        p = restart(p).await;
        let (s, d) = p.get(&format!("/api/pool/{pool}/")).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        let n = d["servers_count"].as_i64().unwrap();
        assert!(
            n == 0 || n == SEEDED as i64,
            "half an assignment: {n} servers in {d}"
        );
        println!("assign_servers killed after {delay_ms} ms: {n} of {SEEDED} assigned");
    }
    assert_eq!(p.all("/api/server/").await.len(), BMCS + SEEDED);
    assert_consistent(&p).await;

    p.stop();
    if url.is_none() {
        integrity(dir.path()).await;
    }
    drop(lab);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_crash_during_scan_registration_power_and_assign() {
    crash_cases(2, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_crash_during_scan_registration_power_and_assign() {
    let db = common::PgDatabase::create().await;
    crash_cases(3, Some(db.url())).await;
    db.drop_now().await;
}

/// Scans and registers every BMC of `lab` through `p`; returns the server ids in slot order.
async fn register_lab(p: &Proc, lab: &lab::Lab) -> Vec<i64> {
    let (first, last) = (&lab.slots[0], lab.slots.last().unwrap());
    let (s, r) = p
        .post(
            "/api/node_discovery/scan_range/",
            json!({"name": "lc", "ip_from": first.ip, "ip_to": last.ip, "ports": [first.port]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let range = r["id"].as_i64().unwrap();
    let (s, r) = p
        .post(
            "/api/node_discovery/run_scan/",
            json!({"scan_ranges": [range]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    p.wait_for(
        &format!("/api/node_discovery/scan_range/{range}/"),
        60,
        |r| r["status"] != "scanning",
    )
    .await;
    let (_, prof) = p
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": "lc", "bmc": "redfish"}),
        )
        .await;
    let prof = prof["id"].as_i64().unwrap();
    let (s, c) = p
        .post(
            &format!("/api/node_discovery/auth_profile/{prof}/credentials/"),
            json!({"username": first.user, "password": first.password}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let nodes = p.all(&format!("/api/node/?scan_range={range}")).await;
    let mut servers = Vec::new();
    for slot in &lab.slots {
        let node = nodes
            .iter()
            .find(|n| n["ip_address"] == slot.ip.as_str())
            .unwrap_or_else(|| panic!("no node for {}: {nodes:?}", slot.ip));
        let (s, n) = p
            .post(
                &format!("/api/node/{}/register/", node["id"]),
                json!({"auth_profile": prof}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{n}");
        servers.push(n["server"].as_i64().unwrap());
    }
    servers
}

/// `sessions_open` of one lab BMC.
async fn sessions_open(slot: &lab::Slot) -> i64 {
    lab_state(slot).await.unwrap()["sessions_open"]
        .as_i64()
        .unwrap()
}

/// The path of a callback URL (the process that made it listened on another port).
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

/// SIGKILL while the BMC's firmware update task runs: the restarted process takes the job
/// over, deletes the session the killed one left at the BMC first, follows the same task (no
/// second SimpleUpdate) and ends `succeeded` with the new version, with no session left open.
/// SIGKILL while a deployment waits for its callback: after the restart it still waits, the
/// callback completes it and the media is ejected, with one boot and one reset in all.
async fn lifecycle_crash_cases(octet: u8, url: Option<String>) {
    let lab = lab::Lab::start(
        "start",
        2,
        &[
            "--base",
            &format!("127.78.{octet}.1"),
            "--port",
            "9443",
            "--persona",
            "dell",
            "--mockups",
            "public-rackmount1",
            "--task-ms",
            "10000",
        ],
    );
    let (fw_slot, deploy_slot) = (lab.slot(0), lab.slot(1));
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::new(dir.path(), url.as_deref())
        .env("MOJO_JOB_LEASE_SECS", "3")
        .env("MOJO_WORKERS", "2")
        .env("MOJO_POWER_POLL_SECS", "0");
    let mut p = Proc::start(&spec, "server").await;
    let servers = register_lab(&p, &lab).await;

    // 1. A firmware update, killed while the BMC's task runs.
    let form = Form::new()
        .text("name", "BIOS 2.19.1")
        .text("firmware_type", "BIOS")
        .text("version", "2.19.1")
        .part(
            "file",
            Part::bytes(b"VERSION=2.19.1\npayload\n".to_vec()).file_name("bios.bin"),
        );
    let (s, fw) = p.upload("/api/firmware/", form).await;
    assert_eq!(s, StatusCode::CREATED, "{fw}");
    let (s, j) = p
        .post(
            &format!("/api/server/{}/firmware_update/", servers[0]),
            json!({"firmware": fw["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    let job = j["id"].as_i64().unwrap();
    kill_while_running(&mut p, job, |j| {
        j["progress"]["percent"].as_i64().unwrap_or(0) >= 1
    })
    .await;
    let st = lab_state(fw_slot).await.unwrap();
    let tasks = st["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{st}");
    assert_ne!(tasks[0]["TaskState"], "Completed", "killed too late: {st}");
    assert_eq!(
        st["sessions_open"], 1,
        "the killed process left its session: {st}"
    );
    p = restart(p).await;
    let j = job_final(&p, job, 120).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert!(p.claimed(job), "the new process took the job over");
    let message = j["results"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("BIOS ") && message.ends_with("-> 2.19.1"),
        "{j}"
    );
    // Right after the job, not at the journal's expiry: nothing open at the BMC.
    assert_eq!(sessions_open(fw_slot).await, 0);
    assert!(
        p.logs().contains("leftover BMC session deleted"),
        "the takeover deleted the killed attempt's session"
    );
    let st = lab_state(fw_slot).await.unwrap();
    assert_eq!(
        st["tasks"].as_array().unwrap().len(),
        1,
        "flashed once: {st}"
    );
    assert_eq!(st["tasks"][0]["TaskState"], "Completed", "{st}");
    let bios = st["systems"]
        .as_object()
        .and_then(|m| m.values().next())
        .map(|s| s["BiosVersion"].clone());
    assert_eq!(bios, Some(json!("2.19.1")), "{st}");
    let (_, fws) = p
        .get(&format!("/api/server/{}/firmwares/", servers[0]))
        .await;
    let list = fws
        .get("results")
        .unwrap_or(&fws)
        .as_array()
        .cloned()
        .unwrap();
    assert!(
        list.iter()
            .any(|f| f["firmware_type"] == "BIOS" && f["version"] == "2.19.1"),
        "{fws}"
    );
    assert_consistent(&p).await;

    // 2. A deployment, killed while it waits for its installer.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let form = Form::new()
        .text("name", "Installer")
        .text("os_family", "linux")
        .text("version", "1")
        .text("arch", "x86_64")
        .part("file", Part::bytes(data).file_name("installer.iso"));
    let (s, os) = p.upload("/api/os/", form).await;
    assert_eq!(s, StatusCode::CREATED, "{os}");
    let (s, d) = p
        .post(
            &format!("/api/server/{}/deploy/", servers[1]),
            json!({"os": os["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{d}");
    let (id, job) = (d["id"].as_i64().unwrap(), d["job"].as_i64().unwrap());
    let callback = path_of(d["callback_url"].as_str().unwrap());
    p.wait_for(&format!("/api/deployment/{id}/"), 60, |d| {
        d["step"] == "installing"
    })
    .await;
    p.kill();
    p = restart(p).await;
    // Past the killed process's lease: still waiting, nothing sent to the BMC again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, d) = p.get(&format!("/api/deployment/{id}/")).await;
    assert_eq!(
        (d["status"].as_str(), d["step"].as_str()),
        (Some("running"), Some("installing")),
        "{d}"
    );
    let (_, j) = p.get(&format!("/api/job/{job}/")).await;
    assert_eq!(j["status"], "running", "{j}");
    let (s, d) = p
        .post_anonymous(&callback, json!({"status": "complete"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let j = job_final(&p, job, 60).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let (_, d) = p.get(&format!("/api/deployment/{id}/")).await;
    assert_eq!(
        (d["status"].as_str(), d["step"].as_str()),
        (Some("complete"), Some("done")),
        "{d}"
    );
    let st = lab_state(deploy_slot).await.unwrap();
    let cd = &st["virtual_media"]["/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD1"];
    assert_eq!(cd["Inserted"], false, "ejected: {st}");
    assert_eq!(cd["last_fetch"]["ok"], true, "{st}");
    assert_eq!(st["resets"].as_array().unwrap().len(), 1, "{st}");
    assert_eq!(st["boots"].as_array().unwrap().len(), 1, "{st}");
    assert_eq!(lab.open_sessions().await, 0);
    assert_consistent(&p).await;

    p.stop();
    if url.is_none() {
        integrity(dir.path()).await;
    }
    drop(lab);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_crash_during_firmware_update_and_deployment() {
    lifecycle_crash_cases(3, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_crash_during_firmware_update_and_deployment() {
    let db = common::PgDatabase::create().await;
    lifecycle_crash_cases(4, Some(db.url())).await;
    db.drop_now().await;
}
