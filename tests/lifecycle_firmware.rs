//! Firmware updates and baselines against lab BMCs, on both backends: SimpleUpdate with a signed
//! media URL, the multipart push, a BMC rejecting the image, applicability, baseline compliance
//! before and after `apply`, and a restart mid-update that does not flash twice. Address blocks
//! 127.71.10.x-127.71.29.x; every test ends with zero open BMC sessions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod fleet;
mod lab;

use std::time::{Duration, Instant};

use lab::{lab_state, Lab};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// This file's block `base` for the app's backend.
fn block(app: &common::TestApp, base: u8) -> String {
    fleet::block(71, app.backend, base)
}

/// `n` BMCs of the `public-rackmount1` mockup from `base`.
fn start_lab(n: usize, base: &str, extra: &[&str]) -> Lab {
    fleet::start(
        base,
        n,
        &[&["--mockups", "public-rackmount1"], extra].concat(),
    )
}

async fn upload_firmware(
    app: &common::TestApp,
    content: &str,
    file_name: &str,
    version: &str,
    manufacturer: &str,
) -> i64 {
    let form = Form::new()
        .text("name", format!("BIOS {version}"))
        .text("firmware_type", "BIOS")
        .text("version", version.to_string())
        .text("manufacturer", manufacturer.to_string())
        .part(
            "file",
            Part::bytes(content.as_bytes().to_vec()).file_name(file_name.to_string()),
        );
    app.upload_created("/api/firmware/", form).await
}

async fn wait_job(app: &common::TestApp, job: i64, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (s, j) = app.get(&format!("/api/job/{job}/")).await;
        assert_eq!(s, StatusCode::OK, "{j}");
        if !matches!(j["status"].as_str(), Some("queued" | "running")) {
            return j;
        }
        assert!(Instant::now() < deadline, "job {job} did not end: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn bios_of(app: &common::TestApp, server: i64) -> Option<String> {
    let (s, fws) = app.get(&format!("/api/server/{server}/firmwares/")).await;
    assert_eq!(s, StatusCode::OK, "{fws}");
    let list = fws
        .get("results")
        .unwrap_or(&fws)
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.iter()
        .find(|f| f["firmware_type"] == "BIOS")
        .and_then(|f| f["version"].as_str().map(str::to_string))
}

fn lab_bios(state: &Value) -> Option<String> {
    state["systems"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|s| s["BiosVersion"].as_str().map(str::to_string))
}

both!(
    simple_update_and_baseline,
    |app: common::TestApp| async move {
        let lab = start_lab(2, &block(&app, 10), &["--task-ms", "400"]);
        let servers = fleet::register_all(&app, &lab).await;
        let (s1, s2) = (servers[0], servers[1]);
        let before = bios_of(&app, s1).await.expect("a BIOS entry");

        let fw = upload_firmware(
            &app,
            "VERSION=2.19.1\npayload\n",
            "bios 2.19.1.bin",
            "2.19.1",
            "",
        )
        .await;
        let (s, b) = app
            .post(
                "/api/firmware_baseline/",
                json!({"name": "fleet", "firmware_binaries": [fw]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let baseline = b["id"].as_i64().unwrap();
        let (s, c) = app
            .get(&format!("/api/firmware_baseline/{baseline}/compliance/"))
            .await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(c["status"], "non_compliant", "{c}");
        assert_eq!(c["servers"].as_array().unwrap().len(), 2);
        assert_eq!(
            c["servers"][0]["components"][0]["status"], "non_compliant",
            "{c}"
        );
        assert_eq!(
            c["servers"][0]["components"][0]["installed_version"],
            before.as_str()
        );

        // A binary that does not apply: refused up front, and skipped in a pool.
        let other =
            upload_firmware(&app, "VERSION=9\nother\n", "other.bin", "9", "NoSuchVendor").await;
        let (s, e) = app
            .post(
                &format!("/api/server/{s1}/firmware_update/"),
                json!({"firmware": other}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let msg = e["firmware"][0].as_str().unwrap();
        assert!(
            msg.starts_with(&format!(
                "Firmware {other} (NoSuchVendor, []) does not apply to server {s1} ("
            )),
            "{msg}"
        );
        let (s, e) = app
            .post(
                &format!("/api/server/{s1}/firmware_update/"),
                json!({"firmware": 999}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(
            e["firmware"][0],
            "Invalid pk \"999\" - object does not exist."
        );
        // A non-superuser of group 1 does not see unassigned servers (404) ...
        let (_, user) = app.user("operator", &[1]).await;
        let (s, e) = app
            .call(
                reqwest::Method::POST,
                &format!("/api/server/{s1}/firmware_update/"),
                Some(json!({"firmware": fw})),
                Some(&user),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
        let (s, pool) = app
            .post("/api/pool/", json!({"name": "rack", "group": 1}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{pool}");
        let pool = pool["id"].as_i64().unwrap();
        let (s, r) = app
            .post(
                &format!("/api/pool/{pool}/assign_servers/"),
                json!({"servers": [s1, s2]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        // ... but may update the servers of its group's pool, and sees its own job.
        let (s, j) = app
            .call(
                reqwest::Method::POST,
                &format!("/api/pool/{pool}/firmware_update/"),
                Some(json!({"firmware": other})),
                Some(&user),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{j}");
        let (s, _) = app
            .call(
                reqwest::Method::GET,
                &format!("/api/job/{}/", j["id"]),
                None,
                Some(&user),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let j = wait_job(&app, j["id"].as_i64().unwrap(), 60).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(j["results"][0]["status"], "skipped", "{j}");
        assert_eq!(j["results"][1]["status"], "skipped", "{j}");

        // The update through SimpleUpdate with a signed URL.
        let (s, j) = app
            .post(
                &format!("/api/server/{s1}/firmware_update/"),
                json!({"firmware": fw}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{j}");
        assert_eq!(j["kind"], "firmware_update");
        let job = j["id"].as_i64().unwrap();
        // While it runs, the server is busy.
        let (s, e) = app
            .post(
                &format!("/api/server/{s1}/firmware_update/"),
                json!({"firmware": fw}),
            )
            .await;
        if s == StatusCode::BAD_REQUEST {
            assert_eq!(
                e["detail"],
                format!("Server {s1} is busy: job {job} (firmware_update) is running.")
            );
        }
        let j = wait_job(&app, job, 90).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(
            j["results"][0]["message"],
            format!("BIOS {before} -> 2.19.1"),
            "{j}"
        );
        assert_eq!(j["progress"]["percent"], 100, "{j}");
        let st = lab_state(&lab.slots[0]).await.unwrap();
        assert_eq!(lab_bios(&st).as_deref(), Some("2.19.1"), "{st}");
        let tasks = st["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 1, "{st}");
        let image = tasks[0]["ImageURI"].as_str().unwrap();
        assert!(image.contains(&format!("/media/firmware/{fw}/")), "{image}");
        assert!(image.ends_with("/bios_2.19.1.bin"), "{image}");
        assert_eq!(bios_of(&app, s1).await.as_deref(), Some("2.19.1"));

        let (_, c) = app
            .get(&format!(
                "/api/firmware_baseline/{baseline}/compliance/?server={s1}"
            ))
            .await;
        assert_eq!(c["status"], "compliant", "{c}");
        let (_, c) = app
            .get(&format!(
                "/api/firmware_baseline/{baseline}/compliance/?resource_pool={pool}"
            ))
            .await;
        assert_eq!(c["status"], "non_compliant", "{c}");

        // Apply: only s2 needs it.
        let (s, j) = app
            .post(
                &format!("/api/firmware_baseline/{baseline}/apply/"),
                json!({"resource_pool": pool}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{j}");
        let j = wait_job(&app, j["id"].as_i64().unwrap(), 90).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        let (_, c) = app
            .get(&format!("/api/firmware_baseline/{baseline}/compliance/"))
            .await;
        assert_eq!(c["status"], "compliant", "{c}");
        assert_eq!(c["servers"][1]["status"], "compliant", "{c}");
        let st1 = lab_state(&lab.slots[0]).await.unwrap();
        assert_eq!(
            st1["tasks"].as_array().unwrap().len(),
            1,
            "s1 was not flashed again"
        );
        let st2 = lab_state(&lab.slots[1]).await.unwrap();
        assert_eq!(st2["tasks"].as_array().unwrap().len(), 1, "{st2}");
        assert_eq!(lab_bios(&st2).as_deref(), Some("2.19.1"));

        // A binary a baseline uses cannot be deleted.
        let (s, e) = app.delete(&format!("/api/firmware/{fw}/")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(
            e["detail"],
            format!("Firmware {fw} is used by firmware baseline {baseline} (fleet).")
        );
        assert_eq!(lab.open_sessions().await, 0);
        app
    }
);

both!(
    multipart_push_and_rejection,
    |app: common::TestApp| async move {
        let lab = start_lab(
            1,
            &block(&app, 12),
            &["--multipart-push", "--no-simple-update", "--task-ms", "400"],
        );
        let servers = fleet::register_all(&app, &lab).await;
        let s1 = servers[0];
        let before = bios_of(&app, s1).await.unwrap();
        let fw = upload_firmware(&app, "VERSION=3.0.0\nbody\n", "b.bin", "3.0.0", "").await;
        let (s, j) = app
            .post(
                &format!("/api/server/{s1}/firmware_update/"),
                json!({"firmware": fw}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{j}");
        let j = wait_job(&app, j["id"].as_i64().unwrap(), 90).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        assert_eq!(
            j["results"][0]["message"],
            format!("BIOS {before} -> 3.0.0")
        );
        let st = lab_state(&lab.slots[0]).await.unwrap();
        assert_eq!(lab_bios(&st).as_deref(), Some("3.0.0"), "{st}");
        assert_eq!(st["tasks"][0]["ImageURI"], "(multipart upload)");
        assert_eq!(bios_of(&app, s1).await.as_deref(), Some("3.0.0"));

        // The BMC rejects the image: the job fails with its message.
        let bad =
            upload_firmware(&app, "FAIL=signature check failed\n", "bad.bin", "4.0", "").await;
        let (s, j) = app
            .post(
                &format!("/api/server/{s1}/firmware_update/"),
                json!({"firmware": bad}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{j}");
        let j = wait_job(&app, j["id"].as_i64().unwrap(), 90).await;
        assert_eq!(j["status"], "failed", "{j}");
        assert_eq!(j["results"][0]["status"], "failed", "{j}");
        let m = j["results"][0]["message"].as_str().unwrap();
        assert!(m.contains("signature check failed"), "{m}");
        assert!(
            j["error"]
                .as_str()
                .unwrap()
                .contains("signature check failed"),
            "{j}"
        );
        assert_eq!(bios_of(&app, s1).await.as_deref(), Some("3.0.0"));
        assert_eq!(lab.open_sessions().await, 0);
        app
    }
);

async fn restart_mid_update(backend: common::Backend, base: &str) {
    let mut app = common::TestApp::builder(backend)
        .args(["--job-lease-secs", "3"])
        .spawn()
        .await;
    let lab = start_lab(1, base, &["--task-ms", "6000"]);
    let servers = fleet::register_all(&app, &lab).await;
    let s1 = servers[0];
    let fw = upload_firmware(&app, "VERSION=5.5.5\nx\n", "r.bin", "5.5.5", "").await;
    let (s, j) = app
        .post(
            &format!("/api/server/{s1}/firmware_update/"),
            json!({"firmware": fw}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    let job = j["id"].as_i64().unwrap();
    // A second operation on the busy server is refused, naming the job.
    let (s, e) = app
        .post(
            &format!("/api/server/{s1}/firmware_update/"),
            json!({"firmware": fw}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        e["detail"],
        format!("Server {s1} is busy: job {job} (firmware_update) is running.")
    );
    // Wait until the BMC has fetched the image and is applying it (the restarted server
    // listens on another port), then stop the process mid-update.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = lab_state(&lab.slots[0]).await.unwrap();
        let percent = st["tasks"][0]["PercentComplete"].as_i64().unwrap_or(0);
        if (60..100).contains(&percent) {
            break;
        }
        assert!(Instant::now() < deadline, "no task started: {st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.restart().await;
    let j = wait_job(&app, job, 90).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let st = lab_state(&lab.slots[0]).await.unwrap();
    assert_eq!(
        st["tasks"].as_array().unwrap().len(),
        1,
        "flashed once: {st}"
    );
    assert_eq!(lab_bios(&st).as_deref(), Some("5.5.5"));
    assert_eq!(bios_of(&app, s1).await.as_deref(), Some("5.5.5"));
    assert_eq!(lab.open_sessions().await, 0);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_update_sqlite() {
    restart_mid_update(common::Backend::Sqlite, "127.71.14.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_update_postgres() {
    restart_mid_update(common::Backend::Postgres, "127.71.15.1").await;
}
