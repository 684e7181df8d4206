//! `mojo-server` binaries as separate processes, for tests that SIGKILL them (crash safety,
//! replicas): plain HTTP on a free port, fixed keys (so replicas and restarts share them),
//! logs to a file, and a small authenticated JSON client.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "crash-test-admin-password";
const SECRET_KEY: &str = "procs-test-jwt-secret-0123456789";
const CREDENTIAL_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How to start a process (kept so it can be started again on the same storage).
#[derive(Clone)]
pub struct Spec {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub envs: Vec<(String, String)>,
}

impl Spec {
    pub fn new(data_dir: &Path, database_url: Option<&str>) -> Spec {
        Spec {
            data_dir: data_dir.to_path_buf(),
            database_url: database_url.map(str::to_string),
            envs: Vec::new(),
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> Spec {
        self.envs.push((k.into(), v.into()));
        self
    }
}

/// A running `mojo-server` process.
pub struct Proc {
    pub spec: Spec,
    pub base: String,
    pub token: String,
    pub log: PathBuf,
    child: Option<Child>,
    client: reqwest::Client,
}

impl Proc {
    /// Starts the binary and waits until it serves and the admin can log in.
    pub async fn start(spec: &Spec, name: &str) -> Proc {
        let port = free_port();
        std::fs::create_dir_all(&spec.data_dir).unwrap();
        let log = spec.data_dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mojo-server"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MOJO_LISTEN", format!("127.0.0.1:{port}"))
            .env("MOJO_DATA_DIR", &spec.data_dir)
            .env("MOJO_TLS", "off")
            .env("MOJO_DISCOVERY_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("MOJO_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("MOJO_SECRET_KEY", SECRET_KEY)
            .env("MOJO_CREDENTIAL_KEY", CREDENTIAL_KEY)
            .env("MOJO_LOGIN_THROTTLE", "10000/min")
            .env("MOJO_SHUTDOWN_GRACE_SECS", "5")
            .env("MOJO_LOG_FORMAT", "json")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        if let Some(u) = &spec.database_url {
            cmd.env("DATABASE_URL", u);
        }
        for (k, v) in &spec.envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start mojo-server");
        let mut p = Proc {
            spec: spec.clone(),
            base: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            log,
            child: Some(child),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = p.client.get(format!("{}/healthz", p.base)).send().await {
                if r.status() == StatusCode::OK {
                    break;
                }
            }
            if let Some(c) = p.child.as_mut() {
                if let Some(st) = c.try_wait().unwrap() {
                    panic!("mojo-server exited ({st}): {}", p.logs());
                }
            }
            assert!(Instant::now() < deadline, "not ready: {}", p.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r: Value = p
            .client
            .post(format!("{}/api/token/", p.base))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        p.token = r["access"].as_str().expect("token").to_string();
        p
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether this process's log shows it claiming job `id`.
    pub fn claimed(&self, id: i64) -> bool {
        let needle = format!("\"job\":{id},");
        self.logs()
            .lines()
            .any(|l| l.contains("job claimed") && l.contains(&needle))
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub async fn call(
        &self,
        method: Method,
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
        match req.send().await {
            Ok(resp) => {
                let s = resp.status();
                (s, resp.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"transport": e.to_string()}),
            ),
        }
    }

    /// A multipart POST (catalogue uploads).
    pub async fn upload(&self, path: &str, form: reqwest::multipart::Form) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let s = resp.status();
        (s, resp.json().await.unwrap_or(Value::Null))
    }

    /// A POST without credentials (an installer's callback).
    pub async fn post_anonymous(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = resp.status();
        (s, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Every page of a list endpoint.
    pub async fn all(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (s, r) = self.get(&format!("{path}{sep}page_size=1000")).await;
        assert_eq!(s, StatusCode::OK, "{path}: {r}");
        let mut out = r["results"].as_array().cloned().unwrap_or_default();
        let mut next = r["next"].as_str().map(str::to_string);
        while let Some(url) = next {
            let path = url
                .split_once("/api/")
                .map(|(_, p)| format!("/api/{p}"))
                .unwrap();
            let (s, r) = self.get(&path).await;
            assert_eq!(s, StatusCode::OK, "{path}: {r}");
            out.extend(r["results"].as_array().cloned().unwrap_or_default());
            next = r["next"].as_str().map(str::to_string);
        }
        out
    }

    /// Waits (up to `secs`) until `f` holds for the JSON at `path`.
    pub async fn wait_for(&self, path: &str, secs: u64, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (s, r) = self.get(path).await;
            if s == StatusCode::OK && f(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
