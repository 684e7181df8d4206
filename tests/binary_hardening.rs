//! The binary's own hardening (issue 9): log lines that values cannot forge, and a data dir
//! and database only their owner can read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server(data_dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mojo-server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MOJO_LISTEN", format!("127.0.0.1:{port}"))
        .env("MOJO_DATA_DIR", data_dir)
        .env("MOJO_TLS", "off")
        .env("MOJO_DISCOVERY_ALLOWED_NETWORKS", "127.0.0.0/8")
        .env("MOJO_LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mojo-server")
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ok = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}/healthz"))
            .output()
            .map(|o| o.stdout == b"200")
            .unwrap_or(false);
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("server did not become ready");
}

fn stop(mut child: Child) -> String {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    logs
}

#[test]
fn user_names_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = server(dir.path(), port);
    wait_ready(port);
    let body = serde_json::json!({
        "username": "mallory\n2026-01-01T00:00:00.000000Z  INFO mojo_server: FORGED login ok\u{1b}[2K",
        "password": "x"
    });
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(body.to_string())
        .arg(format!("http://127.0.0.1:{port}/api/token/"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"401");
    let logs = stop(child);
    assert!(logs.contains("mallory"), "{logs}");
    assert!(
        !logs.lines().any(|l| l.starts_with("2026-01-01T00:00:00")),
        "{logs}"
    );
    assert!(!logs.contains('\u{1b}'), "{logs}");
}

#[cfg(unix)]
#[test]
fn data_dir_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let port = free_port();
    let child = server(&dir, port);
    wait_ready(port);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("mojo.db")), 0o600);
    let logs = stop(child);
    assert!(!logs.contains("open to other users"), "{logs}");
    // An existing data dir that others can read is used, with a warning.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = free_port();
    let child = server(&dir, port);
    wait_ready(port);
    let logs = stop(child);
    assert!(logs.contains("open to other users"), "{logs}");
}
