//! Two `mojo-server` processes started together on one empty PostgreSQL database (replicas at
//! first start): both come up, and there is exactly one `admin`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const SECRET: &str = "replica-test-jwt-secret-0123456789";
const CRED_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const ADMIN_PW: &str = "replica-admin-password";

fn replica(db_url: &str, port: u16, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mojo-server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MOJO_LISTEN", format!("127.0.0.1:{port}"))
        .env("MOJO_DATA_DIR", dir)
        .env("MOJO_TLS", "off")
        .env("DATABASE_URL", db_url)
        .env("MOJO_SECRET_KEY", SECRET)
        .env("MOJO_CREDENTIAL_KEY", CRED_KEY)
        .env("MOJO_ADMIN_PASSWORD", ADMIN_PW)
        .env("MOJO_DISCOVERY_ALLOWED_NETWORKS", "127.0.0.0/8")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mojo-server")
}

/// Kills the process when the test ends, also when it fails.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::Client::new();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("replica on port {port} exited ({status}): {err}");
        }
        let up = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            return;
        }
        assert!(Instant::now() < deadline, "replica on {port} never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_at_first_start_postgres() {
    // A few rounds: the race is between two processes, so one round may not hit it.
    for _ in 0..3 {
        let db = common::PgDatabase::create().await;
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (p1, p2) = (free_port(), free_port());
        let mut a = Reaped(replica(&db.url(), p1, d1.path()));
        let mut b = Reaped(replica(&db.url(), p2, d2.path()));
        ready(p1, &mut a.0).await;
        ready(p2, &mut b.0).await;
        let client = reqwest::Client::new();
        let mut admin_ids = Vec::new();
        for port in [p1, p2] {
            let r: serde_json::Value = client
                .post(format!("http://127.0.0.1:{port}/api/token/"))
                .json(&serde_json::json!({"username": "admin", "password": ADMIN_PW}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = r["access"].as_str().expect("admin logs in").to_string();
            let users: serde_json::Value = client
                .get(format!("http://127.0.0.1:{port}/api/users/?username=admin"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let list = users
                .get("results")
                .and_then(|v| v.as_array())
                .or_else(|| users.as_array())
                .cloned()
                .unwrap();
            let admins: Vec<_> = list.iter().filter(|u| u["username"] == "admin").collect();
            assert_eq!(admins.len(), 1, "{users}");
            admin_ids.push(admins[0]["id"].clone());
        }
        assert_eq!(admin_ids[0], admin_ids[1]);
        drop((a, b));
        db.drop_now().await;
    }
}
