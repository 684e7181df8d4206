//! Fuzzing in CI: schemathesis (pinned in tests/python/fuzz-requirements.txt) against the schema
//! a running test server serves (`/api/schema/?format=json`), on SQLite and on PostgreSQL, with
//! an access token in the `Authorization` header and a bounded budget. Checks:
//! `not_a_server_error` (no 5xx) and `response_schema_conformance` (every documented answer
//! matches its schema).
//!
//! Operations that reach BMCs (registration, scans, power, refresh, firmware updates, deployments,
//! baseline application) are excluded by operationId, whatever the schema contains; scan ranges
//! may only point at 127.77.250.0/24 (nothing listens there), so a range the fuzzer creates with a
//! `rescan_interval` scans nothing but that block. User writes run in a second, short pass: they
//! can deactivate or delete the admin the token belongs to, which would turn every later request
//! into a 401.
//!
//! Env: `MOJO_FUZZ_SECONDS` (budget of the main pass, default 45), `MOJO_FUZZ_SEED` (default 1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::Backend;
use reqwest::Method;
use serde_json::json;

/// operationIds that reach BMCs (or would start a job that does).
const BMC_OPERATIONS: &str =
    "(register|run_scan|scan_start|_power_|_refresh_|firmware_update|deploy|baseline.*apply|_apply)";
/// User writes: fuzzed last, on their own.
const USER_WRITES: &str = "^users_(update|partial_update|destroy)$";
/// Where the fuzzer's scan ranges may point (my lab block; no BMC listens there).
const FUZZ_NETWORK: &str = "127.77.250.0/24";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn venv() -> PathBuf {
    let venv = repo().join("target/pyvenv-fuzz");
    let out = std::process::Command::new("bash")
        .arg(repo().join("tests/python/setup.sh"))
        .arg(&venv)
        .arg("fuzz")
        .output()
        .expect("run tests/python/setup.sh");
    assert!(
        out.status.success(),
        "tests/python/setup.sh fuzz failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    venv
}

/// A few rows, so that small ids exist and the fuzzer reaches past the 404s.
async fn seed(app: &common::TestApp) {
    let t = Some(app.token.as_str());
    for (path, body) in [
        ("/api/pool/", json!({"name": "fuzz pool", "group": 1})),
        ("/api/switch/", json!({"name": "fuzz switch"})),
        (
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": "fuzz", "bmc": "redfish"}),
        ),
        (
            "/api/node_discovery/scan_range/",
            json!({"name": "fuzz range", "ip_from": "127.77.250.1", "ip_to": "127.77.250.2", "ports": [9443]}),
        ),
        (
            "/api/users/",
            json!({"username": "fuzz-user", "password": "fuzz-user-password-1"}),
        ),
    ] {
        let (status, body) = app.call(Method::POST, path, Some(body), t).await;
        assert!(status.is_success(), "seed {path}: {status} {body}");
    }
}

async fn schemathesis(
    app: &common::TestApp,
    work: &Path,
    filter: &[&str],
    budget: &[&str],
) -> (bool, String) {
    let seed = std::env::var("MOJO_FUZZ_SEED").unwrap_or_else(|_| "1".into());
    let out = tokio::process::Command::new(venv().join("bin/schemathesis"))
        .current_dir(work)
        .arg("run")
        .arg(format!("{}/api/schema/?format=json", app.base))
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--header", &format!("Authorization: Bearer {}", app.token)])
        .args([
            "--seed",
            &seed,
            "--generation-database",
            "none",
            "--workers",
            "1",
        ])
        .args(["--request-timeout", "30", "--no-color", "--warnings", "off"])
        .args(filter)
        .args(budget)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .await
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn fuzz(backend: Backend) {
    let app = common::TestApp::builder(backend)
        .allowed_networks(FUZZ_NETWORK)
        .spawn()
        .await;
    seed(&app).await;
    let work = tempfile::tempdir().unwrap();
    let seconds = std::env::var("MOJO_FUZZ_SECONDS").unwrap_or_else(|_| "45".into());
    let exclude = format!("{BMC_OPERATIONS}|{USER_WRITES}");
    let (ok, main) = schemathesis(
        &app,
        work.path(),
        &["--exclude-operation-id-regex", &exclude],
        &["--max-examples", "25", "--max-time", &seconds],
    )
    .await;
    println!("{main}");
    assert!(ok, "schemathesis ({backend:?}) found failures:\n{main}");
    assert!(main.contains("Selected:"), "{main}");
    let (ok, users) = schemathesis(
        &app,
        work.path(),
        &["--include-operation-id-regex", USER_WRITES],
        &["--max-examples", "10", "--phases", "coverage,fuzzing"],
    )
    .await;
    println!("{users}");
    assert!(ok, "schemathesis ({backend:?}, user writes):\n{users}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_sqlite() {
    fuzz(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_postgres() {
    fuzz(Backend::Postgres).await;
}
