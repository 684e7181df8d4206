//! A `mojo-server` process killed (SIGKILL) in the middle of a registration, then started
//! again: the node reads as its previous status with `last_error` saying the registration was
//! interrupted, DELETE takes it, and the Redfish session the killed process had open is deleted
//! on the BMC (issue 9, items 15 and 17). The binary on both backends; lab block 127.72.30.x.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod lab;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Backend;
use lab::Lab;
use serde_json::{json, Value};

const ADMIN_PW: &str = "crash-admin-password";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server(dir: &Path, port: u16, db_url: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mojo-server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MOJO_LISTEN", format!("127.0.0.1:{port}"))
        .env("MOJO_DATA_DIR", dir)
        .env("MOJO_TLS", "off")
        .env("MOJO_ADMIN_PASSWORD", ADMIN_PW)
        .env("MOJO_SECRET_KEY", "crash-test-jwt-secret-0123456789")
        .env(
            "MOJO_CREDENTIAL_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )
        .env("MOJO_DISCOVERY_ALLOWED_NETWORKS", "127.0.0.0/8")
        .env("MOJO_REGISTER_TIMEOUT", "4s")
        .env("MOJO_PROBE_TIMEOUT_MS", "5000")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = db_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.spawn().expect("start mojo-server")
}

struct Api {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn connect(port: u16) -> Api {
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "server never came up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r: Value = http
            .post(format!("{base}/api/token/"))
            .json(&json!({"username": "admin", "password": ADMIN_PW}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = r["access"].as_str().unwrap().to_string();
        Api { base, http, token }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&s), "{path}: {s} {v}");
        v
    }
}

fn kill9(child: &mut Child) {
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
}

async fn killed_mid_registration(backend: Backend, b: u8) {
    let pg = match backend {
        Backend::Postgres => Some(common::PgDatabase::create().await),
        Backend::Sqlite => None,
    };
    let db_url = pg.as_ref().map(|d| d.url());
    let lab = Lab::start(
        "start",
        1,
        &[
            "--base",
            &format!("127.72.{b}.1"),
            "--port",
            "9443",
            "--persona",
            "dell",
            "--delay-ms",
            "1200",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = server(dir.path(), port, db_url.as_deref());
    let api = Api::connect(port).await;
    let ip = format!("127.72.{b}.1");
    let range = api
        .post(
            "/api/node_discovery/scan_range/",
            json!({"name": "crash", "ip_from": ip, "ip_to": ip, "ports": [9443]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    api.post(
        "/api/node_discovery/run_scan/",
        json!({"scan_ranges": [range]}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let node = loop {
        let r = api.get(&format!("/api/node/?scan_range={range}")).await;
        let done = api
            .get(&format!("/api/node_discovery/scan_range/{range}/"))
            .await["status"]
            != "scanning";
        if done && r["count"] == 1 {
            break r["results"][0]["id"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "scan found nothing: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let profile = api
        .post(
            "/api/node_discovery/auth_profile/",
            json!({"node_classification": "crash", "bmc": "redfish"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    api.post(
        &format!("/api/node_discovery/auth_profile/{profile}/credentials/"),
        json!({"username": "root", "password": "calvin"}),
    )
    .await;

    // Start the registration and kill the process once the BMC has the session open.
    let reg = {
        let (http, url, token) = (
            api.http.clone(),
            format!("{}/api/node/{node}/register/", api.base),
            api.token.clone(),
        );
        tokio::spawn(async move {
            let _ = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"auth_profile": profile}))
                .send()
                .await;
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab.open_sessions().await == 0 {
        assert!(
            Instant::now() < deadline,
            "the registration never logged in"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The journal write follows the login at once; the next BMC request takes 1.2 s.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let n = api.get(&format!("/api/node/{node}/")).await;
    assert_eq!(n["status"], "registering", "{n}");
    kill9(&mut child);
    let _ = reg.await;
    assert_eq!(
        lab.open_sessions().await,
        1,
        "the killed process left its session"
    );

    // Start again (a replica would do the same).
    let port = free_port();
    let mut child = server(dir.path(), port, db_url.as_deref());
    let api = Api::connect(port).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let n = loop {
        let n = api.get(&format!("/api/node/{node}/")).await;
        if n["status"] != "registering" {
            break n;
        }
        assert!(Instant::now() < deadline, "still registering: {n}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(n["status"], "discovered", "{n}");
    assert!(
        n["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("interrupted"),
        "{n}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab.open_sessions().await != 0 {
        assert!(
            Instant::now() < deadline,
            "the leftover session was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, v) = api
        .call(reqwest::Method::DELETE, &format!("/api/node/{node}/"), None)
        .await;
    assert_eq!(s, 204, "{v}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    if let Some(db) = pg {
        db.drop_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_registration_sqlite() {
    killed_mid_registration(Backend::Sqlite, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_registration_postgres() {
    killed_mid_registration(Backend::Postgres, 31).await;
}
